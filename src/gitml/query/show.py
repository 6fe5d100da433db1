"""`gitml show`: one run in full."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from typing import Any

from gitml import store
from gitml.query.api import resolve, step_metrics
from gitml.query.indexed import record_of
from gitml.repo import Repo


def describe(repo: Repo, ref: str, *, fmt: str = "text") -> str:
    """The record of one run plus a per-metric summary of its steps, as text or JSON."""
    run = resolve(repo, ref)
    record = record_of(repo, run)
    steps = summarize_steps(step_metrics(repo, run))
    where = f"committed in {run.landed[:12]}" if run.landed else "not committed yet"
    source = os.path.relpath(repo.run_dir(run.run_id)) if run.in_workdir else f"git blob {run.blob}"
    if fmt == "json":
        doc = {
            **store.to_json_types(record),
            "commit": run.landed,
            "source": source,
            "steps": steps,
        }
        return json.dumps(doc, indent=2) + "\n"
    lines = [f"# run {record['id']} ({where}; read from {source})"]
    lines.append(store.dumps_toml(record).decode().rstrip())
    if steps:
        lines += ["", "# step metrics", steps_table(steps)]
    return "\n".join(lines) + "\n"


def summarize_steps(rows: list[tuple[int, int, float, str]]) -> dict[str, dict[str, Any]]:
    """Per metric: how many steps, the first and last step, min, max and last value."""
    by_name: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for step, ts, value, name in rows:
        by_name[name].append((step, ts, value))
    out = {}
    for name, items in sorted(by_name.items()):
        items.sort()
        finite = [v for _, _, v in items if not math.isnan(v)]
        out[name] = {
            "steps": len(items),
            "first_step": items[0][0],
            "last_step": items[-1][0],
            "min": min(finite) if finite else None,
            "max": max(finite) if finite else None,
            "last": items[-1][2],
        }
    return out


def steps_table(steps: dict[str, dict[str, Any]]) -> str:
    """The per-metric step summary as an aligned text table."""
    header = ("metric", "steps", "first", "last step", "min", "max", "last")
    rows = [header] + [
        (name, str(s["steps"]), str(s["first_step"]), str(s["last_step"]),
         _num(s["min"]), _num(s["max"]), _num(s["last"]))
        for name, s in steps.items()
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
