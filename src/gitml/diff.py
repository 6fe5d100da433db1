"""`gitml diff [A] [B]`: what changed between two commits (or runs), for review.

A side is a ref (its stable-path metrics.toml names the run that represents it), a run id, or
the working tree. The table shows params and metrics side by side with absolute and relative
change, an arrow for better/worse according to each metric's goal, and the changed data hashes
and code commits, so one table tells a reviewer what changed and whether it helped.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitml import git, store
from gitml.errors import GitmlError, RunNotFoundError
from gitml.query import dvc_runs
from gitml.query.api import row_lookup
from gitml.query.index_sql import BY_ID, BY_PREFIX, LANDED_IN
from gitml.query.output import is_number
from gitml.repo import Repo
from gitml.repo import metric_goal as goal

if TYPE_CHECKING:
    from gitml.query.api import Rows

WORKTREE = "workspace"


ALPHA = 0.05  # a change is beyond the seed noise when a Welch t-test gives p below this


@dataclass(frozen=True)
class Side:
    """One side of a diff: a label, the flat row of the run that represents it, and its repeats.

    ``repeats`` are the finished runs that landed in the same commit with the same params but
    for seed params (``[tracking] seed_params``): the same experiment, another seed. It holds
    ``row`` itself, so one run alone is a group of one.
    """

    label: str
    row: dict[str, Any]
    repeats: tuple[dict[str, Any], ...] = ()
    others: tuple[str, ...] = ()  # the names of other runs the same commit holds
    chosen_by: str = ""  # how the run was picked when the commit holds several


def resolve_side(
    repo: Repo, ref: str, rows: Rows, *, run: str | None = None, pair: str | None = None
) -> Side:
    """A ref's run, a run id or prefix, or the working tree.

    A commit (or the working tree) that holds several runs is represented by the run named
    ``run`` (`--run`; an error if it has none), else by the run named ``pair`` (the other
    side's name, so runs pair by name) if it has one, else by the run its metrics.toml names.
    """
    summary = repo.tracking_setting("summary_file")
    if ref == WORKTREE:
        path = repo.root / summary
        landed = _finished(rows(LANDED_IN, None))
        picked = _pick(ref, landed, run, pair)
        if picked is not None:
            return _with_repeats(repo, picked, rows)
        if not path.is_file():
            raise GitmlError(f"{summary}: not in the working tree; finish a run first")
        side = _side_for(ref, store.read_toml(path, kind="metrics-summary"), rows, summary)
        return _with_repeats(repo, _noting(side, landed), rows)
    git.require_full_history(repo.root, "gitml diff")
    commit = git.resolve_commit(repo.root, ref)
    if commit is not None:
        landed = _finished(rows(LANDED_IN, commit))
        picked = _pick(ref, landed, run, pair)
        if picked is not None:
            return _with_repeats(repo, picked, rows)
        try:
            raw = git.read_file_at(repo.root, commit, summary)
        except GitmlError as exc:
            alone = _alone(repo, commit, landed)
            if alone is not None:
                return _with_repeats(repo, Side(ref, alone), rows)
            raise GitmlError(
                f"{ref}: has no {summary}; no finished run was committed there"
            ) from exc
        data = store.parse_toml(raw, source=f"{ref}:{summary}")
        store.validate("metrics-summary", data, source=f"{ref}:{summary}")
        side = _side_for(ref, data, rows, summary)
        return _with_repeats(repo, _noting(side, landed), rows)
    matches = rows(BY_PREFIX, ref, ref)
    if len(matches) == 1:
        return _with_repeats(repo, Side(ref, matches[0]), rows)
    if not matches:
        raise RunNotFoundError(ref)
    raise GitmlError(f"{ref!r}: matches {len(matches)} runs; give more of the id")


def _alone(repo: Repo, commit: str, landed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run that represents a commit without a metrics.toml, when only one can.

    That is the one finished run the commit holds, else the state of DVC's pipeline at the
    commit (its `dvc.lock`, params and metrics; `gitml.query.dvc_runs`), when it has one.
    """
    if len(landed) == 1:
        return landed[0]
    if landed:
        return None
    return dvc_runs.row_at(repo.root, commit)


def _finished(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in found if r.get("status") == "finished"), key=lambda r: str(r["id"]))


def _pick(
    label: str, landed: list[dict[str, Any]], run: str | None, pair: str | None
) -> Side | None:
    """The newest run named ``run`` (required) or ``pair`` (if any) among ``landed``."""
    names = sorted({str(r.get("name")) for r in landed if r.get("name")})
    for wanted, how in ((run, "--run"), (pair, "paired by name")):
        if not wanted:
            continue
        named = [r for r in landed if r.get("name") == wanted]
        if named:
            others = tuple(n for n in names if n != wanted)
            return Side(label, named[-1], others=others, chosen_by=how if others else "")
        if how == "--run":
            held = f"it holds {', '.join(names)}" if names else "it holds no finished run"
            raise GitmlError(f"--run {wanted}: {label} holds no finished run of that name; {held}")
    return None


def _noting(side: Side, landed: list[dict[str, Any]]) -> Side:
    """``side`` with the names of the other runs its commit holds, if any."""
    me = side.row.get("name")
    others = tuple(
        sorted(
            {
                str(r.get("name") or r["id"])
                for r in landed
                if r["id"] != side.row.get("id") and r.get("name") != me
            }
        )
    )
    if not others:
        return side
    return Side(side.label, side.row, side.repeats, others, "metrics.toml")


def _side_for(label: str, summary: dict[str, Any], rows: Rows, name: str) -> Side:
    found = rows(BY_ID, summary["run"])
    row = found[0] if found else None
    if row is None:  # the run itself is not in the history: use what the summary holds
        row = {f"metrics.{k}": v for k, v in summary.get("metrics", {}).items()}
        row.update({f"params.{k}": v for k, v in summary.get("params", {}).items()})
        row["id"] = summary["run"]
    return Side(label, row)


def _with_repeats(repo: Repo, side: Side, rows: Rows) -> Side:
    """``side`` with every run of the same experiment (same commit, name, params but seeds)."""
    seeds = {f"params.{name}" for name in repo.tracking_setting("seed_params")}

    def experiment(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k.startswith("params.") and k not in seeds}

    me = side.row
    mine = experiment(me)
    repeats = [
        row
        for row in rows(LANDED_IN, me.get("commit"))
        if row.get("id") != me.get("id")
        and row.get("status") == "finished"
        and row.get("name") == me.get("name")  # runs named apart are different experiments
        and experiment(row) == mine
    ]
    group = (me, *sorted(repeats, key=lambda r: str(r.get("id"))))
    return Side(side.label, me, group, side.others, side.chosen_by)


def compare(repo: Repo, a: Side, b: Side) -> dict[str, Any]:
    """The comparison as data: metrics, params, data and code changes."""
    metrics = []
    for key in sorted({k for k in (*a.row, *b.row) if k.startswith("metrics.")}):
        name = key.partition(".")[2]
        olds, news = _values(a, key), _values(b, key)
        if len(olds) > 1 or len(news) > 1:
            metrics.append({"metric": name, **_noisy_change(olds, news, goal(repo, name))})
            continue
        old, new = a.row.get(key), b.row.get(key)
        metrics.append({"metric": name, "a": old, "b": new, **_change(old, new, goal(repo, name))})
    params = _changed(a, b, "params", "param")
    data = _changed(a, b, "inputs", "path")
    code = {"a": a.row.get("code.commit"), "b": b.row.get("code.commit")}

    def side(s: Side) -> dict[str, Any]:
        out = {"ref": s.label, "run": s.row.get("id"), "name": s.row.get("name"),
               "repeats": [r["id"] for r in s.repeats]}  # fmt: skip
        if s.others:
            out |= {"others": list(s.others), "chosen_by": s.chosen_by}
        return out

    return {
        "a": side(a),
        "b": side(b),
        "metrics": metrics,
        "params": params,
        "data": data,
        "code": code,
    }


def _changed(a: Side, b: Side, section: str, label: str) -> list[dict[str, Any]]:
    """The ``section.*`` fields whose values differ between the sides, as label/a/b."""
    keys = sorted({k for k in (*a.row, *b.row) if k.startswith(f"{section}.")})
    return [
        {label: k.partition(".")[2], "a": a.row.get(k), "b": b.row.get(k)}
        for k in keys
        if not store.same_value(a.row.get(k), b.row.get(k))
    ]


def _change(old: Any, new: Any, direction: str | None) -> dict[str, Any]:
    """The change from ``old`` to ``new`` and whether it is better for a metric's goal.

    A number is better than NaN (a diverged run) and NaN worse than a number, whatever the
    goal; a change to or from an infinity has no relative size.
    """
    if not is_number(old) or not is_number(new):
        return {"change": None, "relative": None, "verdict": None}
    if math.isnan(old) or math.isnan(new):
        verdict = None
        if direction and math.isnan(old) != math.isnan(new):
            verdict = "better" if math.isnan(old) else "worse"
        return {"change": None, "relative": None, "verdict": verdict}
    delta = new - old
    relative = delta / abs(old) if old and math.isfinite(delta) else None
    verdict = None
    if direction and delta != 0 and not math.isnan(delta):
        better = delta > 0 if direction == "maximize" else delta < 0
        verdict = "better" if better else "worse"
    return {"change": None if math.isnan(delta) else delta, "relative": relative,
            "verdict": verdict}  # fmt: skip


def _values(side: Side, key: str) -> list[float]:
    return [r[key] for r in side.repeats or (side.row,) if is_number(r.get(key))]


def _noisy_change(olds: list[float], news: list[float], direction: str | None) -> dict[str, Any]:
    """Mean ± std on each side, and whether the change exceeds the seed noise (Welch)."""
    if not olds or not news:
        old, new = (_summary(xs) if xs else None for xs in (olds, news))
        return {
            **{"a": old and old["mean"], "b": new and new["mean"], "a_noise": old, "b_noise": new},
            **{"change": None, "relative": None, "verdict": None, "p_value": None},
        }
    old, new = _summary(olds), _summary(news)
    result = _change(old["mean"], new["mean"], direction)
    p_value = welch_p_value(olds, news)
    if p_value >= ALPHA and result["verdict"]:
        result["verdict"] = "noise"
    return {"a": old["mean"], "b": new["mean"], "a_noise": old, "b_noise": new, **result,
            "p_value": p_value}  # fmt: skip


def _summary(values: list[float]) -> dict[str, Any]:

    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def welch_p_value(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; a side of one run counts as an exact value.

    scipy.special's t distribution is used rather than scipy.stats, whose import alone takes
    0.6 s, more than the whole `gitml diff` budget.
    """
    from scipy.special import stdtr

    delta = statistics.fmean(b) - statistics.fmean(a)
    terms = [(statistics.variance(xs) / len(xs), len(xs) - 1) for xs in (a, b) if len(xs) > 1]
    se2 = sum(v for v, _ in terms)
    if se2 == 0:
        return 0.0 if delta != 0 else 1.0
    dof = se2**2 / sum(v**2 / d for v, d in terms if v > 0)
    return float(2 * stdtr(dof, -abs(delta) / math.sqrt(se2)))


def diff(
    repo: Repo, a: str = "HEAD", b: str = WORKTREE, *, run: str | None = None
) -> dict[str, Any]:
    """Compare two sides; see the module docstring and `resolve_side`."""
    with row_lookup(repo) as rows:
        first = resolve_side(repo, a, rows, run=run)
        pair = None if run else first.row.get("name")
        return compare(repo, first, resolve_side(repo, b, rows, run=run, pair=pair))
