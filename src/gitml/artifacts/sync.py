"""Push the bytes every run references to the DVC remote, naming what cannot be pushed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gitml import git
from gitml.data import cache_path
from gitml.data.pipeline import load_yaml, lock_artifacts
from gitml.data.transfer import dvc_pull, fetch, push
from gitml.data.transfer import in_remote as held
from gitml.errors import GitmlError
from gitml.query.api import iter_rows
from gitml.repo import Repo


class MissingArtifactsError(GitmlError):
    """Runs reference bytes that are in neither the local cache nor the remote."""

    def __init__(self, missing: list[tuple[str, str, str]]) -> None:
        shown = "; ".join(f"run {run} {path} ({md5[:8]})" for run, path, md5 in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        super().__init__(
            f"{len(missing)} artifact(s) are not in the DVC cache, cannot push: {shown}{more}; "
            "re-run those runs or push from the clone that made them"
        )
        self.missing = missing


@dataclass(frozen=True)
class PushReport:
    """How many objects were referenced and how many were uploaded now."""

    referenced: int
    uploaded: int
    runs: int = 0
    missing: list[tuple[str, str, str]] = field(default_factory=list)


def referenced_objects(repo: Repo) -> dict[str, list[tuple[str, str]]]:
    """md5 -> [(run id, path)] for every input and output of every run, history included."""
    found: dict[str, list[tuple[str, str]]] = {}
    for row in iter_rows(repo):
        for key, md5 in row.items():
            if isinstance(md5, str) and key.startswith(("inputs.", "outputs.")):
                found.setdefault(md5, []).append((row["id"], key.partition(".")[2]))
    return found


def push_runs(
    repo: Repo, *, remote: str | None = None, refs: dict[str, list[tuple[str, str]]] | None = None
) -> PushReport:
    """Upload every object any run references; raise naming the run and path of any missing.

    ``refs`` is `referenced_objects(repo)` when the caller has it already.
    """
    refs = referenced_objects(repo) if refs is None else refs
    report = push(repo.root, refs, remote=remote)
    if report.missing:
        missing = [(run, path, md5) for md5 in report.missing for run, path in refs[md5]]
        raise MissingArtifactsError(missing)
    runs = len({run for uses in refs.values() for run, _ in uses})
    return PushReport(len(refs), report.transferred, runs)


@dataclass(frozen=True)
class ObjectStatus:
    """Where the objects runs reference are: local cache, remote, both or neither."""

    local: int
    remote: int
    total: int
    lost: list[tuple[str, str, str]] = field(default_factory=list)  # (run, path, md5)
    not_pushed: list[tuple[str, str, str]] = field(default_factory=list)


def object_status(repo: Repo, *, remote: str | None = None) -> ObjectStatus:
    """Check every object any run references against the cache and the remote."""
    refs = referenced_objects(repo)
    md5s = sorted(refs)
    in_remote = held(repo.root, md5s, remote=remote)
    local = {m for m in md5s if cache_path(repo.root, m).is_file()}
    lost = [(run, path, m) for m in md5s if m not in local | in_remote for run, path in refs[m]]
    unpushed = [(run, path, m) for m in sorted(local - in_remote) for run, path in refs[m]]
    return ObjectStatus(len(local), len(in_remote), len(md5s), lost, unpushed)


def pull_runs(repo: Repo, *, remote: str | None = None) -> tuple[int, int]:
    """`dvc pull` for the working tree's pointers, then fetch every object runs reference.

    Returns (files checked out by DVC, objects fetched for runs).
    """
    outputs = dvc_outputs(repo.root)
    files = dvc_pull(repo.root, remote=remote, force=False, outputs=outputs)
    fetched = fetch(repo.root, referenced_objects(repo), remote=remote)
    missing = [p for p in outputs if not (repo.root / p).exists()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise GitmlError(
            f"gitml pull: {len(missing)} file(s) the DVC pointers name are still missing "
            f"({shown}): is the DVC remote reachable, and were they pushed? `gitml status` says "
            "where each object is"
        )
    return files, fetched.transferred


def checkout_workspace(root: Path, *, remote: str | None = None) -> int:
    """Make the working tree's DVC-tracked files match their pointers, fetching what is missing.

    Returns how many files were written.
    """
    return dvc_pull(root, remote=remote, force=True, outputs=dvc_outputs(root))


def dvc_outputs(root: Path) -> list[str]:
    """Every output path the working tree's `.dvc` files and `dvc.lock` name, as written."""
    outputs: list[str] = []
    listed = git.run_git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                         "--", "*.dvc")  # fmt: skip
    for pointer in sorted({p for p in listed.split("\0") if p}):
        folder = PurePosixPath(pointer).parent
        try:
            doc = load_yaml((root / pointer).read_text(), pointer)
        except (OSError, GitmlError):
            continue  # DVC reports a pointer it cannot read itself
        for out in (doc or {}).get("outs", []) if isinstance(doc, dict) else []:
            if isinstance(out, dict) and isinstance(out.get("path"), str):
                outputs.append(str(folder / out["path"]) if str(folder) != "." else out["path"])
    with contextlib.suppress(GitmlError):
        outputs += list(lock_artifacts(root)[1])
    return outputs
