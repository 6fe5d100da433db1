"""`gitml report`: the HTML page in real headless Chromium, served over real HTTP."""

import functools
import http.server
import threading

import pytest

from tests.helpers import chromium, commit_all, git, gitml

TRAIN = (
    "import sys, gitml\n"
    "p = gitml.params({'lr': 0.1, 'epochs': 15, 'seed': 0})\n"
    "with gitml.start_run(params=p) as run:\n"
    "    loss = 1.0\n"
    "    for step in range(p['epochs']):\n"
    "        loss *= 1 - p['lr']\n"
    "        run.log_metric('loss', loss, step=step)\n"
    "    run.log_metrics({'accuracy': 1 - loss})\n"
)


@pytest.fixture
def report_project(project):
    root = project.root
    (root / "train.py").write_text(TRAIN)
    commit_all(root, "script")
    for message, params in (("baseline", ["lr=0.1"]), ("faster", ["lr=0.2", "epochs=20"])):
        for seed in ("0", "1"):
            flags = [f for p in (*params, f"seed={seed}") for f in ("-p", p)]
            done = gitml(root, "run", *flags, "--", "python", "train.py")
            assert done.returncode == 0, done.stderr
        commit_all(root, message)
    return project


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on 127.0.0.1 over ``tmp_path/site``."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_report_opens_in_headless_chromium_without_errors_and_shows_plots(
    report_project, served, tmp_path
):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    site, base_url = served
    done = gitml(report_project.root, "report", "-o", str(site / "report.html"))
    assert done.returncode == 0, done.stderr
    assert "(4 runs, 2 commits), 3 PNG plots" in done.stdout
    page_html = (site / "report.html").read_text()
    for external in ("<script", 'src="', 'href="http', "url(http", "url(//"):
        assert external not in page_html, f"not self-contained: {external}"

    browser_path = chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=browser_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        failed = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        response = page.goto(f"{base_url}/report.html")
        assert response is not None and response.status == 200
        plots = page.locator("figure.plot svg")
        assert plots.count() == 3  # accuracy across commits, loss across commits, loss per step
        for i in range(plots.count()):
            box = plots.nth(i).bounding_box()
            assert box is not None and box["width"] > 400 and box["height"] > 150
        assert page.locator("table tbody tr").count() >= 4
        assert "loss per step" in page.locator("#steps-loss").inner_text()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert problems == [] and failed == []

    # Plots are the only coloured things on the page (text, borders and grids are grey).
    shot = Image.open(tmp_path / "report.png").convert("RGB")
    colours = shot.getcolors(maxcolors=shot.size[0] * shot.size[1]) or []
    coloured = sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
    assert coloured > 1500, f"the screenshot shows almost no plotted lines ({coloured} pixels)"


def test_report_writes_pngs_and_markdown_and_filters_by_rev(report_project, tmp_path):
    from PIL import Image

    root = report_project.root
    git(root, "branch", "old", "HEAD~1")
    out = tmp_path / "r" / "old.html"
    done = gitml(root, "report", "--rev", "old", "-o", str(out), "--png-dir", str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    assert "(2 runs, 1 commits)" in done.stdout
    markdown = (tmp_path / "p" / "report.md").read_text()
    assert "![accuracy](final-accuracy.png)" in markdown
    assert "![loss](steps-loss.png)" in markdown
    for name in ("final-accuracy.png", "final-loss.png", "steps-loss.png"):
        with Image.open(tmp_path / "p" / name) as image:
            assert image.format == "PNG" and image.size[0] > 600
    assert "| lr |" not in markdown, "lr is the same in both runs of 'old': not a column"
    assert "<td>0.1</td>" in out.read_text(), "shared params are listed with their value"

    bad = gitml(root, "report", "--rev", "nope")
    assert bad.returncode == 2 and "--rev nope: no such branch, tag or commit" in bad.stderr
    none = gitml(root, "report", "--where", "metrics.accuracy > 5")
    assert none.returncode == 2 and "no runs to report on" in none.stderr


def test_report_by_default_goes_where_git_add_never_commits_it(report_project):
    root = report_project.root
    done = gitml(root, "report")
    assert done.returncode == 0, done.stderr
    page = root / ".gitml" / "cache" / "report" / "index.html"
    assert page.is_file() and str(page.relative_to(root)) in done.stdout
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
