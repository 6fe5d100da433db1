"""The sweeps of `gitml report`: each sweep's trials grouped, its best trial, its history plot.

A run belongs to a sweep by its `sweep` tag (`gitml sweep` sets it, with `sweep_trial` and
`sweep_state`). The sweep's metric and direction come from its sweep.toml; a sweep whose file
is missing or unreadable (another branch, a bad edit) is still listed, without a best trial.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gitml import store
from gitml.errors import GitmlError
from gitml.query.indexed import IndexedRun
from gitml.query.output import is_number
from gitml.repo import Repo
from gitml.sweep.study import SPEC_FILE, sweep_dir

STATES = ("complete", "pruned", "fail")


@dataclass
class SweepSummary:
    """One sweep as the report shows it."""

    id: str
    metric: str | None  # None: its sweep.toml could not be read
    maximize: bool
    planned: int | None
    runs: list[IndexedRun] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)  # the params the sweep varies

    def count(self, state: str) -> int:
        """Trials that ended ``state``; "running" counts those with no state yet."""
        return sum(_state(r) == state for r in self.runs)

    def value(self, run: IndexedRun) -> float | None:
        """The sweep's metric in ``run``'s final metrics, if it is a number."""
        value = (run.row or {}).get(f"metrics.{self.metric}") if self.metric else None
        ok = is_number(value) and math.isfinite(value)  # type: ignore[arg-type]
        return float(value) if ok else None  # type: ignore[arg-type]

    def best(self) -> IndexedRun | None:
        """The complete trial with the best value of the metric; of equals, the first (Optuna's)."""
        scored = [(v, r) for r in self.runs
                  if _state(r) == "complete" and (v := self.value(r)) is not None]  # fmt: skip
        if not scored:
            return None
        top = (max if self.maximize else min)(v for v, _ in scored)
        return next(r for v, r in scored if v == top)  # the runs are in trial order


def summarize(repo: Repo, runs: list[IndexedRun]) -> list[SweepSummary]:
    """The sweeps among ``runs``, newest first, each with its trials in trial order."""
    members: dict[str, list[IndexedRun]] = defaultdict(list)
    for run in runs:
        sweep = (run.row or {}).get("tags.sweep")
        if isinstance(sweep, str) and sweep:
            members[sweep].append(run)
    out = []
    for sweep_id in sorted(members, reverse=True):
        summary = _spec(repo, sweep_id)
        summary.runs = sorted(members[sweep_id], key=lambda r: (_trial(r), r.run_id))
        out.append(summary)
    return out


def _spec(repo: Repo, sweep_id: str) -> SweepSummary:
    try:  # a tag that is no sweep id (`../x`) names no file
        doc = store.read_toml(sweep_dir(repo, sweep_id) / SPEC_FILE, kind="sweep")
    except GitmlError:
        return SweepSummary(sweep_id, None, True, None)
    searched = sorted(doc.get("space", {}).get("dimensions", {}))
    return SweepSummary(sweep_id, doc["metric"], doc["direction"] == "maximize", doc["trials"],
                        searched=searched)  # fmt: skip


def _trial(run: IndexedRun) -> int:
    text = str((run.row or {}).get("tags.sweep_trial", ""))
    return int(text) if text.isdigit() else -1


def _state(run: IndexedRun) -> str:
    state = (run.row or {}).get("tags.sweep_state")
    return state if state in STATES else "running"


def figures(sweeps: list[SweepSummary], limit: int) -> list[tuple[str, str, Any]]:
    """Per sweep: the metric of each trial by trial number, and the best so far as a line.

    A sweep with no trial that logged its metric has no plot (its table row says why).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out = []
    drawn = [s for s in sweeps if s.metric and any(s.value(r) is not None for r in s.runs)]
    for sweep in drawn[:limit]:
        fig = Figure(figsize=(7, 3.6), layout="constrained")
        ax = fig.add_subplot()
        best: list[tuple[int, float]] = []
        for state, colour in (("complete", "C0"), ("pruned", "C7"), ("fail", "C3")):
            points = [(_trial(r), v) for r in sweep.runs
                      if _state(r) == state and (v := sweep.value(r)) is not None]  # fmt: skip
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter(xs, ys, color=colour, s=24, label=state)
        for run in sweep.runs:
            value = sweep.value(run) if _state(run) == "complete" else None
            if value is not None:
                so_far = best[-1][1] if best else value
                best.append((_trial(run), max(so_far, value) if sweep.maximize else
                             min(so_far, value)))  # fmt: skip
        if best:
            xs, ys = zip(*best, strict=True)
            ax.step(xs, ys, where="post", color="C1", label="best so far")
        ax.set_xlabel("trial")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"sweep {sweep.id}: {sweep.metric} per trial")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        out.append(("sweeps", sweep.id, fig))
    return out


def table(sweeps: list[SweepSummary]) -> tuple[list[str], list[list[str]]]:
    """One row a sweep: trials by state, the best trial, and its searched params."""
    head = ["sweep", "metric", "trials", "complete", "pruned", "failed", "best", "best run",
            "best params"]  # fmt: skip
    rows = []
    for sweep in sweeps:
        best = sweep.best()
        value = sweep.value(best) if best else None
        row = (best.row or {}) if best else {}
        params = ", ".join(f"{p}={row.get(f'params.{p}')}" for p in sweep.searched
                           if f"params.{p}" in row)  # fmt: skip
        goal = "" if sweep.metric is None else (" ▲" if sweep.maximize else " ▼")
        done = sweep.count("complete") + sweep.count("pruned")
        planned = f"{done} of {sweep.planned}" if sweep.planned else str(done)
        rows.append([
            sweep.id, f"{sweep.metric or '(no sweep.toml)'}{goal}", planned,
            *(str(sweep.count(s)) for s in STATES),
            "" if value is None else f"{value:.6g}", best.run_id if best else "", params,
        ])  # fmt: skip
    return head, rows
