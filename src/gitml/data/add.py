"""Track a file: hash it DVC-compatibly (once), put it in the DVC cache, write its pointer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gitml.data import CACHE_SUBDIR, ArtifactRef, cache_dir, cache_path, quiet_dvc_logs
from gitml.data.state import HashState
from gitml.errors import ArtifactError

PROGRESS_BYTES = 64 * 1024 * 1024  # show a progress bar on a terminal from this size up


def file_md5(root: Path, path: Path) -> str:
    """The md5 DVC gives ``path``, reused from the hash state while the file is unchanged."""
    from dvc_data.hashfile.hash import file_md5 as hash_file
    from dvc_objects.fs.local import LocalFileSystem

    st = path.stat()
    state = HashState(root)
    try:
        md5 = state.get(path, st)
        if md5 is None:
            with _progress(path, st.st_size) as callback:
                md5 = hash_file(str(path), LocalFileSystem(), callback=callback)
            state.put(path, st, md5)
    finally:
        state.close()
    return md5


def add_to_cache(root: Path, path: Path) -> ArtifactRef:
    """Hash a file DVC-compatibly (md5 of its bytes) and put it in the DVC cache."""
    from dvc_data.hashfile.db import get_odb
    from dvc_objects.fs.local import LocalFileSystem

    quiet_dvc_logs()
    _check_file(path)
    md5 = file_md5(root, path)
    if not cache_path(root, md5).is_file():
        fs = LocalFileSystem()
        odb = get_odb(fs, str(cache_dir(root) / CACHE_SUBDIR))
        try:
            odb.add(str(path), fs, md5)
        except OSError as exc:
            raise ArtifactError(str(path), f"cannot add to the DVC cache: {exc}") from exc
    return ArtifactRef(md5=md5, size=path.stat().st_size)


def track(root: Path, path: Path) -> ArtifactRef:
    """Cache ``path`` and write its `.dvc` pointer (and .gitignore entry), as `dvc add` does.

    Hashed once: an unchanged file whose pointer and cache object are in place costs a stat and
    a lookup. A file that git already tracks, or that a DVC pipeline outputs, keeps its place:
    its bytes are cached and its hash returned, and no pointer is written.
    """
    _check_file(path)
    rel = path.resolve().relative_to(root)
    if _git_tracks(root, rel.as_posix()) or _pipeline_output(root, rel):
        return add_to_cache(root, path)
    pointer = path.with_name(path.name + ".dvc")
    recorded = pointer_md5(pointer)
    if recorded is not None and cache_path(root, recorded).is_file():
        st = path.stat()
        state = HashState(root)
        try:
            if state.get(path, st) == recorded:
                return ArtifactRef(md5=recorded, size=st.st_size)
        finally:
            state.close()
    return _dvc_add(root, path, rel, pointer)


def _dvc_add(root: Path, path: Path, rel: Path, pointer: Path) -> ArtifactRef:
    from gitml.data import dvc_repo

    md5 = file_md5(root, path)  # one hashing pass; DVC's add below reuses it (state seeded)
    with dvc_repo(root) as repo:
        from dvc.exceptions import DvcException

        _seed_dvc_state(repo, path, md5)
        try:
            repo.add([str(path.resolve())])
        except DvcException as exc:
            raise ArtifactError(str(rel), f"DVC cannot track it: {exc}") from exc
    recorded = pointer_md5(pointer)
    if recorded != md5:
        raise ArtifactError(str(rel), f"changed while it was being tracked ({md5} -> {recorded})")
    # DVC may relink the file into place: remember the hash for the file as it is now.
    state = HashState(root)
    try:
        state.put(path, path.stat(), md5)
    finally:
        state.close()
    return ArtifactRef(md5=md5, size=path.stat().st_size)


def _seed_dvc_state(repo: Any, path: Path, md5: str) -> None:
    # DVC keeps its own stat-keyed hash cache; telling it what we just computed saves a pass.
    from dvc_data.hashfile.hash_info import HashInfo

    try:
        repo.state.save(str(path.resolve()), repo.fs, HashInfo("md5", md5))
    except Exception:  # an optimisation only: DVC hashes again if it fails
        return


def pointer_md5(pointer: Path) -> str | None:
    """The md5 a `.dvc` pointer file records for its single output, or None."""
    try:
        text = pointer.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.strip().lstrip("- ").partition(":")
        if key == "md5":
            return value.strip()
    return None


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise ArtifactError(str(path), "is a directory; log the files in it one by one")
    if not path.is_file():
        raise ArtifactError(str(path), "no such file")


def _git_tracks(root: Path, rel: str) -> bool:
    from gitml import git

    return git.is_tracked(root, rel)


def _pipeline_output(root: Path, rel: Path) -> bool:
    # Outputs of dvc.yaml stages are tracked by dvc.lock; `dvc add` on them would fail.
    lock = root / "dvc.lock"
    return lock.is_file() and f"path: {rel.as_posix()}" in lock.read_text()


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(path: Path, size: int) -> Any:
    """A progress bar for big files on a terminal, nothing otherwise."""
    if size < PROGRESS_BYTES or not sys.stderr.isatty():
        return _NoProgress()
    from dvc_data.callbacks import TqdmCallback

    return TqdmCallback(size=size, desc=f"hashing {path.name}", bytes=True)
