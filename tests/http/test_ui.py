"""`gitml ui` in a real headless Chromium, against a real server on 127.0.0.1 and real runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gitml.query.series import downsample
from tests.conftest import _building
from tests.helpers import chromium, git, gitml, run_ok

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts" / "ui"
TRAIN = """\
import math, sys, gitml
lr, seed = float(sys.argv[1]), int(sys.argv[2])
tags = {"sweep": f"s{seed}"}  # as `gitml sweep` tags its trials
with gitml.start_run("train", params={"lr": lr, "seed": seed, "model": "mlp"}, tags=tags) as run:
    for step in range(200):
        run.log_metric("loss", math.exp(-lr * step / 30) + 0.01 * ((step * 7919 + seed) % 13),
                       step=step)
    run.log_metric("accuracy", 0.7 + lr / 10 + seed / 1000)
"""
BIG_STEPS = 1_000_000
SPIKE = 777_777


def _big_run(root: Path) -> str:
    """A run with a 1,000,000-step loss: logged through the API, its Parquet file widened."""
    code = ("import gitml\nrun = gitml.start_run('big', params={'lr': 0.1, 'seed': 3})\n"
            "run.log_metric('loss', 0.0, step=0)\nrun.end()\nprint(run.id)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, check=True)  # fmt: skip
    run_id = done.stdout.strip().splitlines()[-1]
    steps = np.arange(BIG_STEPS, dtype=np.int64)
    values = np.sin(steps / 5000.0)
    values[SPIKE] = 5.0  # one step far above the rest: a sampled chart would miss it
    table = pa.table({
        "step": steps,
        "timestamp": pa.array(np.full(BIG_STEPS, 1_700_000_000_000), pa.timestamp("ms", tz="UTC")),
        "name": pa.array(["loss"] * BIG_STEPS, pa.string()),
        "value": values,
    }).replace_schema_metadata({"gitml.schema_version": "1", "gitml.run_id": run_id})  # fmt: skip
    pq.write_table(table, root / ".gitml" / "runs" / run_id / "metrics.parquet")
    return run_id


@pytest.fixture(scope="session")
def _ui_template(_template, tmp_path_factory):
    """Built once per session: three committed runs on main (lr 0.5, 1, 2) and one not committed."""
    root = tmp_path_factory.mktemp("ui") / "project"
    shutil.copytree(_template, root, symlinks=True)
    with _building(home=root.parent):
        (root / "train.py").write_text(TRAIN)
        git(root, "add", "-A")
        git(root, "commit", "-qm", "train script")
        for lr in ("0.5", "1.0", "2.0"):
            subprocess.run([sys.executable, "train.py", lr, "1"], cwd=root, check=True)
            git(root, "add", "-A")
            git(root, "commit", "-qm", f"lr={lr}")
        subprocess.run([sys.executable, "train.py", "3.0", "2"], cwd=root, check=True)
    return root


@pytest.fixture
def ui_project(_ui_template, tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(_ui_template, root, symlinks=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def ui_server(ui_project):
    proc = subprocess.Popen([sys.executable, "-m", "gitml", "ui", "--port", "0"], cwd=ui_project,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = proc.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
    assert match, line
    yield ui_project, match.group(1)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])  # fmt: skip
        yield launched
        launched.close()


def _page(browser, problems):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    # A 400 is a mistake the page shows (a misspelt field); anything else is a problem.
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "status of 400" not in m.text else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    return page


def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_filter_sort_group_open_compare_history_and_live(ui_server, browser):
    root, url = ui_server
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto(f"{url}/#/runs")
    page.wait_for_selector(".table .row")
    assert page.locator(".count").inner_text() == "4 of 4 runs"
    assert page.locator(".table .row").count() == 4
    heads = page.locator(".table .head .cell").all_inner_texts()
    assert "params.lr" in heads and "params.model" not in heads  # only the params that differ
    _shot(page, "runs")

    # filter with the --where language; the URL holds the view
    page.fill(".bar input[type=text]", "params.lr > 0.7")
    page.press(".bar input[type=text]", "Enter")
    page.wait_for_function("(document.querySelector('.count')?.textContent || '')"
                           ".startsWith('3 of')")  # fmt: skip
    assert "where=params.lr" in page.url
    # a misspelt field is an error that names it, not an empty table
    page.goto(f"{url}/#/runs?where=metrics.acurracy+>+1")
    page.wait_for_selector(".error:not(:empty)")
    assert "metrics.accuracy" in page.locator(".error").inner_text()

    # sort by a column: highest lr first, then lowest
    page.goto(f"{url}/#/runs")
    page.wait_for_selector(".table .row")
    page.locator(".table .head .cell", has_text="params.lr").click()
    page.wait_for_function("location.hash.includes('sort=-params.lr')")
    page.wait_for_selector(".table .row")
    lr_col = page.locator(".table .head .cell").all_inner_texts().index("params.lr ▼")
    first = page.locator(".table .row").first.locator(".cell").nth(lr_col).inner_text()
    assert first == "3"

    # group by a param: one button per value, with its count
    page.select_option(".bar select", "params.seed")
    page.wait_for_selector(".groups button")
    assert sorted(page.locator(".groups button").all_inner_texts()) == ["1 · 3", "2 · 1"]
    # or by a tag, such as the sweep a run was a trial of; a group's button filters to it
    page.select_option(".bar select", "tags.sweep")
    page.wait_for_function("[...document.querySelectorAll('.groups button')].map((b) => "
                           "b.textContent).sort().join('|') === 's1 · 3|s2 · 1'")  # fmt: skip
    page.locator(".groups button", has_text="s1").click()
    page.wait_for_function("(document.querySelector('.count')?.textContent || '')"
                           ".startsWith('3 of')")  # fmt: skip
    assert "where=tags.sweep" in page.url

    # open a run: its metrics, params and a drawn step chart
    page.goto(f"{url}/#/runs?sort=params.lr")
    page.wait_for_selector(".table .row")
    page.locator(".table .row").first.locator("a").click()
    page.wait_for_selector(".chart canvas")
    assert "Metrics" in page.inner_text("main") and "accuracy" in page.inner_text("main")
    _shot(page, "run")

    # pick three runs and compare them
    page.goto(f"{url}/#/runs?sort=params.lr")
    page.wait_for_selector(".table .row")
    for i in range(3):
        page.locator(".table .row").nth(i).locator("input[type=checkbox]").check()
    page.locator("button", has_text="Compare (3)").click()
    page.wait_for_selector(".chart canvas")
    page.wait_for_function("document.querySelectorAll('#diff th a').length === 3")
    assert page.locator("#diff td.differs").count() >= 3  # lr differs in each run
    assert page.locator("#parallel polyline").count() == 3
    _shot(page, "compare")

    # a metric along main's first-parent commits: one point per commit that trained
    page.goto(f"{url}/#/history?ref=main&metric=metrics.accuracy")
    page.wait_for_selector("#history-chart canvas")
    assert page.get_attribute("#history-chart", "data-points") == "3"
    commits = git(root, "rev-list", "--first-parent", "--count", "main").strip()
    assert page.get_attribute("#history-chart", "data-commits") == commits
    _shot(page, "history")

    # a run logged while the page is open appears without a reload
    page.goto(f"{url}/#/runs")
    page.wait_for_selector(".table .row")
    page.wait_for_selector("#live.on")
    subprocess.run([sys.executable, "train.py", "4.0", "3"], cwd=root, check=True)
    page.wait_for_function("document.querySelector('.count')?.textContent === '5 of 5 runs'",
                           timeout=20_000)  # fmt: skip
    assert problems == []


def test_a_million_step_metric_draws_with_its_true_extremes(ui_server, browser):
    root, url = ui_server
    run_id = _big_run(root)
    problems: list[str] = []
    page = _page(browser, problems)
    started = time.perf_counter()
    page.goto(f"{url}/#/run/{run_id}")
    page.wait_for_selector(".chart canvas")
    drawn_in = time.perf_counter() - started
    chart = page.locator(".chart").first
    assert chart.get_attribute("data-points") == str(BIG_STEPS)
    assert 0 < int(chart.get_attribute("data-drawn")) <= 420  # one bucket per pixel at most
    _shot(page, "million-steps")
    data = page.evaluate(f"fetch('/api/series?run={run_id}&name=loss&buckets=420')"
                         ".then(r => r.json())")  # fmt: skip
    assert data["downsampled"] and max(data["max"]) == 5.0  # the spike survives
    assert min(data["min"]) == pytest.approx(-1.0, abs=1e-6)
    assert drawn_in < 10, f"{drawn_in:.1f} s to draw a million steps"
    assert problems == []


def test_downsampling_keeps_every_buckets_true_min_and_max():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(25):
        n = int(rng.integers(1, 50_000))
        xs = np.sort(rng.choice(10 * n, size=n, replace=False)).astype(float)
        ys = rng.normal(size=n)
        ys[rng.random(n) < 0.01] = np.nan
        buckets = int(rng.integers(1, 900))
        got = downsample("m", xs, ys, buckets=buckets)
        if n <= buckets:
            assert got.y_min is None and len(got.x) == n
            continue
        edges = np.linspace(xs[0], xs[-1], buckets + 1)
        starts = np.unique(np.searchsorted(xs, edges[:-1], side="left"))
        assert len(got.x) == len(starts) <= buckets
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else n
            window = ys[start:end][np.isfinite(ys[start:end])]
            expected = (float(window.min()), float(window.max())) if len(window) else (None, None)
            assert (got.y_min[i], got.y_max[i]) == expected
            checked += 1
    assert checked > 1000, checked


def test_the_ui_refuses_another_host_without_a_token_and_wants_it_with_one(ui_project):
    bare = {k: v for k, v in os.environ.items() if k != "GITML_UI_TOKEN"}
    argv = [sys.executable, "-m", "gitml", "ui", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(argv, cwd=ui_project, capture_output=True, text=True, timeout=60,
                          env=bare, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("set GITML_UI_TOKEN")

    import urllib.error
    import urllib.request

    env = {**os.environ, "GITML_UI_TOKEN": "s3cret"}
    proc = subprocess.Popen([sys.executable, "-m", "gitml", "ui", "--port", "0"], cwd=ui_project,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", proc.stderr.readline()).group(1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/runs", timeout=10)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"{url}/api/runs?token=s3cret", timeout=10) as ok:
            assert ok.status == 200 and "gitml_ui_token=s3cret" in ok.headers["set-cookie"]
        for name in ("..%2Fui.py", "%2E%2E%2F%2E%2E%2Fapp.py", "app.py"):
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"{url}/static/{name}?token=s3cret", timeout=10)
            assert missing.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_page_under_another_name_cannot_read_the_runs(ui_server):
    """DNS rebinding: a site that points its own name at 127.0.0.1 gets nothing."""
    import urllib.error
    import urllib.request

    _root, url = ui_server
    port = url.rsplit(":", 1)[1]
    refused = 0
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        request = urllib.request.Request(f"{url}/api/runs", headers={"Host": host})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 403
        refused += 1
    assert refused == 3
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        request = urllib.request.Request(f"{url}/api/runs", headers={"Host": host})
        with urllib.request.urlopen(request, timeout=10) as answered:
            assert answered.status == 200


def test_models_their_alias_history_and_the_diff_of_two_refs(served, browser):
    import tomllib

    v2 = tomllib.loads((served / ".gitml" / "models" / "iris.toml").read_text())["versions"][1]
    evaluate = ("import gitml\nwith gitml.start_run('evaluate') as run:\n"
                "    run.log_metric('size', len(open('model.pkl', 'rb').read()))\n")  # fmt: skip
    (served / "evaluate.py").write_text(evaluate)
    run_ok(served, "run", "-i", "model.pkl", "--", sys.executable, "evaluate.py")
    reproduced = gitml(served, "reproduce", v2["run"])
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    proc = subprocess.Popen([sys.executable, "-m", "gitml", "ui", "--port", "0"], cwd=served,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", proc.stderr.readline()).group(1)
        problems: list[str] = []
        page = _page(browser, problems)
        page.goto(f"{url}/#/models")
        page.wait_for_selector("#models a")
        assert "production → v2" in page.inner_text("#models")
        page.locator("#models a", has_text="iris").click()
        page.wait_for_selector("#versions")
        assert page.locator("#versions tr").count() == 3  # a header and two versions
        events = page.inner_text("#events")
        assert "promote" in events and "production" in events
        _shot(page, "model")
        newer, older = git(served, "log", "--format=%h", "--grep", "train C=").split()
        page.goto(f"{url}/#/diff?a={older}&b={newer}")
        page.wait_for_selector("#diff-metric")
        assert "C" in page.inner_text("#diff-param")  # C=0.01 against C=1.0
        assert page.locator("#diff-metric td.better, #diff-metric td.worse").count() >= 1
        _shot(page, "diff")

        # v2's run: reproduced, and what came of it (a version with its alias, a run reading it)
        page.goto(f"{url}/#/run/{v2['run']}")
        page.wait_for_selector("#reproduced")
        assert page.inner_text("#reproduced").startswith("reproduced on ")
        used = page.inner_text(".used-by")
        assert "registered as iris v2 (@production)" in used and "read by run evaluate" in used
        _shot(page, "run-lineage")
        # and the evaluating run's lineage leads back to it, a link away
        page.locator(".used-by a", has_text="evaluate").click()
        page.wait_for_selector(".lineage")
        page.locator(f".lineage a[href='#/run/{v2['run']}']").wait_for()
        assert "model.pkl" in page.inner_text(".lineage")
        assert "never reproduced here" in page.inner_text("#reproduced")

        # gitml check, as CI runs it: clean, then a broken file is a finding naming it
        page.goto(f"{url}/#/check")
        page.wait_for_selector("#check-verdict")
        assert page.inner_text("#check-verdict").startswith("ok · working tree")
        verdict = served / ".gitml" / "reproductions" / f"{v2['run']}.toml"
        verdict.write_text(verdict.read_text().replace('"reproduced"', '"maybe"'))
        page.goto(f"{url}/#/models")  # (a reload would cut the live event stream)
        page.wait_for_selector("#models")
        page.goto(f"{url}/#/check")
        page.wait_for_selector("#findings")
        assert page.inner_text("#check-verdict").startswith("FAILED")
        assert f".gitml/reproductions/{v2['run']}.toml" in page.inner_text("#findings")
        _shot(page, "check")
        assert problems == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_seed_repeats_draw_as_mean_and_std(ui_server, browser):
    root, url = ui_server
    for seed in ("2", "3"):
        subprocess.run([sys.executable, "train.py", "2.0", seed], cwd=root, check=True)
    from gitml.query.api import find_runs
    from gitml.repo import Repo

    repeats = [r["id"] for r in find_runs(Repo(root), where="params.lr == 2.0", sort="params.seed")]
    assert len(repeats) == 3
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto(f"{url}/#/compare?ids={','.join(repeats)}&metric=loss&band=1")
    page.wait_for_selector("#band-chart canvas")
    assert page.get_attribute("#band-chart", "data-repeated") == "3"
    got = page.evaluate(f"fetch('/api/band?ids={','.join(repeats)}&name=loss&buckets=1000')"
                        ".then(r => r.json())")  # fmt: skip
    # TRAIN's loss at step s for seed k: exp(-2 s / 30) + 0.01 * ((s * 7919 + k) % 13)
    for step in (0, 17, 199):
        values = [np.exp(-2.0 * step / 30) + 0.01 * ((step * 7919 + k) % 13) for k in (1, 2, 3)]
        i = got["x"].index(step)
        assert got["mean"][i] == pytest.approx(np.mean(values))
        assert got["high"][i] - got["mean"][i] == pytest.approx(np.std(values))
    _shot(page, "band")
    assert problems == []


def test_a_static_export_shows_the_same_runs_without_a_gitml_server(ui_project, browser, tmp_path):
    import functools
    import http.server
    import threading

    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "gitml", "ui", "--export", str(site)],
                          cwd=ui_project, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {site}: 4 runs, 8 step metrics")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        problems: list[str] = []
        page = _page(browser, problems)
        page.goto(f"{url}/index.html#/runs")
        page.wait_for_selector(".table .row")
        assert page.locator(".count").inner_text() == "4 of 4 runs"
        assert page.inner_text("#live") == "static export"
        page.locator(".table .row").first.locator("a").click()
        page.wait_for_selector(".chart canvas")
        page.goto(f"{url}/index.html#/history?ref=HEAD&metric=metrics.accuracy")
        page.wait_for_selector("#history-chart canvas")
        assert page.get_attribute("#history-chart", "data-points") == "3"
        _shot(page, "export")
        assert problems == []
    finally:
        server.shutdown()

    again = subprocess.run([sys.executable, "-m", "gitml", "ui", "--export", str(tmp_path)],
                           cwd=ui_project, capture_output=True, text=True, check=False)  # fmt: skip
    assert again.returncode == 2 and "was not written by gitml ui" in again.stderr


def test_export_writes_a_nan_metric_as_null(project, tmp_path):
    """NaN is null in the export, as in the server's answers (JSON has no NaN)."""
    import json

    code = ("import gitml\nwith gitml.start_run('diverged') as run:\n"
            "    run.log_metric('loss', 1.0, step=0)\n"
            "    run.log_metric('loss', float('nan'), step=1)\n")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], cwd=project.root, check=True)
    site = tmp_path / "site"
    argv = [sys.executable, "-m", "gitml", "ui", "--export", str(site)]
    done = subprocess.run(argv, cwd=project.root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (page,) = (site / "api" / "run").glob("*.json")
    assert json.loads(page.read_text())["record"]["metrics"] == {"loss": None}
    (series,) = (site / "api" / "series").glob("*/loss.json")
    assert json.loads(series.read_text())["y"] == [1.0, None]
