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

MAX_ENTRY_BYTES = 1 << 31


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG chunks that carry when and by what a picture was made, not the picture.
PNG_METADATA = {b"tIME", b"tEXt", b"iTXt", b"zTXt"}


def content_md5(path: Path) -> str | None:
    """The content hash of a zip-based file or a PNG; None for any other (or broken) file."""
    try:
        with path.open("rb") as fh:
            if fh.read(8) == PNG_SIGNATURE:
                return _png_md5(path.read_bytes())
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            return _archive_md5(archive)
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return None


def _png_md5(data: bytes) -> str:
    """md5 of a PNG's chunks without its time and text chunks (a plot's save date, say)."""
    digest = hashlib.md5()
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        if kind not in PNG_METADATA:
            digest.update(data[pos:end])
        pos = end
    return digest.hexdigest()


def _archive_md5(archive: zipfile.ZipFile) -> str:
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if any(i.file_size > MAX_ENTRY_BYTES for i in infos):
        raise ValueError("entry too large")
    data = {i.filename: archive.read(i) for i in infos}
    names = {n: hashlib.md5(b).hexdigest() for n, b in data.items() if not n.endswith(".json")}
    digests = []
    for name, raw in data.items():
        if name.endswith(".json"):
            digests.append("json:" + _json_md5(raw, names))
        else:
            digests.append("bin:" + names[name])
    return hashlib.md5("\n".join(sorted(digests)).encode()).hexdigest()


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
