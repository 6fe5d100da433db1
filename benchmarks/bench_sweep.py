"""Sweep throughput: `gitml sweep` here and on a local Dask cluster, beside DVC's queue.

    pip install -e ".[bench]"
    python benchmarks/bench_sweep.py              # 10 trials, 1 round
    python benchmarks/bench_sweep.py --quick      # 1 trial, 1 round (CI)

The same training script (a RandomForest on the wine data, its params read from params.yaml
and overlaid by `gitml.params()`) is run as ``--trials`` trials of a grid, each way in turn,
round after round, every figure a whole process's wall time:

- the floor: `python train.py` run directly, once a trial, one after another;
- `gitml sweep -j 1` and `gitml sweep -j 2` (each trial a `gitml run` in a worktree slot);
- `gitml sweep --dask` on a local cluster: `dask scheduler` and a `dask worker` with two
  worker processes on 127.0.0.1 (their start-up is reported apart, not counted per trial);
- DVC: `dvc exp run --queue -S ...` for each trial, then `dvc queue start -j 2`, waited for
  until `dvc queue status` shows nothing queued or running.

Reported: trials per minute, and the overhead a trial pays over running the script directly
(wall of the sweep with one job, minus the floor's, per trial).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_core import bin_of  # noqa: E402
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV  # noqa: E402

TRAIN = """\
import json, yaml, gitml
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
p = yaml.safe_load(open("params.yaml"))
p.update(gitml.params())
X, y = load_wine(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
model = RandomForestClassifier(n_estimators=p["trees"], max_depth=p["depth"],
                               random_state=0).fit(Xtr, ytr)
json.dump({"accuracy": model.score(Xte, yte)}, open("metrics.json", "w"))
"""
DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [trees, depth]
    metrics:
      - metrics.json:
          cache: false
"""
DEPTHS = [2, 3, 4, 5, 6, 7]
TREES = [10, 20, 30, 40]


def grid(trials: int) -> list[tuple[int, int]]:
    return list(itertools.product(TREES, DEPTHS))[:trials]


def sh(root: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=root, check=check, env={**os.environ, **ENV},
                          capture_output=True, text=True)  # fmt: skip


def project(base: Path, name: str, kind: str) -> Path:
    root = base / name
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    (root / "train.py").write_text(TRAIN)
    (root / "params.yaml").write_text("trees: 10\ndepth: 2\n")
    if kind == "gitml":
        sh(root, sys.executable, "-m", "gitml", "init", "--remote", str(base / f"{name}-remote"))
        origin = base / f"{name}-origin.git"
        sh(base, "git", "init", "-q", "--bare", "-b", "main", str(origin))
        sh(root, "git", "remote", "add", "origin", str(origin))
    else:
        sh(root, bin_of("dvc"), "init", "-q")
        (root / "dvc.yaml").write_text(DVC_YAML)
        (root / ".gitignore").write_text("metrics.json\n")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "a script to sweep")
    if kind == "gitml":
        sh(root, "git", "push", "-q", "origin", "main")
    return root


def timed(root: Path, *argv: str) -> float:
    start = time.perf_counter()
    done = sh(root, *argv, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def direct(root: Path, points: list[tuple[int, int]]) -> float:
    start = time.perf_counter()
    for trees, depth in points:
        env = {"GITML_PARAM_trees": str(trees), "GITML_PARAM_depth": str(depth)}
        subprocess.run([sys.executable, "train.py"], cwd=root, check=True,
                       env={**os.environ, **ENV, **env}, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def gitml_sweep(root: Path, trials: int, *extra: str) -> float:
    trees = ",".join(map(str, TREES))
    depths = f"range({DEPTHS[0]},{DEPTHS[-1] + 1})"
    return timed(root, sys.executable, "-m", "gitml", "sweep", "-p", f"trees={trees}",
                 "-p", f"depth={depths}", "-n", str(trials), "-m", "accuracy",
                 "--no-commit", *extra, "--", "python", "train.py")  # fmt: skip


def dvc_queue(root: Path, points: list[tuple[int, int]]) -> float:
    dvc = bin_of("dvc")
    start = time.perf_counter()
    for trees, depth in points:
        sh(root, dvc, "exp", "run", "--queue", "-S", f"trees={trees}", "-S", f"depth={depth}")
    sh(root, dvc, "queue", "start", "-j", "2")
    while True:
        status = sh(root, dvc, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(0.3)
    seconds = time.perf_counter() - start
    failed = status.count("Failed")
    if failed:
        raise SystemExit(f"dvc queue: {failed} experiment(s) failed:\n{status}")
    sh(root, dvc, "queue", "stop")
    sh(root, dvc, "exp", "remove", "--all-commits", "-q", check=False)
    return seconds


def cluster(base: Path) -> tuple[str, list[subprocess.Popen[bytes]], float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = bin_of("dask")
    start = time.perf_counter()
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]  # fmt: skip
    procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--host", "127.0.0.1", "--no-dashboard", "--local-directory",
                                   str(base / "workers")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))  # fmt: skip
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    return address, procs, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = arguments(parser, {"trials": 1, "rounds": 1})
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-sweep-"))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    points = grid(args.trials)
    times: dict[str, list[float]] = {}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        address, procs, started = cluster(base)
        for r in range(args.rounds):
            cases = {
                "python train.py, directly, one after another": lambda r=r: direct(
                    project(base, f"direct-{r}", "dvc"), points),
                "gitml sweep -j 1": lambda r=r: gitml_sweep(project(base, f"g1-{r}", "gitml"),
                                                           args.trials, "-j", "1"),
                "gitml sweep -j 2": lambda r=r: gitml_sweep(project(base, f"g2-{r}", "gitml"),
                                                           args.trials, "-j", "2"),
                "gitml sweep --dask (2 worker processes)": lambda r=r: gitml_sweep(
                    project(base, f"gd-{r}", "gitml"), args.trials, "--dask", address),
                "dvc exp run --queue + dvc queue start -j 2": lambda r=r: dvc_queue(
                    project(base, f"dvc-{r}", "dvc"), points),
            }  # fmt: skip
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for name in order:
                times.setdefault(name, []).append(cases[name]())
                print(f"round {r + 1}: {name}: {times[name][-1]:.1f} s", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
    wall = {name: statistics.median(values) for name, values in times.items()}
    floor = wall["python train.py, directly, one after another"]
    dvc = wall["dvc exp run --queue + dvc queue start -j 2"]
    rows = []
    for name, seconds in wall.items():
        per_minute = args.trials / seconds * 60
        extra = (seconds - floor) / args.trials
        rows.append([name, f"{seconds:.1f} s", f"{per_minute:.1f}",
                     "" if seconds == floor else f"{extra:+.2f} s",
                     f"{dvc / seconds:.2f}x" if seconds != dvc else ""])  # fmt: skip
    print(f"\n## {args.trials} trials, median of {args.rounds} round(s); local cluster up in "
          f"{started:.1f} s")  # fmt: skip
    for row in rows:
        print("  " + "  ".join(f"{c:>12}" if i else f"{c:<46}" for i, c in enumerate(row)))
    summary = [
        summary_line(f"sweep of {args.trials} trials, -j 2", wall["gitml sweep -j 2"],
                     "dvc exp run --queue + queue start -j 2", dvc, "the script run directly",
                     floor),
        summary_line(f"sweep of {args.trials} trials on a local Dask cluster",
                     wall["gitml sweep --dask (2 worker processes)"],
                     "dvc exp run --queue + queue start -j 2", dvc),
    ]  # fmt: skip
    columns = ["how", "wall", "trials / minute", "over the script, per trial",
               "DVC's queue time / this"]  # fmt: skip
    save("sweep", {"sweep": table(columns, rows)}, quick=args.quick,
         sizes={"trials": args.trials, "rounds": args.rounds, "cluster_start_s": round(started, 1)},
         summary=summary)  # fmt: skip


if __name__ == "__main__":
    main()
