"""Scale: a team's history of 100,000 runs in 2,000 commits on 20 branches.

The history is made by `synth.make_scale_history` (fast-import; forks, merges, two-level
lineage, a metrics.toml per commit). Measured as whole processes, wall seconds and peak RSS of
the process tree (getrusage; the largest process, which for a cold index is git's own tree walk):

- `gitml runs --where` with a cold index (deleted first) and warm (median of 5);
- `gitml diff` between two branches, and `dvc metrics diff` of the same two (the project has a
  dvc.yaml naming metrics.toml, so DVC reads the same files);
- `gitml lineage` of a run and of a path;
- `mlflow.search_runs` with the same filter over an MLflow sqlite store holding as many runs.
  Logging 100,000 runs through MLflow's client takes hours, so 200 runs are logged through it
  and their rows in every table are copied, with fresh ids and values, up to the full count.

Memory is "bounded" when the peak does not grow with the history: the same commands also run on
a tenth of it (10,000 runs in 200 commits) and the peaks are printed side by side.

    python benchmarks/bench_scale.py                  # 100,000 runs, and 10,000
    python benchmarks/bench_scale.py --runs 20000     # smaller
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_core import bin_of  # noqa: E402
from bench_serve import measured  # noqa: E402
from results import arguments, save, summary_line  # noqa: E402
from results import table as results_table  # noqa: E402
from synth import ENV, make_scale_history  # noqa: E402

QUERY = "metrics.accuracy > 0.99 and params.model = 'rf'"
MLFLOW_QUERY = "metrics.accuracy > 0.99 and params.model = 'rf'"


def median_of(argv: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    got = [measured(argv, cwd) for _ in range(repeat)]
    return statistics.median(t for t, _ in got), max(m for _, m in got)


def build(tmp: Path, runs: int, commits: int, branches: int) -> Path:
    root = tmp / f"history-{runs}"
    start = time.perf_counter()
    made = make_scale_history(root, runs=runs, commits=commits, branches=branches,
                              remote=tmp / f"remote-{runs}",
                              files={"dvc.yaml": "metrics:\n  - metrics.toml\n"})  # fmt: skip
    print(f"built {made} in {time.perf_counter() - start:.0f} s", flush=True)
    return root


def gitml_figures(root: Path, repeat: int) -> dict[str, tuple[float, float]]:
    gitml = bin_of("gitml")
    shutil.rmtree(root / ".gitml" / "cache", ignore_errors=True)
    query = [gitml, "runs", "--where", QUERY, "--format", "csv"]
    figures = {"runs --where, cold index": measured(query, root)}
    figures["runs --where, warm index"] = median_of(query, root, repeat)
    figures["diff exp-03 exp-04"] = median_of([gitml, "diff", "exp-03", "exp-04"], root, repeat)
    summary = (root / "metrics.toml").read_text()
    run = summary.split('run = "')[1].split('"')[0]
    figures["lineage <run>"] = median_of([gitml, "lineage", run], root, repeat)
    figures["lineage data/features.parquet"] = median_of(
        [gitml, "lineage", "data/features.parquet"], root, repeat
    )
    return figures


def dvc_figures(root: Path, repeat: int) -> dict[str, tuple[float, float]]:
    dvc = bin_of("dvc")
    argv = [dvc, "metrics", "diff", "exp-03", "exp-04"]
    return {"dvc metrics diff exp-03 exp-04": median_of(argv, root, repeat)}


MLFLOW_SEED = """
import mlflow, random
mlflow.set_tracking_uri({uri!r})
rng = random.Random(0)
for i in range(200):
    with mlflow.start_run(run_name=f"run-{{i}}"):
        mlflow.log_params({{"depth": rng.randint(1, 10), "lr": rng.choice([0.3, 0.1, 0.03]),
                           "model": rng.choice(["rf", "gbm", "svm"]), "seed": i}})
        mlflow.log_metrics({{"accuracy": rng.random(), "f1": rng.random(), "loss": rng.random()}})
"""
MLFLOW_SEARCH = """
import sys, time
import mlflow
mlflow.set_tracking_uri({uri!r})
start = time.perf_counter()
df = mlflow.search_runs(search_all_experiments=True, filter_string={query!r}, max_results=200000)
print(time.perf_counter() - start, len(df), file=sys.stderr)
"""


def mlflow_store(tmp: Path, runs: int) -> str:
    """An MLflow sqlite store of ``runs`` runs: 200 logged by MLflow, the rest copied in SQL."""
    import sqlite3

    db_path = tmp / f"mlflow-{runs}.db"
    uri = f"sqlite:///{db_path}"
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet"}
    subprocess.run([sys.executable, "-c", MLFLOW_SEED.format(uri=uri)], cwd=tmp, check=True,
                   env=env, capture_output=True)  # fmt: skip
    db = sqlite3.connect(db_path)
    rng = random.Random(1)
    seeds = [r[0] for r in db.execute("SELECT run_uuid FROM runs")]
    tables = {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")]
              for t in ("runs", "params", "metrics", "latest_metrics", "tags")}  # fmt: skip
    by_run: dict[str, dict[str, list[tuple]]] = {run: {t: [] for t in tables} for run in seeds}
    for table, columns in tables.items():
        key = columns.index("run_uuid")
        for row in db.execute(f"SELECT * FROM {table}"):
            by_run[row[key]][table].append(row)
    inserts = {t: f"INSERT INTO {t} VALUES ({','.join('?' * len(c))})" for t, c in tables.items()}
    with db:
        for n in range(runs - len(seeds)):
            source = seeds[n % len(seeds)]
            new = uuid.uuid4().hex
            for table, columns in tables.items():
                copies = []
                for row in by_run[source][table]:
                    copy = [new if v == source else v for v in row]
                    if table == "runs":
                        copy[columns.index("name")] = f"copy-{n}"
                        slot = columns.index("artifact_uri")
                        copy[slot] = str(copy[slot]).replace(source, new)
                    if table in ("metrics", "latest_metrics"):
                        copy[columns.index("value")] = rng.random()
                    copies.append(copy)
                db.executemany(inserts[table], copies)
    count = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    db.close()
    print(f"mlflow store: {count} runs", flush=True)
    return uri


def mlflow_figures(tmp: Path, runs: int, repeat: int) -> dict[str, tuple[float, float]]:
    uri = mlflow_store(tmp, runs)
    argv = [sys.executable, "-c", MLFLOW_SEARCH.format(uri=uri, query=MLFLOW_QUERY)]
    env = {"GIT_PYTHON_REFRESH": "quiet"}
    repeat = min(repeat, 3)  # a 3.4 s process at 100,000 runs: three give a steady median
    got = [measured(argv, tmp, env=env) for _ in range(repeat)]
    calls = []
    for _ in range(repeat):
        done = subprocess.run(argv, cwd=tmp, check=True, capture_output=True, text=True,
                              env={**os.environ, **env})  # fmt: skip
        calls.append(float(done.stderr.split()[-2]))
    return {
        "mlflow.search_runs (sqlite), with import": (
            statistics.median(t for t, _ in got), max(m for _, m in got)),
        "mlflow.search_runs (sqlite), call only": (statistics.median(calls), 0.0),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-small", action="store_true", help="skip the tenth-size history")
    args = arguments(
        parser, {"runs": 2_000, "commits": 60, "branches": 5, "repeat": 1, "no_small": True}
    )
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.update(ENV)
    tmp = Path(tempfile.mkdtemp(prefix="gitml-scale-"))
    results: dict[str, dict] = {}
    try:
        sizes = [(args.runs, args.commits)]
        if not args.no_small:
            sizes.append((args.runs // 10, max(3 * args.branches, args.commits // 10)))
        for runs, commits in sizes:
            root = build(tmp, runs, commits, args.branches)
            figures = gitml_figures(root, args.repeat)
            # `dvc metrics diff` takes 18-25 s a call at 100,000 runs: once is enough there
            figures |= dvc_figures(root, 1 if runs >= 50_000 else min(args.repeat, 3))
            figures |= mlflow_figures(tmp, runs, args.repeat)
            results[str(runs)] = {k: list(v) for k, v in figures.items()}
            shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    save("scale", {"scale": scale_table(results)}, quick=args.quick,
         sizes={"runs": args.runs, "commits": args.commits, "branches": args.branches},
         summary=scale_summary(results))  # fmt: skip


def scale_summary(results: dict[str, dict]) -> list[dict]:
    """The summary lines: a warm and a cold query, and a diff, on the largest history."""
    size = next(iter(results))
    big = results[size]
    runs = f"{int(size):,} runs"
    search = big["mlflow.search_runs (sqlite), with import"][0]
    return [
        summary_line(f"`runs --where` over {runs}, warm index", big["runs --where, warm index"][0],
              "`mlflow.search_runs` (sqlite)", search),
        summary_line(f"`runs --where` over {runs}, cold index", big["runs --where, cold index"][0],
              "`mlflow.search_runs` (sqlite)", search),
        summary_line(f"`gitml diff` of two branches, {runs}", big["diff exp-03 exp-04"][0],
              "`dvc metrics diff`", big["dvc metrics diff exp-03 exp-04"][0]),
    ]  # fmt: skip


def scale_table(results: dict[str, dict]) -> dict:
    """The docs' table: every command at each history size, seconds and peak RSS."""
    sizes = list(results)
    return results_table(["command", *(f"{int(s):,} runs" for s in sizes)], [
        [name, *(f"{results[s][name][0]:.2f} s / {results[s][name][1]:.0f} MiB"
                 if name in results[s] else "" for s in sizes)]
        for name in results[sizes[0]]
    ])  # fmt: skip


def report(results: dict[str, dict]) -> None:
    sizes = list(results)
    print("\n## Scale (median wall seconds; peak RSS of the process tree)")
    head = "".join(f"{f'{int(s):,} runs':>26}" for s in sizes)
    print(f"  {'command':<44}{head}")
    for name in results[sizes[0]]:
        cells = "".join(f"{results[s][name][0]:>12.2f} s {results[s][name][1]:>7.0f} MiB"
                        for s in sizes if name in results[s])  # fmt: skip
        print(f"  {name:<44}{cells}")
    big = results[sizes[0]]
    warm = big["runs --where, warm index"]
    search = big["mlflow.search_runs (sqlite), with import"]
    call = big["mlflow.search_runs (sqlite), call only"]
    diff, dvc = big["diff exp-03 exp-04"], big["dvc metrics diff exp-03 exp-04"]
    print(f"\n  gitml runs --where (warm) / mlflow.search_runs: time x{warm[0] / search[0]:.2f}, "
          f"RSS x{warm[1] / search[1]:.2f}; against the call alone: x{warm[0] / call[0]:.2f}")  # fmt: skip
    print(f"  gitml diff / dvc metrics diff: time x{diff[0] / dvc[0]:.2f}, "
          f"RSS x{diff[1] / dvc[1]:.2f}")  # fmt: skip
    if len(sizes) > 1:
        small = results[sizes[1]]
        growth = {k: big[k][1] / small[k][1] for k in big if small.get(k, [0, 0])[1]}
        print("  peak RSS, full size / a tenth: "
              + ", ".join(f"{k} x{v:.2f}" for k, v in growth.items()))  # fmt: skip


if __name__ == "__main__":
    main()
