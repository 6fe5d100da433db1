"""DVC's own history in the run index: the runs `gitml.query.dvc_runs` reads from commits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml import git
from gitml.errors import GitmlError
from gitml.query import dvc_runs
from gitml.query.parse import Parsed, parse_record

if TYPE_CHECKING:
    from gitml.query.index import RunIndex


def store_runs(index: RunIndex, new: list[str], experiments: dict[str, dvc_runs.DvcCommit]) -> None:
    """The runs of DVC's own history among ``new`` commits (see `gitml.query.dvc_runs`).

    A commit whose gitml runs already record every out of its `dvc.lock` (a
    `gitml run -- dvc repro`) is described by them: it is not read a second time.
    """
    root = index.repo.root
    found = [dvc_runs.DvcCommit(commit, time)
             for commit, time, _ in git.file_changes(root, dvc_runs.DVC_LOCK, reversed(new))
             if commit not in experiments]  # fmt: skip
    found += [experiments[commit] for commit in new if commit in experiments]
    for at in found:
        source = f"{at.commit[:12]}:{dvc_runs.DVC_LOCK}"
        parsed: Parsed
        try:
            record = dvc_runs.record_at(root, at)
        except GitmlError as exc:
            record, parsed = None, Parsed(None, str(exc), [])
        else:
            if record is None or _described(index, at.commit, record.get("outputs", {})):
                continue
            parsed = parse_record(record, source)
        index.insert_blobs([at.key], [parsed])
        index.store_versions(
            [git.RunBlob(run_id=at.run_id, blob=at.key, commit=at.commit, commit_time=at.time)]
        )


def _described(index: RunIndex, commit: str, outputs: dict[str, Any]) -> bool:
    made = set(index.db.execute(
        "SELECT o.path, o.md5 FROM versions v JOIN outputs o ON o.blob = v.blob"
        " WHERE v.oid = ?", (commit,)))  # fmt: skip
    wanted = {(path, ref["md5"]) for path, ref in outputs.items()}
    return bool(wanted) and wanted <= made
