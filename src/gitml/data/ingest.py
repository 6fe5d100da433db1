"""Bring a file's bytes into the DVC cache at the speed of hashing them.

Where the filesystem can reflink (copy-on-write: Btrfs, XFS, APFS...), the cache object is a
clone made in no time and the file is hashed once. Elsewhere the kernel copies the file into the
cache while Python hashes it, in parallel.
Cache objects are made read-only, as DVC makes them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

CHUNK = 4 * 1024 * 1024
FICLONE = 0x40049409  # Linux ioctl: clone a file's extents (reflink)


def ingest(
    path: Path,
    cache_files: Path,
    *,
    known_md5: str | None = None,
    progress: Callable[[int], object] = lambda n: None,
    hardlink: bool = False,
) -> str:
    """Put ``path``'s bytes in the cache under their md5 (computed unless ``known_md5``).

    ``progress`` is called with the size of each chunk read. With ``hardlink`` (DVC's
    `cache.type` allows it) and no reflink, the file itself becomes the cache object: no copy,
    and both names are read-only, as DVC protects hardlinked files.
    """
    tmp_dir = cache_files.parent / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}.tmp"
    try:
        if _reflink(path, tmp):
            md5 = known_md5 or md5_of(path, progress)
        elif hardlink:
            md5 = known_md5 or md5_of(path, progress)
            tmp.unlink(missing_ok=True)
            os.link(path, tmp)
        else:
            md5 = _hash_and_copy(path, tmp, progress)
        dest = cache_files / md5[:2] / md5[2:]
        if dest.exists():
            return md5
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
        return md5
    finally:
        tmp.unlink(missing_ok=True)


def can_reflink(folder: Path) -> bool:
    """Whether files in ``folder`` can be reflinked (tried on a tiny probe file)."""
    probe = folder / f".gitml-reflink-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"x")
        return _reflink(probe, probe.with_suffix(".clone"))
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
        probe.with_suffix(".clone").unlink(missing_ok=True)


def _reflink(src: Path, dst: Path) -> bool:
    try:
        import fcntl  # noqa: PLC0415 - Unix only: Windows has no fcntl
    except ImportError:
        return False
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        except OSError as exc:
            if exc.errno in (
                errno.EOPNOTSUPP,
                errno.EXDEV,
                errno.EINVAL,
                errno.ENOTTY,
                errno.EBADF,
            ):
                return False
            raise
    return True


def md5_of(path: Path, progress: Callable[[int], object] = lambda n: None) -> str:
    """The md5 of a file's bytes (what DVC records for it)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            progress(len(chunk))
    return digest.hexdigest()


def _hash_and_copy(src: Path, dst: Path, progress: Callable[[int], object]) -> str:
    """Hash ``src`` while a thread copies it kernel-side, in parallel.

    `shutil.copyfile` uses copy_file_range or sendfile on Linux; both it and hashlib release the
    GIL, so the copy costs about nothing on top of hashing. The copy's bytes are the hashed
    ones unless the file changes meanwhile: the caller checks its mtime, and every restore
    re-verifies the md5.
    """
    failure: list[BaseException] = []

    def copy() -> None:
        try:
            shutil.copyfile(src, dst)
        except BaseException as exc:  # surfaced in the caller below
            failure.append(exc)

    writer = threading.Thread(target=copy, name="gitml-cache-copy", daemon=True)
    writer.start()
    try:
        md5 = md5_of(src, progress)
    finally:
        writer.join()
    if failure:
        raise failure[0]
    return md5
