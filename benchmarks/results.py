"""Benchmark figures as files: each script saves its tables to benchmarks/results/<name>.json.

`save` records, next to the tables, where and how they were measured (the machine, the commit,
`--quick` or not). `python benchmarks/tables.py` writes docs/performance.md's tables from these
files, so a figure in the docs is always the output of a run of the script named next to it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def table(columns: list[str], rows: list[list[str]]) -> dict:
    """One table: column headings and rows of already formatted cells."""
    assert all(len(row) == len(columns) for row in rows), (columns, rows)
    return {"columns": columns, "rows": rows}


def save(name: str, tables: dict[str, dict], *, quick: bool, sizes: dict | None = None) -> Path:
    """Write ``tables`` (id -> `table(...)`) as results/<name>.json, with how they were measured."""
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=HERE, text=True,
                            capture_output=True, check=False).stdout.strip()  # fmt: skip
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
                             cwd=HERE, text=True, capture_output=True, check=False).stdout  # fmt: skip
    if commit and changed.strip():
        commit += " with uncommitted changes to src/"
    doc = {
        "benchmark": f"benchmarks/bench_{name}.py",
        "measured": {
            "date": dt.date.today().isoformat(),
            "commit": commit or None,
            "quick": quick,
            "sizes": sizes or {},
            "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}",
            "python": platform.python_version(),
        },
        "tables": tables,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(HERE.parent)}; `python benchmarks/tables.py` updates the docs",
          file=sys.stderr)  # fmt: skip
    return path
