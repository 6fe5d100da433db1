"""What `gitml ui` shows: pages of the runs table, one run, a comparison, a metric over history.

Everything here is read-only and answers in JSON types. The runs table keeps one snapshot of the
index's rows (every run on every branch and in the working tree) and refreshes it when the
server says `.gitml/` changed; a filter and sort are computed once and then served page by page,
so scrolling 100,000 runs sends only the rows on screen.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitml import git, logs, store
from gitml.diff import diff as run_diff
from gitml.errors import GitError, GitmlError, UsageError
from gitml.lineage import build as build_lineage
from gitml.lineage import to_dict as lineage_dict
from gitml.query import where as where_lang
from gitml.query.api import (
    check_fields,
    iter_rows,
    parse_sort,
    resolve,
    sort_rows,
    stored_steps,
)
from gitml.query.columns import ColumnTable, RowView
from gitml.query.index import IndexedRun, record_of
from gitml.query.output import default_columns
from gitml.query.series import Series, Steps, downsample
from gitml.registry import versions as registry
from gitml.repo import Repo, metric_goal
from gitml.reproduce import last_verdict
from gitml.tracking import journal

log = logs.get(__name__)
MAX_PAGE = 500  # rows per request: a screen, with room to scroll
MAX_BUCKETS = 4000  # points per series per request: a wide screen's pixels
LINEAGE_RUNS = 6  # runs deep the lineage tree of a run page goes (`gitml lineage` goes all)


@dataclass
class View:
    """One filter and sort of the table, computed once and then paged."""

    where: str
    sort: str
    rows: list[RowView]


@dataclass
class RunTable:
    """The index's rows, refreshed when `.gitml/` changes, and the views of them asked for."""

    repo: Repo
    generation: Callable[[], int] = lambda: 0  # the server's change counter: a new value refreshes
    _table: ColumnTable | None = None
    _rows: list[RowView] = field(default_factory=list)
    _fields: dict[str, int] = field(default_factory=dict)
    _seen: int = -1
    _views: dict[tuple[str, str], View] = field(default_factory=dict)
    _readers: dict[str, list[RowView]] | None = None  # input md5 -> the runs that read it
    _resolved: dict[str, IndexedRun] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rows(self) -> list[RowView]:
        """Every run's row, as of the last change (held as columns: `query.columns`)."""
        with self._lock:
            seen = self.generation()
            if self._table is None or self._seen != seen:
                self._table = None  # the old one can go before the new one is read
                table = ColumnTable(iter_rows(self.repo))
                self._table, self._rows, self._fields = table, table.views(), table.present()
                self._seen, self._views, self._readers, self._resolved = seen, {}, None, {}
            return self._rows

    def find(self, ids: Iterable[str]) -> dict[str, RowView]:
        """The rows of these run ids (those that exist)."""
        rows = self.rows()
        wanted = set(ids)
        column = self._table.columns.get("id") if self._table else None
        found = column.items() if column else ()
        return {value: rows[number] for number, value in found if value in wanted}

    def resolve(self, ref: str) -> IndexedRun:
        """The run ``ref`` names (an id or a unique prefix), as of the last change."""
        self.rows()  # the index is as fresh as the rows
        with self._lock:
            found = self._resolved.get(ref)
        if found is None:
            found = resolve(self.repo, ref, fresh=True)
            with self._lock:
                if len(self._resolved) > 10_000:
                    self._resolved.clear()
                self._resolved[ref] = found
        return found

    def readers(self, md5: str) -> list[RowView]:
        """The runs that read these bytes as an input."""
        rows = self.rows()
        with self._lock:
            if self._readers is None:
                readers: dict[str, list[RowView]] = {}
                columns = self._table.columns if self._table else {}
                for key, column in columns.items():
                    if key.startswith("inputs."):
                        for number, value in column.items():
                            if isinstance(value, str):
                                readers.setdefault(value, []).append(rows[number])
                self._readers = readers
            return self._readers.get(md5, [])

    def fields(self) -> dict[str, int]:
        """Every field some run has, with how many runs have it."""
        self.rows()
        return dict(self._fields)

    def view(self, where: str = "", sort: str = "") -> View:
        """The runs matching ``where`` (the `--where` language), sorted by ``sort``."""
        rows = self.rows()
        key = (where.strip(), sort.strip())
        with self._lock:
            if key in self._views:
                return self._views[key]
        compiled = where_lang.compile_checked(key[0]) if key[0] else None
        keys = parse_sort(key[1] or "-start_time")
        known = set(self.fields())
        if rows:
            check_fields("where", compiled.fields if compiled else [], known)
            check_fields("sort", [k.field for k in keys], known)
        matched = [r for r in rows if compiled.predicate(r)] if compiled else list(rows)
        for tally in compiled.tallies if compiled else ():
            problem = tally.problem()
            if problem:
                raise UsageError("where", problem)
        view = View(key[0], key[1], sort_rows(matched, keys))
        with self._lock:
            if len(self._views) > 32:
                self._views.clear()
            self._views[key] = view
        return view

    def page(
        self, *, where: str = "", sort: str = "", offset: int = 0, limit: int = 100,
        columns: Iterable[str] = (), group: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        """One page of a view: its rows (only ``columns``), the true count, and the groups."""
        view = self.view(where, sort)
        limit = max(0, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        shown = list(columns) or default_columns(view.rows[:1000]) or ["id"]
        if "id" not in shown:
            shown.insert(0, "id")
        page = [
            {c: to_json(row.get(c)) for c in shown} for row in view.rows[offset : offset + limit]
        ]
        out: dict[str, Any] = {"total": len(view.rows), "runs": len(self.rows()), "offset": offset,
                               "columns": shown, "rows": page,
                               "differ": differing(view.rows, "params.", self._fields)}  # fmt: skip
        if group:
            out["groups"] = groups(view.rows, group)
        return out


def differing(
    rows: Sequence[Mapping[str, Any]], prefix: str, names: Iterable[str] | None = None
) -> list[str]:  # fmt: skip
    """The fields under ``prefix`` whose value is not the same in every row (first 5,000 rows).

    ``names``: the fields to look at (the table's own list), else those the rows have. A field
    is looked at only until a second value (or a row without it) shows it differs.
    """
    sample = rows[:5000]
    if names is None:
        names = {key for row in sample for key in row}
    found = []
    for name in sorted(n for n in names if n.startswith(prefix)):
        first = None
        for row in sample:
            value = row.get(name)
            if value is None:  # missing (or null) in some row counts as a difference
                found.append(name)
                break
            shown = json.dumps(to_json(value), sort_keys=True)  # 1, 1.0 and true differ
            if first is None:
                first = shown
            elif shown != first:
                found.append(name)
                break
    return found


def groups(rows: Sequence[Mapping[str, Any]], field_name: str) -> list[dict[str, Any]]:
    """Runs per value of ``field_name`` (a param, `code.branch`, `commit`), largest first."""
    counts: dict[str, int] = {}
    for row in rows:
        label = json.dumps(to_json(row.get(field_name)))
        counts[label] = counts.get(label, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"value": json.loads(label), "runs": n} for label, n in ordered]


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
        table = journal.read_table(*stored, columns=("name", *columns), names_encoded=True)
        steps = Steps.from_table(table)
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
    seeds = [
        f"params.{p}" for p in table.repo.tracking_setting("seed_params")
    ]  # as `gitml diff` reads
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


def to_json(value: Any) -> Any:
    """A value JSON can carry: NaN and infinities become strings, dates ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
