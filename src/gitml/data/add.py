"""Hash a file DVC-compatibly and put its bytes in the DVC cache."""

from __future__ import annotations

from pathlib import Path

from gitml.data import CACHE_SUBDIR, ArtifactRef, cache_dir, quiet_dvc_logs
from gitml.errors import ArtifactError


def add_to_cache(root: Path, path: Path) -> ArtifactRef:
    """Hash a file DVC-compatibly (md5 of its bytes) and put it in the DVC cache."""
    from dvc_data.hashfile.db import get_odb
    from dvc_data.hashfile.hash import file_md5
    from dvc_objects.fs.local import LocalFileSystem

    quiet_dvc_logs()
    if path.is_dir():
        raise ArtifactError(str(path), "is a directory; log the files in it one by one")
    if not path.is_file():
        raise ArtifactError(str(path), "no such file")
    fs = LocalFileSystem()
    odb = get_odb(fs, str(cache_dir(root) / CACHE_SUBDIR))
    try:
        md5 = file_md5(str(path), fs)
        odb.add(str(path), fs, md5)
    except OSError as exc:
        raise ArtifactError(str(path), f"cannot add to the DVC cache: {exc}") from exc
    return ArtifactRef(md5=md5, size=path.stat().st_size)


def track(root: Path, path: Path) -> ArtifactRef:
    """Cache ``path`` and write its `.dvc` pointer (and .gitignore entry), as `dvc add` does.

    A file that git already tracks, or that a DVC pipeline already outputs, keeps its place: its
    bytes are cached and its hash returned, and no pointer is written.
    """
    ref = add_to_cache(root, path)
    rel = path.resolve().relative_to(root)
    if _git_tracks(root, rel.as_posix()) or _pipeline_output(root, rel):
        return ref
    from gitml.data import dvc_repo

    with dvc_repo(root) as repo:
        from dvc.exceptions import DvcException

        try:
            repo.add([str(path.resolve())])
        except DvcException as exc:
            raise ArtifactError(str(rel), f"DVC cannot track it: {exc}") from exc
    return ref


def _git_tracks(root: Path, rel: str) -> bool:
    from gitml import git

    return git.is_tracked(root, rel)


def _pipeline_output(root: Path, rel: Path) -> bool:
    # Outputs of dvc.yaml stages are tracked by dvc.lock; `dvc add` on them would fail.
    lock = root / "dvc.lock"
    return lock.is_file() and f"path: {rel.as_posix()}" in lock.read_text()
