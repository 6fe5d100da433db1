"""`gitml diff [A] [B]`: what changed between two commits (or runs), for review.

A side is a ref (its stable-path metrics.toml names the run that represents it), a run id, or
the working tree. The table shows params and metrics side by side with absolute and relative
change, an arrow for better/worse according to each metric's goal, and the changed data hashes
and code commits, so one table tells a reviewer what changed and whether it helped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from gitml import git, store
from gitml.errors import GitmlError, RunNotFoundError
from gitml.repo import Repo

WORKTREE = "workspace"
MAXIMIZE_HINTS = ("acc", "f1", "auc", "precision", "recall", "r2", "score", "map", "ndcg")
MINIMIZE_HINTS = ("loss", "error", "mse", "mae", "rmse", "perplexity", "latency")


@dataclass(frozen=True)
class Side:
    """One side of a diff: a label and the flat row of the run that represents it."""

    label: str
    row: dict[str, Any]


def resolve_side(repo: Repo, ref: str, rows: dict[str, dict[str, Any]]) -> Side:
    """A ref's run (through its metrics.toml), a run id or prefix, or the working tree."""
    summary = repo.tracking_setting("summary_file")
    if ref == WORKTREE:
        path = repo.root / summary
        if not path.is_file():
            raise GitmlError(f"{summary}: not in the working tree; finish a run first")
        return _side_for(ref, store.read_toml(path, kind="metrics-summary"), rows, summary)
    commit = git.resolve_commit(repo.root, ref)
    if commit is not None:
        try:
            raw = git.read_file_at(repo.root, commit, summary)
        except GitmlError as exc:
            raise GitmlError(
                f"{ref}: has no {summary}; no finished run was committed there"
            ) from exc
        data = store.parse_toml(raw, source=f"{ref}:{summary}")
        store.validate("metrics-summary", data, source=f"{ref}:{summary}")
        return _side_for(ref, data, rows, summary)
    matches = [r for rid, r in rows.items() if rid.startswith(ref)]
    if len(matches) == 1:
        return Side(ref, matches[0])
    if not matches:
        raise RunNotFoundError(ref)
    raise GitmlError(f"{ref!r}: matches {len(matches)} runs; give more of the id")


def _side_for(
    label: str, summary: dict[str, Any], rows: dict[str, dict[str, Any]], name: str
) -> Side:
    row = rows.get(summary["run"])
    if row is None:  # the run itself is not in the history: use what the summary holds
        row = {f"metrics.{k}": v for k, v in summary.get("metrics", {}).items()}
        row.update({f"params.{k}": v for k, v in summary.get("params", {}).items()})
        row["id"] = summary["run"]
    return Side(label, row)


def goal(repo: Repo, metric: str) -> str | None:
    """maximize/minimize from `[metrics.<name>] goal` in config, else guessed from the name."""
    configured = repo.config.get("metrics", {}).get(metric, {}).get("goal")
    if configured:
        return str(configured)
    lowered = metric.lower()
    if any(h in lowered for h in MINIMIZE_HINTS):
        return "minimize"
    if any(h in lowered for h in MAXIMIZE_HINTS):
        return "maximize"
    return None


def compare(repo: Repo, a: Side, b: Side) -> dict[str, Any]:
    """The comparison as data: metrics, params, data and code changes."""
    metrics = []
    for key in sorted({k for k in (*a.row, *b.row) if k.startswith("metrics.")}):
        name = key.partition(".")[2]
        old, new = a.row.get(key), b.row.get(key)
        metrics.append({"metric": name, "a": old, "b": new, **_change(old, new, goal(repo, name))})
    params = [
        {"param": k.partition(".")[2], "a": a.row.get(k), "b": b.row.get(k)}
        for k in sorted({k for k in (*a.row, *b.row) if k.startswith("params.")})
        if a.row.get(k) != b.row.get(k)
    ]
    data = [
        {"path": k.partition(".")[2], "a": a.row.get(k), "b": b.row.get(k)}
        for k in sorted({k for k in (*a.row, *b.row) if k.startswith("inputs.")})
        if a.row.get(k) != b.row.get(k)
    ]
    code = {"a": a.row.get("code.commit"), "b": b.row.get("code.commit")}
    return {
        "a": {"ref": a.label, "run": a.row.get("id")},
        "b": {"ref": b.label, "run": b.row.get("id")},
        "metrics": metrics,
        "params": params,
        "data": data,
        "code": code,
    }


def _change(old: Any, new: Any, direction: str | None) -> dict[str, Any]:
    if not _number(old) or not _number(new):
        return {"change": None, "relative": None, "verdict": None}
    delta = new - old
    relative = delta / abs(old) if old else None
    verdict = None
    if direction and delta != 0 and not math.isnan(delta):
        better = delta > 0 if direction == "maximize" else delta < 0
        verdict = "better" if better else "worse"
    return {"change": delta, "relative": relative, "verdict": verdict}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


ARROWS = {"better": "▲ better", "worse": "▼ worse", None: ""}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(result: dict[str, Any], fmt: str) -> str:
    """The comparison as a text table, Markdown (for a PR comment) or JSON."""
    if fmt == "json":
        return json.dumps(result, indent=2) + "\n"
    a, b = result["a"]["ref"], result["b"]["ref"]
    metric_rows: list[tuple[str, ...]] = [
        (m["metric"], _fmt(m["a"]), _fmt(m["b"]), _signed(m["change"]), _percent(m["relative"]),
         ARROWS[m["verdict"]])
        for m in result["metrics"]
    ]  # fmt: skip
    param_rows: list[tuple[str, ...]] = [
        (p["param"], _fmt(p["a"]), _fmt(p["b"])) for p in result["params"]
    ]
    data_rows: list[tuple[str, ...]] = [
        (d["path"], _fmt(d["a"])[:8], _fmt(d["b"])[:8]) for d in result["data"]
    ]
    code = result["code"]
    code_rows: list[tuple[str, ...]] = (
        [("code commit", _fmt(code["a"])[:8], _fmt(code["b"])[:8])]
        if code["a"] != code["b"]
        else []
    )
    sections: list[tuple[tuple[str, ...], list[tuple[str, ...]]]] = [
        (("metric", a, b, "change", "relative", ""), metric_rows),
        (("param", a, b), param_rows),
        (("data", a, b), data_rows + code_rows),
    ]
    table = _markdown if fmt == "md" else _text
    return "\n".join(table(head, rows) for head, rows in sections if rows)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.6g}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _markdown(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _text(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in (head, *rows)
    ]
    return "\n".join(lines) + "\n"


def diff(repo: Repo, a: str = "HEAD", b: str = WORKTREE) -> dict[str, Any]:
    """Compare two sides; see the module docstring."""
    from gitml.query.api import collect_rows

    rows = {r["id"]: r for r in collect_rows(repo)}
    return compare(repo, resolve_side(repo, a, rows), resolve_side(repo, b, rows))
