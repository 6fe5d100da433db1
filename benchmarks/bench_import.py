"""Import speed: `gitml import mlflow` on stores written by the real mlflow package, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_import.py                       # 100 runs x 1,000 steps
    python benchmarks/bench_import.py --runs 1000 --steps 100

For the file store (`mlruns/`) and a sqlite store with the same content: the time of the
whole `gitml import mlflow --no-artifacts` process (runs per second), and for scale the time
MLflow itself takes to read the same runs and every metric history through its client.
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
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV  # noqa: E402

READ = """\
import os, sys, time
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient
from mlflow.entities import ViewType
client = MlflowClient(sys.argv[1], sys.argv[1])
ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
token, n, points = None, 0, 0
while True:
    page = client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
    for run in page:
        n += 1
        for key in run.data.metrics:
            points += len(client.get_metric_history(run.info.run_id, key))
    token = page.token
    if not token:
        break
print(n, points)
"""


def make_store(uri: str, runs: int, steps: int) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("bench")
    base = int(time.time() * 1000) - 10_000_000
    for i in range(runs):
        rid = client.create_run(
            experiment, start_time=base + i * 1000, run_name=f"r{i}"
        ).info.run_id
        client.log_batch(
            rid, params=[Param("lr", str(0.001 * (i + 1))), Param("depth", str(i % 7))]
        )
        for start in range(0, steps, 1000):
            client.log_batch(
                rid,
                metrics=[
                    Metric("loss", 1.0 / (s + 1), base + s, s)
                    for s in range(start, min(steps, start + 1000))
                ],
            )
        client.set_terminated(rid, end_time=base + i * 1000 + 500)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv,
        cwd=cwd,
        check=True,
        capture_output=True,
        env={**os.environ, **ENV, "MLFLOW_ALLOW_FILE_STORE": "true"},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    args = arguments(parser, {"runs": 5, "steps": 20})
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-import-"))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    rows = []
    try:
        (base / "read.py").write_text(READ)
        for kind in ("file", "sqlite"):
            if kind == "file":
                uri, source = (base / "mlruns").as_uri(), str(base / "mlruns")
            else:
                uri = source = f"sqlite:///{base / 'mlflow.db'}"
            make_store(uri, args.runs, args.steps)
            project = base / f"project-{kind}"
            project.mkdir()
            subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
            subprocess.run(
                [sys.executable, "-m", "gitml", "init", "--remote", str(base / f"remote-{kind}")],
                cwd=project,
                check=True,
                capture_output=True,
            )
            importing = [sys.executable, "-m", "gitml", "import", "mlflow", source,
                         "--no-artifacts", "--no-progress"]  # fmt: skip
            gitml_s = timed(importing, project)
            again_s = timed(importing, project)  # nothing new: every run is there already
            mlflow_s = timed([sys.executable, str(base / "read.py"), uri], base)
            rows.append((kind, gitml_s, again_s, mlflow_s))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n## gitml import mlflow, {args.runs} runs x {args.steps} steps (whole processes)")
    for kind, gitml_s, again_s, mlflow_s in rows:
        print(
            f"  {kind:<7} import {gitml_s:6.1f} s = {args.runs / gitml_s:6.1f} runs/s;"
            f"  again (nothing new) {again_s:5.1f} s;"
            f"  MLflow alone reading it all {mlflow_s:5.1f} s (ratio {gitml_s / mlflow_s:.2f})"
        )
    save("import", {"import": table(
        ["store", "`gitml import mlflow`", "runs per second", "importing again",
         "MLflow's client reading it all", "ratio"],
        [["`mlruns/` file store" if kind == "file" else kind, f"{g:.1f} s",
          f"{args.runs / g:.0f}", f"{again:.1f} s", f"{m:.1f} s", f"{g / m:.2f}"]
         for kind, g, again, m in rows],
    )}, quick=args.quick, sizes={"runs": args.runs, "steps": args.steps},
        summary=[summary_line(f"importing an MLflow {kind} store, {args.runs} runs x {args.steps} steps",
                       g, "MLflow's client reading it all", m) for kind, g, _, m in rows])  # fmt: skip


if __name__ == "__main__":
    main()
