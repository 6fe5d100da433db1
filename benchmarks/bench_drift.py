"""Drift over 300,000 rows x 50 features, gitml against a stored profile, side by side with
Evidently and with plain scipy on the same data, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_drift.py                  # 300,000 rows x 50 features
    python benchmarks/bench_drift.py --rows 100000

Evidently 0.7 does not import with pandas 3, so it runs in its own virtual environment
(created once under ~/.cache/gitml-bench/, `evidently` with `pandas<3`); `--no-evidently`
skips it. Each tool runs as a fresh process; wall seconds and peak RSS come from getrusage.

- gitml: `gitml drift -r <run> -c current.parquet` where the run logged the reference with
  `run.log_input(..., profile=True)`: the reference is its profile, not the raw data; and
  `gitml drift -r reference.parquet -c current.parquet`, both raw files, each read a column
  at a time.
- Evidently: `Report([DataDriftPreset()]).run(current, reference)` on both raw frames.
- scipy: `ks_2samp` and `wasserstein_distance` per numeric column, `chi2_contingency` per
  categorical one, on both raw frames.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_serve import measured  # noqa: E402
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV  # noqa: E402

NUMERIC, CATEGORICAL = 40, 10
SHIFTED = ("n0", "n1", "c0")
TRAIN = """\
import gitml
with gitml.start_run(name="reference") as run:
    run.log_input("reference.parquet", profile=True)
"""
SCIPY = """\
import sys, pandas as pd, numpy as np
from scipy import stats
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
drifted = []
for c in ref.columns:
    if ref[c].dtype.kind == "f":
        p = stats.ks_2samp(ref[c], cur[c]).pvalue
        w = stats.wasserstein_distance(ref[c], cur[c]) / ref[c].std()
        drifted += [c] if w > 0.1 else []
    else:
        table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref[c], cur[c]])
        drifted += [c] if stats.chi2_contingency(table).pvalue < 0.05 else []
print(",".join(drifted), file=sys.stderr)
"""
EVIDENTLY = """\
import sys, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
print(str(snapshot.dict())[:200], file=sys.stderr)
"""


def write_data(base: Path, rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    out = []
    for name, seed, shift in (("reference", 0, 0.0), ("current", 1, 0.3)):
        rng = np.random.default_rng(seed)
        data = {f"n{i}": rng.normal(shift if f"n{i}" in SHIFTED else 0.0, 1, rows)
                for i in range(NUMERIC)}  # fmt: skip
        for i in range(CATEGORICAL):
            p = [0.5, 0.3, 0.2] if not (shift and f"c{i}" in SHIFTED) else [0.3, 0.3, 0.4]
            data[f"c{i}"] = rng.choice(["a", "b", "c"], rows, p=p)
        path = base / f"{name}.parquet"
        pd.DataFrame(data).to_parquet(path)
        out.append(path)
    return out[0], out[1]


def evidently_python() -> Path:
    venv = Path.home() / ".cache" / "gitml-bench" / "evidently-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3",
                        "pyarrow"], check=True)  # fmt: skip
    return python


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--no-evidently", action="store_true")
    args = arguments(parser, {"rows": 5_000, "no_evidently": True})
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-drift-"))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    results = []
    try:
        project = base / "project"
        project.mkdir()
        reference, current = write_data(project, args.rows)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
        subprocess.run([sys.executable, "-m", "gitml", "init", "--remote", str(base / "remote")],
                       cwd=project, check=True, capture_output=True)  # fmt: skip
        (project / "train.py").write_text(TRAIN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gitml", "run", "--", sys.executable, "train.py"],
                       cwd=project, check=True, capture_output=True, env={**os.environ, **ENV})  # fmt: skip
        logged = time.perf_counter() - start
        run_id = next((project / ".gitml/runs").iterdir()).name
        profile = next((project / ".gitml/runs" / run_id / "profiles").iterdir())
        results.append(("gitml: log_input(profile=True) once, at training", logged,
                        None, profile.stat().st_size))  # fmt: skip
        seconds, peak = measured([sys.executable, "-m", "gitml", "drift", "-r", run_id, "-c",
                                  str(current), "--no-save"], project, ok=("1",))  # fmt: skip
        results.append(("gitml drift against the stored profile", seconds, peak, None))
        seconds, peak = measured([sys.executable, "-m", "gitml", "drift", "-r", str(reference),
                                  "-c", str(current), "--no-save"], project, ok=("1",))  # fmt: skip
        results.append(("gitml drift, raw reference file against raw current file", seconds,
                        peak, None))  # fmt: skip
        (base / "scipy_drift.py").write_text(SCIPY)
        seconds, peak = measured([sys.executable, str(base / "scipy_drift.py"), str(reference),
                                  str(current)], project)  # fmt: skip
        results.append(("scipy per column on both raw frames", seconds, peak, None))
        if not args.no_evidently:
            (base / "evidently_run.py").write_text(EVIDENTLY)
            seconds, peak = measured([str(evidently_python()), str(base / "evidently_run.py"),
                                      str(reference), str(current)], project)  # fmt: skip
            results.append(("Evidently DataDriftPreset on both raw frames", seconds, peak, None))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    gitml_s, gitml_rss = results[1][1], results[1][2]
    raw_s, raw_rss = results[2][1], results[2][2]
    print(f"\n## Drift, {args.rows:,} rows x {NUMERIC + CATEGORICAL} features "
          f"({NUMERIC} numeric, {CATEGORICAL} categorical); ratio = gitml / other")  # fmt: skip
    for name, seconds, peak, size in results:
        extra = f"   profile {size / 1024:.0f} KiB" if size else ""
        ratio = ""
        if peak and name.startswith(("scipy", "Evidently")):
            ratio = (f"   profile: time x{gitml_s / seconds:.2f} RSS x{gitml_rss / peak:.2f};"
                     f" raw: time x{raw_s / seconds:.2f} RSS x{raw_rss / peak:.2f}")  # fmt: skip
        rss = f"{peak:8.0f} MiB" if peak else " " * 12
        print(f"  {name:<48} {seconds:8.1f} s {rss}{extra}{ratio}")
    rows = [[name + (f" (profile: {size / 1024:.0f} KiB)" if size else ""), f"{seconds:.1f} s",
             f"{peak:,.0f} MiB" if peak else "",
             f"profile: {gitml_s / seconds:.3g} time, {gitml_rss / peak:.2f} memory; raw files: "
             f"{raw_s / seconds:.3g} time, {raw_rss / peak:.2f} memory"
             if peak and name.startswith(("scipy", "Evidently")) else ""]
            for name, seconds, peak, size in results]  # fmt: skip
    scipy = next(r for r in results if r[0].startswith("scipy"))
    summary = [summary_line(f"drift of two raw files, {args.rows:,} rows x 50", raw_s, "scipy per column",
                     scipy[1]),
               summary_line(f"drift against a stored profile, {args.rows:,} rows x 50", gitml_s,
                     "scipy per column on both raw files", scipy[1])]  # fmt: skip
    evidently = [r for r in results if r[0].startswith("Evidently")]
    if evidently:
        summary.append(
            summary_line("drift against a stored profile", gitml_s, "Evidently", evidently[0][1])
        )
    save("drift", {"drift": table(["what", "time", "peak RSS", "ratio gitml/other"], rows)},
         quick=args.quick, sizes={"rows": args.rows}, summary=summary)  # fmt: skip


if __name__ == "__main__":
    main()
