"""Move bytes by hash between the local DVC cache and a DVC remote (any kind DVC supports)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitml import store
from gitml.data import cache_path, dvc_repo
from gitml.errors import GitmlError


@dataclass(frozen=True)
class TransferReport:
    """What a push or fetch moved, and which hashes it could not find at the source."""

    transferred: int
    missing: list[str] = field(default_factory=list)


def in_remote(root: Path, md5s: list[str], *, remote: str | None = None) -> set[str]:
    """Which of these objects ``remote`` (default: DVC's default remote) holds.

    Any failure to list it (no such remote, no credentials, a network error from the storage
    client) is one `GitmlError` line.
    """
    if not md5s:
        return set()
    with dvc_repo(root) as repo:
        try:
            return set(repo.cloud.get_remote_odb(remote).oids_exist(md5s))
        except Exception as exc:
            raise GitmlError(f"DVC remote {remote or '(default)'}: cannot list it: {exc}") from exc


def push(root: Path, md5s: Iterable[str], *, remote: str | None = None) -> TransferReport:
    """Upload these objects from the cache to ``remote`` (default: DVC's default remote)."""
    return _transfer(root, md5s, remote=remote, upload=True)


def fetch(root: Path, md5s: Iterable[str], *, remote: str | None = None) -> TransferReport:
    """Download these objects from ``remote`` into the cache."""
    return _transfer(root, md5s, remote=remote, upload=False)


def _transfer(
    root: Path, md5s: Iterable[str], *, remote: str | None, upload: bool
) -> TransferReport:
    from dvc.exceptions import DvcException
    from dvc_data.hashfile.hash_info import HashInfo

    wanted = sorted(set(md5s))
    if not wanted:
        return TransferReport(0)
    verb = "push to" if upload else "fetch from"
    with dvc_repo(root) as repo:
        try:
            absent: set[str] = set()
            if upload:
                # DVC only logs objects missing at the source; a push must name them: those
                # neither in the local cache nor already in the remote are lost.
                local_absent = [m for m in wanted if not cache_path(root, m).is_file()]
                odb = repo.cloud.get_remote_odb(remote)
                absent = set(local_absent) - set(odb.oids_exist(local_absent))
            objs = [HashInfo("md5", m) for m in wanted if m not in absent]
            move = repo.cloud.push if upload else repo.cloud.pull
            result = move(objs, remote=remote)
        except DvcException as exc:
            raise GitmlError(
                f"DVC remote {remote or '(default)'}: cannot {verb} it: {exc}"
            ) from exc
    missing = sorted(absent | {h.value for h in result.failed})
    return TransferReport(len(result.transferred), missing)


def dvc_pull(root: Path, *, remote: str | None, force: bool, outputs: list[str]) -> int:
    """`dvc pull`, refused first if any of the ``outputs`` it writes would leave the repository.

    Through a symlinked folder, say: not left to DVC, so that gitml names the link.
    """
    from dvc.exceptions import DvcException

    for path in outputs:
        store.safe_target(root, path)

    with dvc_repo(root) as dvc:
        try:
            stats = dvc.pull(remote=remote, allow_missing=True, force=force)
        except DvcException as exc:
            raise GitmlError(f"dvc pull failed: {exc}") from exc
    return len(stats.get("added", [])) + len(stats.get("modified", []))
