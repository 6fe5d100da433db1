"""Core tracker benchmarks, gitml side by side with MLflow and DVC/DVCLive, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_core.py            # full sizes (several minutes)
    python benchmarks/bench_core.py --quick    # smaller sizes, same comparisons

Every figure is the median of several runs of a whole process (imports included) unless said
otherwise; ratios are gitml / other (below 1 means gitml is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV  # noqa: E402

QUERY = "metrics.accuracy > 0.9 and params.depth >= 3"
MLFLOW_QUERY = "metrics.accuracy > 0.9 and params.model = 'rf'"


REPEAT = 5  # whole processes per figure (`--repeat`)


def wall(
    argv: list[str], *, cwd: Path | None = None, repeat: int | None = None, env: dict | None = None
) -> float:
    """Median wall time of a whole process."""
    repeat = REPEAT if repeat is None else min(repeat, REPEAT)
    times = []
    warm = int(REPEAT > 1)
    for _ in range(repeat + warm):  # a first run warms the page cache and is not counted
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times[warm:])


def python_timed(code: str, *, cwd: Path, env: dict | None = None) -> dict:
    """Run a snippet in a fresh interpreter; it prints a JSON dict of its own timings."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, check=True,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def bin_of(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed: pip install -e '.[bench]'")
    return found


# -- 1. start-up ------------------------------------------------------------------------------
def bench_startup() -> list[tuple]:
    rows = [("python -c pass", wall([sys.executable, "-c", "pass"]), None)]
    gitml_help = wall([bin_of("gitml"), "--help"])
    rows.append(("gitml --help", gitml_help, None))
    for other in (["dvc", "--version"], ["mlflow", "--version"]):
        t = wall([bin_of(other[0]), *other[1:]], repeat=3)
        rows.append((" ".join(other), t, gitml_help / t))
    return rows


# -- 2. a run's fixed cost --------------------------------------------------------------------
# Whole processes, alternated round by round: a run of 10 steps in each tool; the floor writes
# the same two files (run.toml, metrics.parquet) with the plain library calls.
FIXED_STEPS = 10
# pyarrow's plain constructors (`pa.table`, even `pa.array`) import pandas, 0.3 s; the second
# floor builds the columns from raw buffers as gitml does, which pyarrow alone can.
FLOOR = """
import os, pyarrow as pa, pyarrow.parquet as pq, tomli_w
os.makedirs("floor", exist_ok=True)
steps = list(range({n}))
pq.write_table(pa.table({{"key": ["loss"] * len(steps), "step": steps,
                         "value": [1.0 / (s + 1) for s in steps]}}), "floor/metrics.parquet")
with open("floor/run.toml", "wb") as f:
    tomli_w.dump({{"id": "floor", "status": "finished", "metrics": {{"loss": 1.0 / len(steps)}}}}, f)
"""
FLOOR_BUFFERS = """
import array, os, pyarrow as pa, pyarrow.parquet as pq, tomli_w
os.makedirs("floor", exist_ok=True)
n = {n}
steps = array.array("q", range(n))
values = array.array("d", (1.0 / (s + 1) for s in range(n)))
offsets = array.array("i", range(0, 4 * n + 1, 4))
columns = [
    pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(b"loss" * n)]),
    pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(steps)]),
    pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(values)]),
]
pq.write_table(pa.Table.from_arrays(columns, names=["key", "step", "value"]), "floor/m.parquet")
with open("floor/run.toml", "wb") as f:
    tomli_w.dump({{"id": "floor", "status": "finished", "metrics": {{"loss": 1.0 / n}}}}, f)
"""
GITML_FIXED = """
import gitml
with gitml.start_run(name="fixed") as run:
    for i in range({n}):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
"""
MLFLOW_FIXED = """
import mlflow
mlflow.set_tracking_uri({uri!r})
with mlflow.start_run():
    for i in range({n}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
"""


def bench_fixed(tmp: Path) -> list[tuple[str, float]]:
    """Median wall seconds of whole processes, the cases alternated in each round."""
    from synth import make_history

    project = make_history(tmp / "fixed-project", runs=1, commits=1, remote=tmp / "remote-fixed")
    py = sys.executable
    cases = [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import gitml'", [py, "-c", "import gitml"]),
        ("floor: pyarrow's pa.table + tomli_w write the same files",
         [py, "-c", FLOOR.format(n=FIXED_STEPS)]),
        ("floor: pyarrow from raw buffers + tomli_w",
         [py, "-c", FLOOR_BUFFERS.format(n=FIXED_STEPS)]),
        (f"gitml: start_run + {FIXED_STEPS} steps + end()",
         [py, "-c", GITML_FIXED.format(n=FIXED_STEPS)]),
        (f"mlflow (file store): start_run + {FIXED_STEPS} steps",
         [py, "-c", MLFLOW_FIXED.format(uri=(tmp / "mlruns-fixed").as_uri(), n=FIXED_STEPS)]),
        ("gitml run -- python -c pass", [bin_of("gitml"), "run", "-n", "x", "--", py, "-c", "pass"]),
    ]  # fmt: skip
    env = {**os.environ, **ENV, "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet"}
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    warm = int(REPEAT > 1)
    for round_ in range(REPEAT + warm):  # a round 0 warms the page cache and is not counted
        for label, argv in cases:
            start = time.perf_counter()
            subprocess.run(argv, cwd=project, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            if round_ >= warm:
                times[label].append(time.perf_counter() - start)
    return [(label, statistics.median(t)) for label, t in times.items()]


def fixed_table(fixed: list[tuple[str, float]]) -> dict:
    """The docs' table: a run's fixed cost against its floor, MLflow, and the targets."""
    t = dict(fixed)
    labels = list(t)
    bare, imported, plain, floor, gitml, mlflow, wrapped = (t[label] for label in labels)
    return table(["what (median wall seconds, whole processes)", "time", "over", "target"], [
        [labels[0], f"{bare:.3f} s", "", ""],
        [labels[1], f"{imported:.3f} s", f"{imported - bare:.3f} s over `python -c pass`", ""],
        [labels[2], f"{plain:.3f} s", f"{plain - bare:.3f} s over `python -c pass`", ""],
        [labels[3], f"{floor:.3f} s", f"{floor - bare:.3f} s over `python -c pass`", ""],
        [labels[4], f"{gitml:.3f} s", f"{gitml - imported:.3f} s over `import gitml`; "
         f"{gitml / floor:.2f}x the raw-buffer floor, {gitml / plain:.2f}x the plain one",
         "< 0.060 s over `import gitml`"],
        [labels[5], f"{mlflow:.3f} s", f"gitml / MLflow = {gitml / mlflow:.2f}", ""],
        [labels[6], f"{wrapped:.3f} s", f"{wrapped - bare:.3f} s over `python -c pass`",
         "< 0.25 s over `python -c pass`"],
    ])  # fmt: skip


# -- 3. per-call metric logging --------------------------------------------------------------
# Each timing runs from the start of the run to its end (gitml's `end()` writes
# metrics.parquet, MLflow's closes the run, DVCLive's writes its files): a per-call figure
# that leaves setup and teardown out flatters whoever defers the work to the end.
GITML_LOG = """
import json, time, gitml
t = time.perf_counter()
run = gitml.start_run("bench")
for i in range({n}):
    run.log_metric("loss", 1.0 / (i + 1))
run.end()
elapsed = time.perf_counter() - t
print(json.dumps({{"seconds": elapsed}}))
"""
MLFLOW_LOG = """
import json, time, mlflow
mlflow.set_tracking_uri({uri!r})
t = time.perf_counter()
with mlflow.start_run():
    for i in range({n}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
elapsed = time.perf_counter() - t
print(json.dumps({{"seconds": elapsed}}))
"""
DVCLIVE_LOG = """
import json, time
t = time.perf_counter()
from dvclive import Live
with Live(save_dvc_exp=False) as live:
    for i in range({n}):
        live.log_metric("loss", 1.0 / (i + 1))
        live.next_step()
elapsed = time.perf_counter() - t
print(json.dumps({{"seconds": elapsed}}))
"""


def bench_logging(tmp: Path, steps: int, other_steps: int) -> list[tuple]:
    from synth import make_history

    project = make_history(tmp / "log-project", runs=1, commits=1, remote=tmp / "remote1")
    g = python_timed(GITML_LOG.format(n=steps), cwd=project)["seconds"]
    rows = [(f"gitml run.log_metric x{steps}", g, steps, None)]
    # The peers log fewer steps (they are slow); the ratio compares runs of the same length,
    # since setup and teardown are counted.
    same = python_timed(GITML_LOG.format(n=other_steps), cwd=project)["seconds"]
    rows.append((f"gitml run.log_metric x{other_steps}", same, other_steps, None))
    env = {
        "MLFLOW_TRACKING_URI": "",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    cases = [
        ("mlflow file store", MLFLOW_LOG.format(uri=f"file://{tmp / 'mlruns'}", n=other_steps)),
        ("mlflow sqlite", MLFLOW_LOG.format(uri=f"sqlite:///{tmp / 'mlflow.db'}", n=other_steps)),
        ("dvclive", DVCLIVE_LOG.format(n=other_steps)),
    ]
    dvclive_dir = tmp / "dvclive-project"
    dvclive_dir.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=dvclive_dir, check=True)
    dvc_env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([bin_of("dvc"), "init", "-q"], cwd=dvclive_dir, check=True, env=dvc_env)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=dvclive_dir, check=True,
                   env={**dvc_env, **__import__("synth").ENV})  # fmt: skip
    for label, code in cases:
        cwd = dvclive_dir if label == "dvclive" else tmp
        t = python_timed(code, cwd=cwd, env=env)["seconds"]
        rows.append((f"{label} x{other_steps}", t, other_steps, same / t))
    return rows


# -- 4. queries over many runs ---------------------------------------------------------------
MLFLOW_FILL = """
import json, random, time, mlflow
mlflow.set_tracking_uri({uri!r})
rng = random.Random(0)
for i in range({n}):
    with mlflow.start_run(run_name=f"run-{{i}}"):
        mlflow.log_params({{"depth": rng.randint(1, 10), "model": rng.choice(["rf", "gbm", "svm"]), "seed": i}})
        mlflow.log_metrics({{"accuracy": rng.random(), "f1": rng.random(), "loss": rng.random()}})
print(json.dumps({{}}))
"""
MLFLOW_SEARCH = """
import json, time
t0 = time.perf_counter()
import mlflow
mlflow.set_tracking_uri({uri!r})
t1 = time.perf_counter()
df = mlflow.search_runs(search_all_experiments=True, filter_string={query!r}, max_results=100000)
t2 = time.perf_counter()
print(json.dumps({{"call": t2 - t1, "total": t2 - t0, "rows": len(df)}}))
"""


def bench_query(tmp: Path, runs: int, with_mlflow: bool) -> list[tuple]:
    from synth import make_history

    project = make_history(tmp / f"q{runs}", runs=runs, commits=max(10, runs // 1000),
                           remote=tmp / f"remote-q{runs}")  # fmt: skip
    gitml_bin = bin_of("gitml")
    argv = [gitml_bin, "runs", "--where", QUERY, "--format", "csv"]
    index = project / ".gitml" / "cache" / "index.sqlite"
    start = time.perf_counter()
    subprocess.run(argv, cwd=project, check=True, stdout=subprocess.DEVNULL)
    cold = time.perf_counter() - start
    warm = wall(argv, cwd=project, repeat=5)
    rows = [(f"gitml runs --where, {runs} runs, cold index", cold, None),
            (f"gitml runs --where, {runs} runs, warm index", warm, None)]  # fmt: skip
    assert index.exists()
    if with_mlflow:
        env = {"GIT_PYTHON_REFRESH": "quiet", "MLFLOW_ALLOW_FILE_STORE": "true"}
        for label, uri in (
            ("sqlite", f"sqlite:///{tmp / 'q.db'}"),
            ("file", f"file://{tmp / 'qruns'}"),
        ):
            python_timed(MLFLOW_FILL.format(uri=uri, n=runs), cwd=tmp, env=env)
            got = python_timed(MLFLOW_SEARCH.format(uri=uri, query=MLFLOW_QUERY), cwd=tmp, env=env)
            rows.append(
                (f"mlflow.search_runs ({label}), call only", got["call"], warm / got["call"])
            )
            rows.append(
                (f"mlflow.search_runs ({label}), with import", got["total"], warm / got["total"])
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=10_000, help="gitml's long run")
    parser.add_argument("--other-steps", type=int, default=2_000, help="runs of the same length")
    parser.add_argument("--query-runs", type=int, default=1_000)
    parser.add_argument(
        "--big",
        type=int,
        default=0,
        help="runs in a second, large query (0: skip; bench_scale measures 100,000 on 20 branches)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="whole processes per figure")
    args = arguments(parser, {"steps": 1_000, "other_steps": 100, "query_runs": 50, "big": 0,
                              "repeat": 1})  # fmt: skip
    global REPEAT  # noqa: PLW0603 - one setting for every figure
    REPEAT = args.repeat
    steps, other_steps = args.steps, args.other_steps
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-"))
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    results: dict[str, list] = {}
    try:
        results["startup"] = bench_startup()
        results["fixed"] = bench_fixed(tmp)
        results["logging"] = bench_logging(tmp, steps, other_steps)
        results["query"] = bench_query(tmp, args.query_runs, with_mlflow=True)
        if args.big:
            results["query-big"] = bench_query(tmp, args.big, with_mlflow=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, steps)
    save("core", {"core": core_table(results, steps), "fixed": fixed_table(results["fixed"])},
         quick=args.quick, sizes={"steps": steps, "other_steps": other_steps,
                                  "query_runs": args.query_runs, "repeat": args.repeat},
         summary=core_summary(results))  # fmt: skip


def core_summary(results: dict[str, list]) -> list[dict]:
    """The summary lines: start-up, a run's fixed cost, logging, a query."""
    start = {name: t for name, t, _ in results["startup"]}
    fixed = dict(results["fixed"])
    (g_fixed,) = (t for name, t in fixed.items() if name.startswith("gitml:"))
    (m_fixed,) = (t for name, t in fixed.items() if name.startswith("mlflow"))
    (floor,) = (t for name, t in fixed.items() if "raw buffers" in name)
    log = {name.split(" x")[0]: (t, n) for name, t, n, _ in results["logging"]}
    mine = min((t, n) for name, t, n, _ in results["logging"] if name.startswith("gitml"))
    query = {name: t for name, t, _ in results["query"]}
    warm = next(t for name, t in query.items() if "warm" in name)
    runs = next(name for name in query if "warm" in name).split(", ")[1]
    sqlite = next(t for name, t in query.items() if "sqlite" in name and "import" in name)
    return [
        summary_line("CLI start-up (`--help` / `--version`)", start["gitml --help"], "`dvc --version`",
              start["dvc --version"], "`python -c pass`", start["python -c pass"]),
        summary_line("a run of 10 steps, whole process", g_fixed, "MLflow file store", m_fixed,
              "pyarrow + tomli_w writing the same files", floor),
        summary_line(f"a run of {mine[1]:,} steps, start to end()", mine[0], "MLflow file store",
              log["mlflow file store"][0]),
        summary_line(f"`runs --where` over {runs}, warm", warm, "`mlflow.search_runs` (sqlite)", sqlite),
    ]  # fmt: skip


def core_table(results: dict[str, list], steps: int) -> dict:
    """The docs' table: start-up, per-call logging and a query, as gitml / the others."""
    start = {name: (t, ratio) for name, t, ratio in results["startup"]}
    helped, dvc, mlflow = (
        start["gitml --help"][0],
        start["dvc --version"],
        start["mlflow --version"],
    )
    mine = [(t, n) for name, t, n, _ in results["logging"] if name.startswith("gitml")]
    (g_t, g_n), (s_t, s_n) = max(mine, key=lambda r: r[1]), min(mine, key=lambda r: r[1])
    log = {name.split(" x")[0]: (t, n, ratio) for name, t, n, ratio in results["logging"]}
    others = [(label, *log[key]) for label, key in (
        ("MLflow file store", "mlflow file store"), ("MLflow sqlite", "mlflow sqlite"),
        ("DVCLive `log_metric`+`next_step`", "dvclive"))]  # fmt: skip
    query = {name: (t, ratio) for name, t, ratio in results["query"]}
    cold = next(t for name, (t, _) in query.items() if "cold" in name)
    warm = next(t for name, (t, _) in query.items() if "warm" in name)
    ml = {k: v for k, v in query.items() if k.startswith("mlflow")}
    runs = next(name for name in query if "cold" in name).split(", ")[1]
    return table(["what", "gitml", "other", "ratio gitml/other", "target"], [
        ["CLI start-up", f"`gitml --help` {helped:.3f} s",
         f"`dvc --version` {dvc[0]:.3f} s; `mlflow --version` {mlflow[0]:.2f} s",
         f"{dvc[1]:.2f}; {mlflow[1]:.3f}", "< 0.15 s"],
        [f"per-call `log_metric`, start of the run to its `end()` included ({g_n:,} steps; "
         f"against the others, runs of {s_n:,} steps each)",
         f"{g_t:.3f} s for {g_n:,} ({g_t / g_n * 1e6:.1f} us/call); {s_t:.3f} s for {s_n:,}",
         "; ".join(f"{label} {t:.3f} s ({t / n * 1e6:,.0f} us/call)" for label, t, n, _ in others),
         "; ".join(f"{ratio:.2g}" for *_, ratio in others) + " per run", "< 0.2 s"],
        [f"query {runs} (`gitml runs --where ...` as a CLI command, imports included)",
         f"cold index {cold:.2f} s, warm {warm:.2f} s",
         "; ".join(f"`{k.split(',')[0]}` {k.split(', ')[1]} {t:.2f} s" for k, (t, _) in ml.items()),
         "; ".join(f"{r:.2f}" for _, r in ml.values()), "< 0.5 s"],
    ])  # fmt: skip


def report(results: dict[str, list], steps: int) -> None:
    print("\n## Start-up (median wall seconds, whole process)")
    for name, t, ratio in results["startup"]:
        print(f"  {name:<28} {t:8.3f} s" + (f"   gitml/this = {ratio:.3f}" if ratio else ""))
    print("\n## A run's fixed cost (median wall seconds, whole processes, alternated)")
    for name, t in results["fixed"]:
        print(f"  {name:<52} {t:8.3f} s")
    print("\n## Per-call log_metric (start of the run to its end, setup and teardown included)")
    for name, t, n, ratio in results["logging"]:
        per = t / n * 1e6
        extra = f"   -> {per * steps / 1e6:7.2f} s per {steps} steps" + (
            f"   gitml/this, same length = {ratio:.5f}" if ratio else ""
        )
        print(f"  {name:<28} {t:8.3f} s  {per:9.1f} us/call{extra}")
    for key in ("query", "query-big"):
        if key in results:
            print(f"\n## {key} (median wall seconds)")
            for name, t, ratio in results[key]:
                print(
                    f"  {name:<48} {t:8.3f} s"
                    + (f"   gitml warm/this = {ratio:.3f}" if ratio else "")
                )


if __name__ == "__main__":
    main()
