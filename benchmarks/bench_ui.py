"""`gitml ui` side by side with `mlflow server` (the MLflow UI), in the same headless Chromium.

    pip install -e ".[bench]"
    python benchmarks/bench_ui.py                  # 1,000, 10,000 and 100,000 runs
    python benchmarks/bench_ui.py --quick          # 1,000 runs

The same runs are in both: synth.make_history's records committed in git for gitml, and an
MLflow sqlite store of as many runs (bench_scale.mlflow_store). A 1,000,000-step metric is
added to one run of each. Measured, each as a fresh page in a fresh browser context (no cache):

- start-up: from starting the server process until it answers (gitml: its page; MLflow:
  /health). gitml's run index is warm, as after any `gitml runs`: a cold index is
  `bench_scale.py`'s figure;
- the runs table: from navigation, right after start-up, until the first row is drawn (so
  gitml's first figure includes reading every run into the server), and the count it says;
  "then" is the median of the next navigations;
- a comparison of 10 runs: until every one of the 10 is on the page;
- a 1,000,000-step metric: until its chart is drawn;
- memory: the resident set of the server's whole process tree afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_scale import mlflow_store  # noqa: E402
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV, make_history  # noqa: E402

STEPS = 1_000_000
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def wait_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer in {timeout:.0f} s")


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB."""
    pids, total = [pid], 0
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, AttributeError):
            continue
        pids += [int(k) for k in kids]
    return total / 1024


TIMEOUT_S = 90


SHOTS: Path | None = None  # --shots DIR: a screenshot of each measured page, to check by eye


def timed_page(
    browser, url: str, ready: str, repeat: int, shot: str = ""
) -> tuple[float, float, str]:
    """Seconds from navigation until ``ready`` (a JS condition) holds: the first time, and the
    median of the ``repeat`` times after it; and the page's text.

    A page that is not ready in TIMEOUT_S counts as infinitely slow (reported as such).
    """
    from playwright.sync_api import TimeoutError as PageTimeout

    times, text = [], ""
    for _ in range(repeat + 1):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        start = time.perf_counter()
        try:
            page.goto(url, timeout=TIMEOUT_S * 1000)
            page.wait_for_function(ready, timeout=TIMEOUT_S * 1000, polling=10)
            times.append(time.perf_counter() - start)
        except PageTimeout:
            times.append(float("inf"))
        text = page.inner_text("body")
        if SHOTS and shot and len(times) == 1:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{shot}.png"))
        context.close()
        if times[-1] == float("inf"):
            break  # once is enough to know
    return times[0], statistics.median(times[1:] or times), text


def gitml_side(base: Path, runs: int, browser, repeat: int) -> dict:
    root = make_history(base / f"gitml-{runs}", runs=runs, commits=max(10, runs // 1000),
                        remote=base / f"remote-{runs}")  # fmt: skip
    ids = sorted(p.name for p in (root / ".gitml" / "runs").iterdir())
    big = ids[-1]
    steps = np.arange(STEPS, dtype=np.int64)
    pq.write_table(pa.table({
        "step": steps, "timestamp": pa.array(np.full(STEPS, 1_700_000_000_000), pa.timestamp("ms", tz="UTC")),
        "name": pa.array(["loss"] * STEPS), "value": np.sin(steps / 5000.0),
    }).replace_schema_metadata({"gitml.schema_version": "1", "gitml.run_id": big}),
        root / ".gitml" / "runs" / big / "metrics.parquet")  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "gitml", "runs", "--where", "metrics.loss < -1"],
        cwd=root,
        check=True,
        capture_output=True,
    )  # a warm index, as after any query
    n = f"gitml-{runs}"
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "gitml", "ui", "--port", "0"], cwd=root,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", server.stderr.readline()).group(1)
        wait_up(f"{url}/")
        up = time.perf_counter() - start
        table_s, table_then, text = timed_page(
            browser, f"{url}/#/runs", "document.querySelector('.table .row')", repeat, f"{n}-runs"
        )
        count = re.search(r"([\d,]+) of [\d,]+ runs", text).group(1)
        scroll = scroll_to_last(browser, url, ids[0])
        compare_s, compare_then, _ = timed_page(
            browser, f"{url}/#/compare?ids={','.join(ids[:10])}",
            "document.querySelectorAll('#diff th a').length === 10", repeat, f"{n}-compare")  # fmt: skip
        chart_s, chart_then, _ = timed_page(
            browser, f"{url}/#/run/{big}", "document.querySelector('.chart canvas')", repeat,
            f"{n}-chart")  # fmt: skip
        rss = tree_rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return {"up": up, "table": table_s, "table_then": table_then, "count": count,
            "scroll": scroll, "compare": compare_s, "compare_then": compare_then,
            "chart": chart_s, "chart_then": chart_then, "rss": rss}  # fmt: skip


def scroll_to_last(browser, url: str, oldest: str) -> float:
    """Seconds from scrolling the drawn table to its end until the oldest run's row is drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/#/runs")
    page.wait_for_selector(".table .row")
    start = time.perf_counter()
    page.evaluate("document.querySelector('.table').scrollTop = 1e9")
    page.wait_for_selector(f".table .row[data-run='{oldest}']", timeout=TIMEOUT_S * 1000)
    took = time.perf_counter() - start
    context.close()
    return took


def mlflow_side(base: Path, runs: int, browser, repeat: int) -> dict:
    uri = mlflow_store(base, runs)
    db = sqlite3.connect(uri.removeprefix("sqlite:///"))
    ids = [r[0] for r in db.execute("SELECT run_uuid FROM runs ORDER BY start_time LIMIT 10")]
    big = ids[-1]
    steps = np.arange(STEPS)
    with db:
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                       "VALUES ('loss', ?, 1700000000000, ?, ?, 0)",
                       ((float(np.sin(s / 5000.0)), big, int(s)) for s in steps))  # fmt: skip
    db.close()
    port = 5000 + os.getpid() % 1000
    start = time.perf_counter()
    server = subprocess.Popen([shutil.which("mlflow") or "mlflow", "server", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(port)], cwd=base,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "GIT_PYTHON_REFRESH": "quiet"}, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{url}/health")
        up = time.perf_counter() - start
        n = f"mlflow-{runs}"
        table_s, table_then, text = timed_page(
            browser, f"{url}/#/experiments/0/runs", "document.querySelector('.ag-row')", repeat,
            f"{n}-runs")  # fmt: skip
        found = re.search(r"([\d,]+) matching runs", text)
        count = found.group(1) if found else "?"
        runs_json = "[" + ",".join(f'"{i}"' for i in ids) + "]"
        compare_s, compare_then, _ = timed_page(
            browser, f"{url}/#/compare-runs?runs={runs_json}&experiments=[\"0\"]",
            "document.querySelectorAll('a[href*=\"/runs/\"]').length >= 10", repeat,
            f"{n}-compare",
        )  # fmt: skip
        # MLflow's own metric page, as its run page links it (getMetricPageRoute): every
        # parameter it parses must be there, or the page says '"undefined" is not valid JSON'
        metric, keys = urllib.parse.quote('"loss"'), urllib.parse.quote('["loss"]')
        query = (f'runs=["{big}"]&metric={metric}&experiments=["0"]'
                 f"&plot_metric_keys={keys}&plot_layout={{}}"
                 "&x_axis=step&y_axis_scale=linear&line_smoothness=1&show_point=false"
                 "&deselected_curves=[]&last_linear_y_axis_range=[]")  # fmt: skip
        chart_s, chart_then, _ = timed_page(
            browser, f"{url}/#/metric?{query}",
            "document.querySelector('.js-plotly-plot .scatterlayer .trace path.js-line')",
            repeat, f"{n}-chart",
        )  # fmt: skip
        rss = tree_rss_mib(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return {"up": up, "table": table_s, "table_then": table_then, "count": count,
            "compare": compare_s, "compare_then": compare_then, "chart": chart_s,
            "chart_then": chart_then, "rss": rss}  # fmt: skip


FIGURES = (("server up", "up", "s"), ("runs table, first row", "table", "s"),
           ("scroll to the oldest run", "scroll", "s"), ("compare 10 runs", "compare", "s"), ("1,000,000-step chart", "chart", "s"),
           ("server memory", "rss", "MiB"))  # fmt: skip


def cell(value: float, unit: str, then: float | None = None) -> str:
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if value == float("inf"):
        return f"not drawn in {TIMEOUT_S} s"
    return f"{value:.2f} s" + (f", then {then:.2f} s" if then is not None else "")


def ui_rows(runs: int, g: dict, m: dict | None) -> list[list[str]]:
    """The table's rows for one size: gitml, MLflow, and the ratio where both drew."""
    rows = []
    for what, key, unit in FIGURES:
        gv, mv = g[key], (m.get(key) if m else None)
        then = f"{key}_then"
        mine = cell(gv, unit, g.get(then)) + (
            f" ({g['count']} runs counted)" if key == "table" else ""
        )
        theirs = ""
        if m is not None and mv is None:
            theirs = "(shows 100 runs; 'Load more' adds 100)"
        elif m is not None:
            theirs = cell(mv, unit, m.get(then)) + (
                f" (says {m['count']} matching runs)" if key == "table" else ""
            )
        ratio = f"{gv / mv:.2g}" if mv and mv != float("inf") else ""
        rows.append([f"{runs:,} runs: {what}", mine, theirs, ratio])
    return rows


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, action="append", help="sizes (repeatable)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--shots", type=Path, help="save a screenshot of each page measured")
    # Quick (CI): gitml's side only. MLflow's server takes ~50 s to start and render these
    # pages even for 200 runs; the full run compares the two.
    args = arguments(parser, {"runs": [200], "repeat": 1, "skip_mlflow": True})
    global SHOTS  # noqa: PLW0603 - one switch for every measured page
    SHOTS = args.shots
    sizes = args.runs or [1_000, 10_000]
    os.environ.update(ENV)
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-ui-"))
    rows, summary = [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
            for runs in sizes:
                g = gitml_side(base, runs, browser, args.repeat)
                m = None if args.skip_mlflow else mlflow_side(base, runs, browser, args.repeat)
                print(
                    f"{runs:,} runs: gitml {g}\n{' ' * len(f'{runs:,} runs: ')}mlflow {m}",
                    flush=True,
                )
                rows += ui_rows(runs, g, m)
                if m is not None:
                    summary.append(
                        summary_line(
                            f"the runs table of {runs:,} runs, first load",
                            g["table"],
                            "MLflow's UI",
                            m["table"],
                        )
                    )
            browser.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    save("ui", {"ui": table(["what", "gitml ui", "mlflow server (UI)", "ratio"], rows)},
         quick=args.quick, sizes={"runs": sizes, "repeat": args.repeat},
         summary=summary)  # fmt: skip


if __name__ == "__main__":
    main()
