"""DVC's own history as runs, read in place: no import step, nothing written.

A commit that adds or changes `dvc.lock` is one run of the pipeline: the params of
`params.yaml` (all of it, as `dvc params show` and `dvc exp show` list it) and the values
`dvc.lock` records the stages ran with (winning where a params file was edited after; another
params file's keys under its stem), the numbers of every metrics
file `dvc.yaml` declares (nested keys joined with dots, as DVC names them; DVCLive's `step`
is a position, not a metric), and `dvc.lock`'s deps (those no stage makes) and outs, with
their data md5s, `.dir` ones included, as inputs and outputs. A commit of `dvc exp run`
(under `refs/exps/`) is one run too, named after the experiment. The run's id is the commit's
time and first six hex digits, the same id `gitml import dvc` gives it, so an imported copy
in the working tree simply takes its place.

The index keeps each record under the key ``dvc:<commit>``; `record_at` rebuilds it from git
whenever the full record is wanted. A metrics file DVC caches instead of committing is read
from the local DVC cache by the md5 `dvc.lock` gives it, when the cache has it.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import git
from gitml.data.pipeline import (
    load_yaml,
    lock_data_artifacts,
    lock_params,
    metrics_names,
    numeric_leaves,
)
from gitml.errors import GitError, GitmlError
from gitml.query.parse import parse_record
from gitml.records import normalize_params

DVC_LOCK = "dvc.lock"
EXPS = "refs/exps/"
KEY_PREFIX = "dvc:"
SOURCE_TAG = "dvc.source"  # "commit" or "experiment": where a run read from DVC came from


@dataclass(frozen=True)
class DvcCommit:
    """A commit read as a DVC run: a branch commit that changed `dvc.lock`, or an experiment."""

    commit: str
    time: int  # commit time, seconds since the epoch
    experiment: str | None = None  # the `dvc exp` name, for a commit under refs/exps/
    baseline: str | None = None  # the commit the experiment was run from

    @property
    def key(self) -> str:
        """The index's key for this record (in place of a run.toml blob id)."""
        return f"{KEY_PREFIX}{self.commit}"

    @property
    def run_id(self) -> str:
        """The run's id (see `run_id_of`)."""
        return run_id_of(self.commit, self.time)


def run_id_of(commit: str, time: int) -> str:
    """`<commit time>-<first six hex digits>`: what `gitml import dvc` names the same commit."""
    when = dt.datetime.fromtimestamp(time, tz=dt.UTC)
    return f"{when.strftime('%Y%m%dT%H%M%SZ')}-{commit[:6]}"


def experiment_refs(root: Path) -> dict[str, DvcCommit]:
    """Each `dvc exp` ref under refs/exps/ (not DVC's own exec/ and queue refs) -> its commit."""
    out: dict[str, DvcCommit] = {}
    for name, (commit, time) in git.refs_with_times(root, EXPS).items():
        if name.startswith(f"{EXPS}exec/") or name.count("/") < 4:
            continue
        parts = name.split("/")  # refs/exps/<sha[:2]>/<sha[2:]>/<name>
        out[name] = DvcCommit(commit, time, parts[-1], parts[-3] + parts[-2])
    return out


def experiments(root: Path) -> dict[str, DvcCommit]:
    """Every `dvc exp` commit, by commit id."""
    return {at.commit: at for at in experiment_refs(root).values()}


def record_at(root: Path, at: DvcCommit) -> dict[str, Any] | None:
    """The run record of ``at`` from its `dvc.lock`, params and metrics; None without a lock.

    A `dvc.lock` that is not valid YAML, or not DVC's shape, raises `GitmlError` naming it.
    """
    source = f"{at.commit[:12]}:{DVC_LOCK}"
    lock_text = _read(root, at.commit, DVC_LOCK)
    if lock_text is None:
        return None
    lock = load_bounded(lock_text, source)
    if not isinstance(lock, dict):
        raise GitmlError(f"{source}: expected a mapping with stages")
    inputs, outputs = lock_data_artifacts(lock, source)
    own = load_bounded(_read(root, at.commit, "params.yaml"), f"{at.commit[:12]}:params.yaml")
    params = normalize_params(own) if isinstance(own, dict) else {}
    # What the stages ran with wins over a params.yaml edited after (a stale pipeline).
    params.update(normalize_params(lock_params(lock)))
    metrics: dict[str, float] = {}
    pipeline = load_bounded(_read(root, at.commit, "dvc.yaml"), f"{at.commit[:12]}:dvc.yaml")
    for name in dict.fromkeys(metrics_names(pipeline)):
        if name.startswith(("/", "..")):
            continue
        text = _read(root, at.commit, name)
        if text is None and name in outputs:
            text = _cached(root, outputs[name]["md5"])
        loaded = _metrics(text, name, f"{at.commit[:12]}:{name}")
        metrics.update({k: v for k, v in numeric_leaves(loaded).items() if k != "step"})
    when = dt.datetime.fromtimestamp(at.time, tz=dt.UTC)
    tags = {SOURCE_TAG: "experiment" if at.experiment else "commit", "dvc.commit": at.commit}
    if at.experiment:
        tags.update({"dvc.experiment": at.experiment, "dvc.baseline": at.baseline or ""})
    record: dict[str, Any] = {
        "schema_version": 1, "id": at.run_id, "name": (at.experiment or "dvc")[:250],
        "status": "finished", "start_time": when, "end_time": when, "params": params,
        "metrics": metrics, "tags": tags, "code": {"commit": at.baseline or at.commit,
                                                   "dirty": False},
    }  # fmt: skip
    if inputs:
        record["inputs"] = inputs
    if outputs:
        record["outputs"] = outputs
    return record


def commit_of(root: Path, commit: str) -> DvcCommit:
    """``commit`` as a `DvcCommit` (an experiment's, if refs/exps/ names it)."""
    known = experiments(root).get(commit)
    if known is not None:
        return known
    return DvcCommit(commit, git.commit_info(root, [commit])[commit][0])


def row_at(root: Path, commit: str) -> dict[str, Any] | None:
    """The flat row of the DVC run at ``commit``, whether or not the commit changed the lock.

    For a side of `gitml diff` at a tag on a commit that only carried the pipeline's state
    forward; None where there is no `dvc.lock`. An invalid one raises `GitmlError`.
    """
    record = record_at(root, commit_of(root, commit))
    if record is None:
        return None
    text, error, *_ = parse_record(record, f"{commit[:12]}:{DVC_LOCK}")
    if text is None:
        raise GitmlError(error or f"{commit[:12]}:{DVC_LOCK}: not a run")
    row: dict[str, Any] = json.loads(text)
    row["commit"] = commit
    return row


def _read(root: Path, commit: str, path: str) -> str | None:
    try:
        return git.read_file_at(root, commit, path).decode("utf-8", errors="replace")
    except (GitError, AttributeError):  # not there, or a folder
        return None


def _cached(root: Path, md5: str) -> str | None:
    """A file's text from the local DVC cache, by md5 (DVC 3's layout, then DVC 2's)."""
    if len(md5) != 32 or not all(c in "0123456789abcdef" for c in md5):
        return None  # a `.dir` listing, or not an md5 at all: never a path
    for base in (root / ".dvc" / "cache" / "files" / "md5", root / ".dvc" / "cache"):
        file = base / md5[:2] / md5[2:]
        if file.is_file() and not file.is_symlink():
            return file.read_text(errors="replace")
    return None


MAX_NODES = 200_000  # values in one file once YAML's aliases are expanded


def load_bounded(text: str | None, source: str) -> Any:
    """A YAML (or JSON) file of the repository, refused when its aliases expand too far.

    An anchor used ten times, ten levels deep, is 10^10 values to flatten: a stranger's
    repository must not stall `gitml runs` that way.
    """
    if text is None:
        return None
    data = load_yaml(text, source)
    budget, stack = MAX_NODES, [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise GitmlError(f"{source}: over {MAX_NODES:,} values once its aliases are expanded")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def _metrics(text: str | None, name: str, source: str) -> dict[str, Any]:
    """A metrics file's data; one that cannot be read adds no metrics (DVC shows an error)."""
    if text is None:
        return {}
    try:
        loaded = tomllib.loads(text) if name.endswith(".toml") else load_bounded(text, source)
    except (GitmlError, tomllib.TOMLDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
