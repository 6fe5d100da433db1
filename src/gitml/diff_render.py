"""How `gitml diff` shows a comparison: a text table, Markdown for a PR comment, or JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from gitml.diff import ALPHA

ARROWS = {"better": "▲ better", "worse": "▼ worse", "noise": "≈ within noise", None: ""}


def format_value(value: Any, missing: str = "-") -> str:
    """A value for a table cell: floats to 6 significant digits, ``missing`` for None."""
    if value is None:
        return missing
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"  # inf, -inf
    return str(value)


def render(result: dict[str, Any], fmt: str) -> str:
    """The comparison as a text table, Markdown (for a PR comment) or JSON."""
    if fmt == "json":
        return json.dumps(result, indent=2) + "\n"
    a, b = result["a"]["ref"], result["b"]["ref"]
    metric_rows: list[tuple[str, ...]] = [
        (m["metric"], _value(m, "a"), _value(m, "b"), _signed(m["change"]),
         _percent(m["relative"]), _verdict(m))
        for m in result["metrics"]
    ]  # fmt: skip
    param_rows: list[tuple[str, ...]] = [
        (p["param"], format_value(p["a"]), format_value(p["b"])) for p in result["params"]
    ]
    data_rows: list[tuple[str, ...]] = [
        (d["path"], format_value(d["a"])[:8], format_value(d["b"])[:8]) for d in result["data"]
    ]
    code = result["code"]
    code_rows: list[tuple[str, ...]] = (
        [("code commit", format_value(code["a"])[:8], format_value(code["b"])[:8])]
        if code["a"] != code["b"]
        else []
    )
    sections: list[tuple[tuple[str, ...], list[tuple[str, ...]]]] = [
        (("metric", a, b, "change", "relative", ""), metric_rows),
        (("param", a, b), param_rows),
        (("data", a, b), data_rows + code_rows),
    ]
    table = _markdown if fmt == "md" else _text
    text = _which_runs(result) + "\n".join(table(head, rows) for head, rows in sections if rows)
    if any(m.get("p_value") is not None for m in result["metrics"]):
        text += (
            f"\n± is the std over runs that differ only in seed params; p is from Welch's t-test, "
            f"and a change with p ≥ {ALPHA} is within noise.\n"
        )
    return text


def _which_runs(result: dict[str, Any]) -> str:
    """When a side holds several runs: which two are compared, and how to pick others."""
    a, b = result["a"], result["b"]
    if not a.get("others") and not b.get("others"):
        return ""

    def run(s: dict[str, Any]) -> str:
        name = f" ({s['name']})" if s.get("name") else ""
        how = f" [{s['chosen_by']}]" if s.get("chosen_by") else ""
        return f"run {str(s['run'])[:23]}{name}{how} at {s['ref']}"

    lines = [f"comparing {run(a)} with {run(b)}"]
    for s in (a, b):
        if s.get("others"):
            lines.append(f"{s['ref']} also holds: {', '.join(s['others'])}")
    lines.append("(--run NAME compares the runs of that name)")
    return "\n".join(lines) + "\n\n"


def _value(metric: dict[str, Any], side: str) -> str:
    noise = metric.get(f"{side}_noise")
    if not noise or noise["n"] < 2:
        return format_value(metric[side])
    return f"{format_value(noise['mean'])} ± {noise['std']:.2g} (n={noise['n']})"


def _verdict(metric: dict[str, Any]) -> str:
    text = ARROWS[metric["verdict"]]
    if metric.get("p_value") is not None and text:
        text += f" (p={metric['p_value']:.2g})"
    return text


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
