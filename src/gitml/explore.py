"""What `gitml ui` shows beside the runs table: a run, charts, comparisons, history, diffs.

One run's page, its step charts, several runs compared, a metric over history, and the diff
of two refs. Everything here is read-only and answers in JSON types; runs are resolved, and
their rows found, through the server's `explore_table.RunTable`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gitml import git, logs, store
from gitml.diff import diff as run_diff
from gitml.errors import GitError, GitmlError, UsageError
from gitml.explore_table import RunTable, differing, to_json
from gitml.lineage import build as build_lineage
from gitml.lineage import to_dict as lineage_dict
from gitml.query.api import stored_steps
from gitml.query.columns import RowView
from gitml.query.indexed import record_of
from gitml.query.series import Series, Steps, downsample
from gitml.registry import versions as registry
from gitml.repo import Repo, metric_goal
from gitml.reproduce import last_verdict
from gitml.tracking import journal

log = logs.get(__name__)
MAX_BUCKETS = 4000  # points per series per request: a wide screen's pixels
LINEAGE_RUNS = 6  # runs deep the lineage tree of a run page goes (`gitml lineage` goes all)


def run_page(table: RunTable, ref: str) -> dict[str, Any]:
    """One run in full: its record, metric names, patch, lineage both ways, last reproduction.

    Upstream is the lineage tree (the runs that made its inputs, ``LINEAGE_RUNS`` deep);
    downstream, the runs that read its outputs and the registry versions made from it.
    """
    repo, run = table.repo, table.resolve(ref)
    record = store.to_json_types(dict(record_of(repo, run)))
    out: dict[str, Any] = {"record": record, "commit": run.commit, "in_workdir": run.in_workdir,
                           "series": sorted(n for n, c in metric_counts(table, ref).items()
                                            if c > 1),  # curves; a final value is a metric
                           "reproduced": last_verdict(repo, run.run_id)}  # fmt: skip
    patch = record.get("code", {}).get("patch")
    if patch:
        out["patch"] = _patch_text(repo, run.run_id, run.commit, patch)
    try:
        out["lineage"] = lineage_dict(
            build_lineage(repo, run.run_id, runs_deep=LINEAGE_RUNS, fresh=True)
        )
    except GitmlError as exc:
        out["lineage_error"] = exc.message
    out["downstream"] = downstream(table, run.run_id, record)
    return out


def downstream(
    table: RunTable, run_id: str, record: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """What came of a run: the runs that read its outputs, the model versions made from it."""
    readers = []
    for path, artifact in sorted(record.get("outputs", {}).items()):
        for row in table.readers(artifact.get("md5", "")):
            if row["id"] != run_id:
                readers.append({"output": path, "run": row["id"], "name": row.get("name"),
                                "status": row.get("status")})  # fmt: skip
    versions = []
    for name in registry.names(table.repo):
        try:
            doc = registry.load(table.repo, name)
        except GitmlError as exc:
            log.warning("gitml ui: %s", exc)
            continue
        for version in doc["versions"]:
            if version["run"] == run_id:
                aliases = sorted(a for a, n in doc.get("aliases", {}).items()
                                 if n == version["version"])  # fmt: skip
                versions.append({"model": name, "version": version["version"],
                                 "path": version["path"], "aliases": aliases})  # fmt: skip
    return {"runs": readers, "versions": versions}


def _patch_text(repo: Repo, run_id: str, commit: str | None, name: str) -> str | None:
    path = repo.run_dir(run_id) / name
    if path.is_file():
        return path.read_text(errors="replace")[:200_000]
    if commit is None:
        return None
    try:
        data = git.read_file_at(repo.root, commit, repo.relpath(path))
    except GitError:
        return None
    return data.decode(errors="replace")[:200_000] if data is not None else None


def metric_names(table: RunTable, ref: str) -> list[str]:
    """The step metrics a run logged."""
    return sorted(metric_counts(table, ref))


def metric_counts(table: RunTable, ref: str) -> dict[str, int]:
    """How many steps a run logged of each metric."""
    steps = _steps(table, ref, ())
    return steps.counts() if steps is not None else {}


def series(
    table: RunTable, ref: str, name: str, *, buckets: int = 1000, x0: float | None = None,
    x1: float | None = None, x_axis: str = "step",
) -> Series:  # fmt: skip
    """A run's metric ``name`` as a chart draws it: per-pixel min and max beyond ``buckets``."""
    if x_axis not in ("step", "time"):
        raise UsageError("x", f"{x_axis!r}: step or time")
    column = "step" if x_axis == "step" else "timestamp"
    steps = _steps(table, ref, (column, "value"))
    if steps is None:
        return Series(name)
    xs, ys = steps.pick(name, column)
    if x_axis == "time":
        xs = xs / 1000.0  # seconds since the epoch
    return downsample(name, xs, ys, buckets=min(max(1, buckets), MAX_BUCKETS), x0=x0, x1=x1)


def band(
    table: RunTable, refs: list[str], name: str, *, buckets: int = 1000, x0: float | None = None,
    x1: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Repeats of one configuration (seeds): the mean of ``name`` and mean ± std, step by step.

    Only the steps every run logged count (the last value where a run logged a step twice);
    the three curves are then cut to ``buckets`` like any series (the band's edges keep their
    per-bucket extremes).
    """
    import numpy as np

    if not 2 <= len(refs) <= 50:
        raise UsageError("runs", "a band needs between 2 and 50 runs")
    steps, values = [], []
    for ref in refs:
        stored = _steps(table, ref, ("step", "value"))
        if stored is None:
            raise UsageError("runs", f"{ref}: logged no step metrics")
        xs, ys = stored.pick(name, "step")
        last = len(xs) - 1 - np.unique(xs[::-1], return_index=True)[1]  # last value per step
        steps.append(xs[last])
        values.append(ys[last])
    common = steps[0]
    for xs in steps[1:]:
        common = np.intersect1d(common, xs, assume_unique=True)
    stack = np.vstack(
        [ys[np.searchsorted(xs, common)] for xs, ys in zip(steps, values, strict=True)]
    )
    with np.errstate(all="ignore"):
        mean, std = np.nanmean(stack, axis=0), np.nanstd(stack, axis=0)
    width = min(max(1, buckets), MAX_BUCKETS)
    mid, low, high = (downsample(name, common, ys, buckets=width, x0=x0, x1=x1)
                      for ys in (mean, mean - std, mean + std))  # fmt: skip
    return {"name": name, "runs": len(refs), "steps": len(common), "x": mid.x, "mean": mid.y,
            "low": low.y_min if low.y_min is not None else low.y,
            "high": high.y_max if high.y_max is not None else high.y}  # fmt: skip


def _steps(table: RunTable, ref: str, columns: tuple[str, ...]) -> Steps | None:
    """The run's step metrics (names, and ``columns``): Parquet, live journals, or from git."""
    repo, run = table.repo, table.resolve(ref)
    stored = stored_steps(repo, run)
    steps = None
    if stored:
        arrow = journal.read_table(*stored, columns=("name", *columns), names_encoded=True)
        steps = Steps.from_table(arrow)
    live = [row for path in journal.journals(repo.run_dir(run.run_id))
            for row in journal.read_journal(path)]  # fmt: skip
    if live:
        logged = Steps.from_rows(live)
        steps = steps.joined(logged) if steps is not None else logged
    return steps


def compare(table: RunTable, ids: list[str]) -> dict[str, Any]:
    """Several runs side by side: every param and metric, marked where they differ."""
    if not 1 <= len(ids) <= 50:
        raise UsageError("runs", "pick between 1 and 50 runs to compare")
    runs = [table.resolve(ref) for ref in ids]
    by_id = table.find(run.run_id for run in runs)
    rows: list[Mapping[str, Any]] = [by_id.get(run.run_id) or {"id": run.run_id} for run in runs]
    keys = sorted({k for row in rows for k in row if k.startswith(("params.", "metrics."))})
    differ = set(differing(rows, "params.")) | set(differing(rows, "metrics."))
    steps: dict[str, int] = {}
    for row in rows:
        for name, count in metric_counts(table, row["id"]).items():
            steps[name] = max(count, steps.get(name, 0))
    series_names = sorted(steps, key=lambda n: (steps[n] < 2, n))  # curves first, then finals
    seeds = [f"params.{p}" for p in table.repo.tracking_setting("seed_params")]  # as `gitml diff`
    return {"runs": [{k: to_json(v) for k, v in row.items()} for row in rows],
            "fields": [{"name": k, "differs": k in differ} for k in keys],
            "series": series_names, "seed_params": seeds}  # fmt: skip


def history(table: RunTable, ref: str, metric: str) -> dict[str, Any]:
    """``metric`` of the runs landed at each first-parent commit of ``ref``, oldest first."""
    repo = table.repo
    commit = git.resolve_commit(repo.root, ref)
    if commit is None:
        raise UsageError("ref", f"{ref!r}: no such branch, tag or commit")
    key = metric if metric.startswith("metrics.") else f"metrics.{metric}"
    landed: dict[str, list[RowView]] = {}
    for row in table.rows():
        if row.get("commit") and row.get(key) is not None:
            landed.setdefault(row["commit"], []).append(row)
    chain = list(git.first_parents(repo.root, commit))
    info = git.commit_info(repo.root, chain)
    points = []
    for sha in reversed(chain):
        when, subject = info[sha]
        values = [{"run": r["id"], "value": to_json(r[key])} for r in landed.get(sha, [])]
        points.append({"commit": sha, "time": when, "subject": subject, "values": values})
    return {"ref": ref, "metric": key, "commits": points,
            "goal": metric_goal(repo, key.removeprefix("metrics."))}  # fmt: skip


def compare_refs(repo: Repo, a: str, b: str) -> dict[str, Any]:
    """`gitml diff a b` as data, for the page that reviews a pull request."""
    result: dict[str, Any] = json.loads(json.dumps(run_diff(repo, a, b), default=str))
    return result
