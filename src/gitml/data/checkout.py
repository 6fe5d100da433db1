"""Restore bytes by hash from the DVC cache (fetching them if needed), verified on the way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gitml import store
from gitml.data import ArtifactRef, cache_path
from gitml.data.ingest import md5_of
from gitml.data.transfer import fetch as fetch_objects
from gitml.errors import ArtifactError


def verified_object(root: Path, ref: ArtifactRef, *, fetch: bool = True) -> Path:
    """The cache file holding ``ref``'s bytes, fetched from the remote if absent.

    Its md5 is recomputed: a corrupted object (bytes that do not hash to their name) is an error
    naming it, never used.
    """
    path = cache_path(root, ref.md5)
    if not path.is_file() and fetch:
        fetch_objects(root, [ref.md5])
    if not path.is_file():
        raise ArtifactError(
            f"object {ref.md5}",
            "is in neither the DVC cache nor the remote; push it from a clone that has it",
        )
    actual = md5_of(path)
    if actual != ref.md5:
        raise ArtifactError(
            str(path), f"DVC cache object is corrupted: its bytes hash to {actual}, not {ref.md5}"
        )
    return path


def restore(root: Path, ref: ArtifactRef, dest: Path, *, fetch: bool = True) -> None:
    """Write ``ref``'s verified bytes to ``dest`` atomically (the old file stays on failure).

    A directory (md5 ending in `.dir`) is restored file by file from its DVC manifest.
    """
    if ref.md5.endswith(".dir"):
        _restore_dir(root, ref, dest, fetch=fetch)
        return
    source = verified_object(root, ref, fetch=fetch)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.gitml-restore.tmp")
    try:
        shutil.copyfile(source, tmp)
        tmp.chmod(store.file_mode())
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _restore_dir(root: Path, ref: ArtifactRef, dest: Path, *, fetch: bool) -> None:

    manifest = cache_path(root, ref.md5)
    if not manifest.is_file() and fetch:
        fetch_objects(root, [ref.md5])
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"object {ref.md5}", f"directory manifest unreadable: {exc}") from exc
    missing = [e["md5"] for e in entries if not cache_path(root, e["md5"]).is_file()]
    if missing and fetch:
        fetch_objects(root, missing)
    for entry in entries:
        part = ArtifactRef(md5=entry["md5"], size=int(entry.get("size", 0)))
        relpath = entry.get("relpath") if isinstance(entry, dict) else None
        if not isinstance(relpath, str):
            raise ArtifactError(f"object {ref.md5}", "directory manifest entry without a relpath")
        restore(root, part, store.safe_target(dest, relpath), fetch=False)
