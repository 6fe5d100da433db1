"""A hash of what a zip-based file (or a PNG) holds, not of its bytes.

A PNG's time and text chunks (`tIME`, `tEXt`, `iTXt`, `zTXt`: when and by what software it was
saved) are left out of its content hash; its pixels and every other chunk are in it.

skops (and other zip formats) write each entry's modification time into the archive, and skops
also names its array entries and `__id__` fields after the `id()` of objects at save time: the
same model saved twice never has the same bytes. Its content hash is the md5 of the entries'
contents with those accidents removed: entry times are ignored, entry names are replaced by the
md5 of their bytes, and in JSON entries every reference to an entry name is replaced likewise
and `__id__` values are renumbered in order of appearance. Two files with the same content hash
load to the same objects.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 64 << 20  # a JSON entry is parsed to normalise it; bigger ones hash as bytes
CHUNK = 1 << 20


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG chunks that carry when and by what a picture was made, not the picture.
PNG_METADATA = {b"tIME", b"tEXt", b"iTXt", b"zTXt"}


def content_fields(path: Path) -> dict[str, str]:
    """``{"content_md5": ...}`` for a file whose bytes hold save times (zip, PNG), else ``{}``.

    What a run records beside an artifact's md5, so `gitml reproduce` compares what it holds.
    """
    content = content_md5(path) if path.is_file() else None
    return {"content_md5": content} if content else {}


def content_md5(path: Path) -> str | None:
    """The content hash of a zip-based file or a PNG; None for any other (or broken) file."""
    try:
        with path.open("rb") as fh:
            if fh.read(8) == PNG_SIGNATURE:
                return _png_md5(path)
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            return _archive_md5(archive)
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return None


def _png_md5(path: Path) -> str:
    """md5 of a PNG's chunks without its time and text chunks (a plot's save date, say)."""
    digest = hashlib.md5()
    with path.open("rb") as fh:
        fh.seek(len(PNG_SIGNATURE))
        while head := fh.read(8):
            if len(head) < 8:
                raise ValueError("truncated PNG chunk")
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            left = length + 4  # the body and its CRC
            keep = kind not in PNG_METADATA
            if keep:
                digest.update(head)
            while left:
                chunk = fh.read(min(left, CHUNK))
                if not chunk:
                    raise ValueError("truncated PNG chunk")
                if keep:
                    digest.update(chunk)
                left -= len(chunk)
    return digest.hexdigest()


def _archive_md5(archive: zipfile.ZipFile) -> str:
    """Entries are streamed (a model of gigabytes is never held in memory), JSON ones parsed."""
    infos = [i for i in archive.infolist() if not i.is_dir()]
    small_json = {i.filename for i in infos if _is_json(i)}
    names = {i.filename: _entry_md5(archive, i) for i in infos if i.filename not in small_json}
    digests = [f"bin:{digest}" for digest in names.values()]
    for name in small_json:
        digests.append("json:" + _json_md5(archive.read(name), names))
    return hashlib.md5("\n".join(sorted(digests)).encode()).hexdigest()


def _is_json(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith(".json") and info.file_size <= MAX_JSON_BYTES


def _entry_md5(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.md5()
    with archive.open(info) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _json_md5(raw: bytes, names: dict[str, str]) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return hashlib.md5(raw).hexdigest()
    ids: dict[Any, int] = {}

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "__id__":
                    out[key] = ids.setdefault(item, len(ids))
                else:
                    out[key] = norm(item)
            return out
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, str) and value in names:
            return names[value]
        return value

    text = json.dumps(norm(doc), sort_keys=True, separators=(",", ":"))
    return hashlib.md5(text.encode()).hexdigest()
