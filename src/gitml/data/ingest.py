"""Bring a file's bytes into the DVC cache in one pass over the data.

Where the filesystem can reflink (copy-on-write: Btrfs, XFS, APFS...), the cache object is a
clone made in no time and the file is hashed once. Elsewhere, the file is read once: each chunk
is hashed and handed to a writer thread, so writing the cache copy overlaps with hashing.
Cache objects are made read-only, as DVC makes them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
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
        import fcntl
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
    """Hash ``src`` while a thread writes the same chunks to ``dst``; both release the GIL."""
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with open(dst, "wb") as out:
                while (chunk := chunks.get()) is not None:
                    out.write(chunk)
                # No fsync, as DVC's own cache copy: an object torn by a power cut is caught
                # by the md5 check every restore makes (data/checkout.py), never used.
        except BaseException as exc:  # surfaced in the caller below
            failure.append(exc)
            while chunks.get() is not None:  # drain so the reader never blocks
                pass

    writer = threading.Thread(target=write, name="gitml-cache-writer", daemon=True)
    writer.start()
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(src, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                chunks.put(chunk)
                progress(len(chunk))
    finally:
        chunks.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return digest.hexdigest()
