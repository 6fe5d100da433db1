"""Benchmark figures as files: each script saves its tables to benchmarks/results/<name>.json.

`save` records, next to the tables, where and how they were measured (the machine, the commit,
the versions of the tools compared, `--quick` or not). `python benchmarks/tables.py` writes
docs/performance.md's tables from these files, so a figure in the docs is always the output of
a run of the script named next to it.

A `--quick` run (what CI runs, to catch a benchmark that crashes) writes to
benchmarks/results-quick/ instead, or to `$GITML_BENCH_RESULTS`: it never replaces the full
run's figures in the docs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUICK_RESULTS = HERE / "results-quick"
COMPARED = ("gitml", "mlflow", "dvc", "dvclive", "pyarrow", "pandas", "scikit-learn", "scipy")


def arguments(parser: argparse.ArgumentParser, quick: dict[str, object]) -> argparse.Namespace:
    """Parse, with `--quick` setting ``quick``'s sizes (an option given explicitly wins)."""
    sizes = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items())
    parser.add_argument("--quick", action="store_true",
                        help=f"smaller sizes, the same comparisons ({sizes}); for CI")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        for key, value in quick.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    return args


def versions() -> dict[str, str]:
    """The versions of the tools a benchmark compares, as installed here."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for dist in COMPARED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def table(columns: list[str], rows: list[list[str]]) -> dict:
    """One table: column headings and rows of already formatted cells."""
    assert all(len(row) == len(columns) for row in rows), (columns, rows)
    return {"columns": columns, "rows": rows}


def summary_line(
    what: str,
    gitml: float,
    peer: str,
    peer_value: float,
    floor: str | None = None,
    floor_value: float | None = None,
    unit: str = "s",
) -> dict:
    """One line of the summary table: gitml's figure against a peer's (and the floor's)."""
    return {"what": what, "gitml": gitml, "peer": peer, "peer_value": peer_value,
            "floor": floor, "floor_value": floor_value, "unit": unit}  # fmt: skip


def save(
    name: str,
    tables: dict[str, dict],
    *,
    quick: bool,
    sizes: dict | None = None,
    summary: list[dict] | None = None,
) -> Path:
    """Write ``tables`` (id -> `table(...)`) as results/<name>.json, with how they were measured.

    ``summary``: `summary_line(...)` lines for docs/performance.md's summary of every benchmark.
    """
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
            "versions": versions(),
        },
        "tables": tables,
        "summary": summary or [],
    }
    folder = Path(os.environ.get("GITML_BENCH_RESULTS") or (QUICK_RESULTS if quick else RESULTS))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}; `python benchmarks/tables.py` updates the docs from results/",
          file=sys.stderr)  # fmt: skip
    return path
