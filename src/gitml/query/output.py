"""Run listings as a text table, JSON or CSV (no pandas: the CLI must start fast)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitml.errors import UsageError

Row = dict[str, Any]
FORMATS = ("table", "json", "csv")
BASE_COLUMNS = ("id", "name", "status", "start_time", "commit")


def default_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Base columns, every metric, then the params that differ between ``rows``.

    A param with one value across every listed run says nothing when comparing them (an
    estimator's 20 defaults, say); with a single run, all its params are shown.
    """
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    metrics = sorted(k for k in seen if k.startswith("metrics."))
    params = sorted(k for k in seen if k.startswith("params."))
    if len(rows) > 1:
        params = [p for p in params if len({_key(row.get(p)) for row in rows}) > 1]
    return [*BASE_COLUMNS, *metrics, *params]


def _key(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else value


def parse_columns(text: str | None, rows: Sequence[Row]) -> list[str]:
    """``--columns id,metrics.accuracy`` or the defaults."""
    if not text:
        return default_columns(rows)
    columns = [c.strip() for c in text.split(",") if c.strip()]
    if not columns:
        raise UsageError("--columns", "no column named")
    return columns


@dataclass(frozen=True)
class Fit:
    """How a table meets a terminal: its width, and which metric values to colour."""

    width: int | None = None  # None: every column, uncut (--wide, or output to a pipe)
    colour: bool = False
    goals: Mapping[str, str] = field(default_factory=dict)  # metric -> maximize/minimize


def render(
    rows: Sequence[Row],
    *,
    fmt: str,
    columns: Sequence[str],
    full: Sequence[Any],
    fit: Fit = Fit(),
) -> str:
    """``rows`` in ``fmt``; JSON gives the ``full`` nested records instead of flat columns."""
    if fmt == "json":
        return json.dumps(list(full), indent=2, allow_nan=True) + "\n"
    if fmt == "csv":
        return _csv(rows, columns)
    if fmt == "table":
        return _table(rows, columns, fit)
    raise UsageError("--format", f"{fmt!r} is not one of {', '.join(FORMATS)}")


# When a table must fit: which columns go first (kept in their order on screen), how wide a
# value or a header may be.
PRIORITY = ("id", "status", "metrics.", "name", "params.", "start_time", "commit")
MAX_CELL = 24
MIN_HEADER = 18


def fit_columns(
    rows: Sequence[Row], columns: Sequence[str], width: int
) -> tuple[list[str], dict[str, int]]:
    """The columns that fit in ``width`` characters, and each one's (possibly cut) width."""
    natural = {}
    for c in columns:
        values = max((len(_cell(c, row.get(c))) for row in rows), default=1)
        values = min(values, MAX_CELL)
        natural[c] = max(values, min(len(c), max(values, MIN_HEADER)))

    def rank(column: str) -> int:
        return next(
            (i for i, p in enumerate(PRIORITY)
             if column == p or (p.endswith(".") and column.startswith(p))), len(PRIORITY),
        )  # fmt: skip

    kept: set[str] = set()
    used = 0
    for _, c in sorted(enumerate(columns), key=lambda ic: (rank(ic[1]), ic[0])):
        need = natural[c] + (2 if kept else 0)
        if used + need > width:
            continue
        kept.add(c)
        used += need
    return [c for c in columns if c in kept], natural


def _csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])
    return out.getvalue()


def _plain(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else value


def _table(rows: Sequence[Row], columns: Sequence[str], fit: Fit = Fit()) -> str:
    if not rows:
        return "no runs\n"
    hidden = 0
    caps: dict[str, int] = {}
    if fit.width is not None:
        shown, caps = fit_columns(rows, columns, fit.width)
        hidden = len(columns) - len(shown)
        columns = shown
    headers = [_cut(c, caps[c]) if c in caps else c for c in columns]
    cells = [
        [
            _cut(_cell(c, row.get(c)), caps[c]) if c in caps else _cell(c, row.get(c))
            for c in columns
        ]
        for row in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [
        any(row.get(c) is not None for row in rows)
        and all(is_number(row.get(c)) for row in rows if row.get(c) is not None)
        for c in columns
    ]
    best = _best_values(rows, columns, fit) if fit.colour else {}

    def line(values: Sequence[str], marks: Sequence[bool] = ()) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        for i, marked in enumerate(marks):
            if marked:
                parts[i] = f"\033[1;32m{parts[i]}\033[0m"  # the best value: bold green
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    for row, r in zip(rows, cells, strict=True):
        marks = [best.get(c) is not None and row.get(c) == best[c] for c in columns]
        out.append(line(r, marks if best else ()))
    if hidden:
        out.append(f"({hidden} more column(s) did not fit: --wide shows them, --columns picks)")
    return "\n".join(out) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _best_values(rows: Sequence[Row], columns: Sequence[str], fit: Fit) -> dict[str, float]:
    """Each metric column's best value by its goal, when two or more runs differ in it."""
    best = {}
    for c in columns:
        goal = fit.goals.get(c.removeprefix("metrics.")) if c.startswith("metrics.") else None
        values = [float(row[c]) for row in rows if is_number(row.get(c))]
        values = [v for v in values if not math.isnan(v)]
        if goal and len(set(values)) > 1:
            best[c] = max(values) if goal == "maximize" else min(values)
    return best


def is_number(value: Any) -> bool:
    """A real number: int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column in {"commit", "code.commit"}:
        return str(value)[:8]
    if column in ("start_time", "end_time") and isinstance(value, str):
        return value[:19].replace("T", " ")
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"  # inf, -inf
    if isinstance(value, list):
        return json.dumps(value)
    text = str(value)
    uncut = column in {"message", "author"}  # what a history table is read for
    return text if uncut or len(text) <= 40 else text[:37] + "..."
