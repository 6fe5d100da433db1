"""One run as the run index knows it, and its full record read back from where it lives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from gitml import git, store
from gitml.errors import GitmlError
from gitml.query import dvc_runs, run_files
from gitml.records import RunRecord
from gitml.repo import Repo


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexedRun:
    """One run as the index knows it."""

    run_id: str
    row: dict[str, Any] | None  # the flat row; None when the record is invalid
    landed: str | None  # first commit holding the run, None if not committed yet
    commit: str | None  # the commit of the newest committed version
    blob: str  # git blob id of the record shown
    in_workdir: bool  # the record shown is the working tree's file
    error: str | None = None


def record_of(repo: Repo, run: IndexedRun) -> RunRecord:
    """The full, validated record of an indexed run, read from the working tree or git."""
    if run.in_workdir:
        return cast(
            RunRecord, store.read_toml(repo.run_dir(run.run_id) / run_files.RUN_FILE, kind="run")
        )
    if run.blob.startswith(dvc_runs.KEY_PREFIX):
        at = dvc_runs.commit_of(repo.root, run.blob.removeprefix(dvc_runs.KEY_PREFIX))
        record = dvc_runs.record_at(repo.root, at)
        if record is None:
            raise GitmlError(f"{at.commit[:12]}: has no {dvc_runs.DVC_LOCK}")
        store.validate("run", record, source=f"{at.commit[:12]}:{dvc_runs.DVC_LOCK}")
        return cast(RunRecord, record)
    ((_, raw),) = git.read_blobs(repo.root, [run.blob])
    source = f"{(run.commit or '')[:12]}:{repo.run_dir(run.run_id).relative_to(repo.root)}/run.toml"
    data = store.parse_toml(raw, source=source)
    store.validate("run", data, source=source)
    return cast(RunRecord, data)  # checked against its schema just above
