"""Serving and batch prediction, gitml side by side with MLflow on the same RandomForest, one run.

    pip install -e ".[bench]"
    python benchmarks/bench_serve.py                      # 1M-row batch: about 3 minutes
    python benchmarks/bench_serve.py --rows 10000000      # 10M rows: about 15 minutes

One RandomForestClassifier (100 trees) is trained on the wine data under `gitml run`,
registered and promoted in gitml, and the same fitted object is saved with
`mlflow.sklearn.save_model` (with its inferred signature, so both servers check input).

- Online: `gitml serve m@production` against `mlflow models serve --env-manager local`, each
  alone on the machine, both with their default logging (gitml also writes every request to its
  Parquet log). Latency: single-row requests one after another on a keep-alive connection,
  p50/p99 in ms. Throughput: ``--clients`` keep-alive connections for ``--seconds``.
  gitml is measured on its own /predict body and on MLflow's /invocations body.
- Batch: `gitml predict` against `mlflow models predict` on the same CSV of ``--rows`` rows;
  wall seconds and peak RSS (the largest resident set of the process tree, from getrusage),
  and gitml again on a tenth of the rows, to show its memory does not grow with the input.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV  # noqa: E402

TRAIN = """\
import gitml, pandas as pd
from sklearn.ensemble import RandomForestClassifier
with gitml.start_run(params={"n_estimators": 100}) as run:
    run.log_input("wine.csv")
    data = pd.read_csv("wine.csv")
    X, y = data.drop(columns="target"), data["target"]
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    run.log_metrics({"accuracy": model.score(X, y)})
    run.log_model(model, "model.pkl")
"""
RSS_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "seconds = time.perf_counter() - start\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(code, seconds, peak)\n"
)


def sh(root: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=root, check=True, env={**os.environ, **ENV},
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout


def project(base: Path) -> tuple[Path, Path, list[str]]:
    """A gitml project with the forest registered as m@production, and the MLflow model."""
    import joblib
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_wine

    root = base / "project"
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, sys.executable, "-m", "gitml", "init", "--remote", str(base / "remote"))
    wine = load_wine(as_frame=True).frame
    wine.to_csv(root / "wine.csv", index=False)
    (root / "train.py").write_text(TRAIN)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "wine")
    sh(root, sys.executable, "-m", "gitml", "run", "--", sys.executable, "train.py")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "train the forest")
    run = sh(root, sys.executable, "-m", "gitml", "runs", "--format", "json")
    run_id = next(r["id"] for r in json.loads(run) if r.get("params", {}).get("n_estimators"))
    sh(root, sys.executable, "-m", "gitml", "model", "register", run_id, "m")
    sh(root, sys.executable, "-m", "gitml", "model", "promote", "m", "1")
    model = joblib.load(root / "model.pkl")
    features = wine.drop(columns="target")
    mlflow_dir = base / "mlflow-model"
    mlflow.sklearn.save_model(
        model, mlflow_dir, signature=infer_signature(features, model.predict(features)),
        serialization_format="cloudpickle",  # as gitml's joblib: a pickle; skops would refuse Tree
    )  # fmt: skip
    return root, mlflow_dir, list(features.columns)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, argv: list[str], cwd: Path, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **ENV},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status, _ = request(self.connect(), "GET", "/health", None)
                if status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"server did not start: {' '.join(argv)}")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def latency(server: Server, path: str, body: bytes, n: int) -> tuple[float, float]:
    conn = server.connect()
    for _ in range(50):
        status, text = request(conn, "POST", path, body)
        assert status == 200, text
    times = []
    for _ in range(n):
        start = time.perf_counter()
        request(conn, "POST", path, body)
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.99 * (len(times) - 1))] * 1000


def throughput(server: Server, path: str, body: bytes, clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = server.connect()
        while time.monotonic() < stop:
            status, _ = request(conn, "POST", path, body)
            counts[i] += status == 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def online(root: Path, mlflow_dir: Path, features: list[str], args: argparse.Namespace) -> list:
    import pandas as pd

    row = pd.read_csv(root / "wine.csv").drop(columns="target").iloc[0].tolist()
    record = dict(zip(features, row, strict=True))
    gitml_body = json.dumps({"records": [record]}).encode()
    mlflow_body = json.dumps({"dataframe_split": {"columns": features, "data": [row]}}).encode()
    rows = []
    port = free_port()
    server = Server([sys.executable, "-m", "gitml", "serve", "m@production", "--port", str(port)],
                    root, port)  # fmt: skip
    try:
        for path, body in (("/predict", gitml_body), ("/invocations", mlflow_body)):
            p50, p99 = latency(server, path, body, args.requests)
            rps = throughput(server, path, body, args.clients, args.seconds)
            rows.append((f"gitml serve {path}", p50, p99, rps))
    finally:
        server.stop()
    port = free_port()
    server = Server(["mlflow", "models", "serve", "-m", str(mlflow_dir), "-p", str(port),
                     "-h", "127.0.0.1", "--env-manager", "local"], root, port)  # fmt: skip
    try:
        p50, p99 = latency(server, "/invocations", mlflow_body, args.requests)
        rps = throughput(server, "/invocations", mlflow_body, args.clients, args.seconds)
        rows.append(("mlflow models serve /invocations", p50, p99, rps))
    finally:
        server.stop()
    return rows


def write_csv(path: Path, source: Path, rows: int) -> None:
    """``rows`` rows drawn from the wine features with noise, written a million at a time."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    features = pd.read_csv(source).drop(columns="target")
    rng = np.random.default_rng(0)
    scale = features.std().to_numpy() * 0.1
    with pacsv.CSVWriter(str(path), pa.schema([(c, pa.float64()) for c in features])) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            picked = features.to_numpy()[rng.integers(0, len(features), n)]
            noisy = picked + rng.normal(0, 1, picked.shape) * scale
            writer.write_table(pa.table(dict(zip(features.columns, noisy.T, strict=True))))


def measured(
    argv: list[str], cwd: Path, *, ok: tuple[str, ...] = ("0",), env: dict | None = None
) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a whole command in a fresh wrapper process.

    The peak is the largest process of the command's tree. An exit code not in ``ok`` stops
    the benchmark; ``env`` is added to this process's environment and `synth.ENV`.
    """
    out = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *argv], cwd=cwd, check=True,
                         capture_output=True, text=True,
                         env={**os.environ, **ENV, **(env or {})})  # fmt: skip
    code, seconds, peak_kib = out.stdout.split()
    if code not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return float(seconds), int(peak_kib) / 1024


def batch(root: Path, mlflow_dir: Path, base: Path, args: argparse.Namespace) -> list:
    results = []
    for rows in (args.rows // 10, args.rows):
        source = base / f"batch-{rows}.csv"
        write_csv(source, root / "wine.csv", rows)
        seconds, peak = measured([sys.executable, "-m", "gitml", "predict", "m@production",
                                  str(source), "-o", str(base / "out.parquet"), "--no-progress"],
                                 root)  # fmt: skip
        results.append((f"gitml predict, {rows:,} rows", seconds, peak))
        if rows == args.rows:
            seconds, peak = measured(["mlflow", "models", "predict", "-m", str(mlflow_dir), "-i",
                                      str(source), "-t", "csv", "-o", str(base / "out.json"),
                                      "--env-manager", "local"], root)  # fmt: skip
            results.append((f"mlflow models predict, {rows:,} rows", seconds, peak))
        source.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="Sequential requests.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent connections.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Throughput window.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="Batch input rows.")
    parser.add_argument("--skip-batch", action="store_true")
    args = arguments(parser, {"requests": 50, "clients": 2, "seconds": 0.5, "rows": 5_000})
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-serve-"))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    os.environ["MLFLOW_TRACKING_URI"] = (base / "mlruns").as_uri()
    try:
        root, mlflow_dir, features = project(base)
        served = online(root, mlflow_dir, features, args)
        batched = [] if args.skip_batch else batch(root, mlflow_dir, base, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(served, batched, args)
    mlflow = served[-1]
    summary = [summary_line(f"one-row request p50, `{name}`", p50 / 1000,
                            "`mlflow models serve /invocations`", mlflow[1] / 1000)
               for name, p50, _, _ in served[:-1] if name.endswith("/invocations")]  # fmt: skip
    if batched:  # gitml on as many rows as MLflow: the last but one
        summary.append(
            summary_line(
                batched[-2][0].replace("gitml predict", "batch prediction"),
                batched[-2][1],
                "`mlflow models predict`",
                batched[-1][1],
            )
        )
    save("serve", serve_tables(served, batched), quick=args.quick,
         sizes={"requests": args.requests, "clients": args.clients, "rows": args.rows},
         summary=summary)  # fmt: skip


def serve_tables(served: list, batched: list) -> dict:
    """The docs' tables: one-row requests and throughput; batch time and memory."""
    mlflow = served[-1]
    tables = {"serve": table(["server", "p50", "p99", "throughput", "ratio gitml / MLflow"], [
        [name, f"{p50:.2f} ms", f"{p99:.2f} ms", f"{rps:.0f} req/s",
         "" if name.startswith("mlflow") else
         f"p50 {p50 / mlflow[1]:.2f}, p99 {p99 / mlflow[2]:.2f}, req/s {rps / mlflow[3]:.2f}"]
        for name, p50, p99, rps in served
    ])}  # fmt: skip
    if batched:
        ml = batched[-1]
        tables["serve-batch"] = table(["batch command", "time", "peak RSS", "ratio gitml / MLflow"], [
            [name, f"{seconds:.1f} s", f"{peak:,.0f} MiB",
             "" if name.startswith("mlflow") else
             f"time {seconds / ml[1]:.2f}, memory {peak / ml[2]:.2f}"]
            for name, seconds, peak in batched
        ])  # fmt: skip
    return tables


def report(served: list, batched: list, args: argparse.Namespace) -> None:
    mlflow = served[-1]
    print(f"\n## Online, one-row requests ({args.requests} sequential; {args.clients} clients "
          f"for {args.seconds:g} s); ratio = gitml / MLflow")  # fmt: skip
    print(f"  {'':<34} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, p50, p99, rps in served:
        ratio = "" if name.startswith("mlflow") else (
            f"   p50 x{p50 / mlflow[1]:.2f}  p99 x{p99 / mlflow[2]:.2f}  req/s x{rps / mlflow[3]:.2f}")  # fmt: skip
        print(f"  {name:<34} {p50:8.2f} {p99:8.2f} {rps:8.0f}{ratio}")
    if batched:
        print("\n## Batch prediction (wall seconds, peak RSS of the process tree)")
        ml = batched[-1]
        for name, seconds, peak in batched:
            ratio = "" if name.startswith("mlflow") else (
                f"   time x{seconds / ml[1]:.2f}  RSS x{peak / ml[2]:.2f}")  # fmt: skip
            print(f"  {name:<40} {seconds:8.1f} s {peak:8.0f} MiB{ratio}")


if __name__ == "__main__":
    main()
