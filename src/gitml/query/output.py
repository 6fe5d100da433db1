"""Run listings as a text table, JSON or CSV (no pandas: the CLI must start fast)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from gitml.errors import UsageError

Row = dict[str, Any]
FORMATS = ("table", "json", "csv")
BASE_COLUMNS = ("id", "name", "status", "start_time", "commit")


def default_columns(rows: Sequence[Row]) -> list[str]:
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


def render(rows: Sequence[Row], *, fmt: str, columns: Sequence[str], full: Sequence[Any]) -> str:
    """``rows`` in ``fmt``; JSON gives the ``full`` nested records instead of flat columns."""
    if fmt == "json":
        return json.dumps(list(full), indent=2, allow_nan=True) + "\n"
    if fmt == "csv":
        return _csv(rows, columns)
    if fmt == "table":
        return _table(rows, columns)
    raise UsageError("--format", f"{fmt!r} is not one of {', '.join(FORMATS)}")


def _csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])
    return out.getvalue()


def _plain(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else value


def _table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    if not rows:
        return "no runs\n"
    headers = list(columns)
    cells = [[_cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [
        all(is_number(row.get(c)) for row in rows if row.get(c) is not None) for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out) + "\n"


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
