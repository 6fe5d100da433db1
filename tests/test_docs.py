"""The README is the front door and the manual a site that builds without a warning."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from gitml.cli.main import all_commands

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strictly_with_a_generated_cli_reference(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = re.sub(r"<[^>]+>", " ", (site / "reference" / "cli" / "index.html").read_text())
    commands = all_commands()
    assert len(commands) > 20
    for name, command in commands.items():
        if not command.hidden:
            assert f"gitml {name}" in page, f"`gitml {name}` is missing from the CLI reference"
    assert "--no-detect" in page and "--wide" in page  # options come from the commands
    home = html.unescape(re.sub(r"<[^>]+>", "", (site / "index.html").read_text()))
    assert "gitml run -o models/clf.pkl -- python train.py" in home  # the README's quickstart


def test_the_readme_is_a_front_door_whose_links_all_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 10 * 1024
    assert readme.index("## The two commands") < readme.index("## Quickstart")
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert len(links) >= 10
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_the_benchmark_tables_are_made_from_the_results_files(tmp_path):
    """docs/performance.md's tables equal benchmarks/results/*.json; an edited figure fails."""
    done = subprocess.run([sys.executable, "benchmarks/tables.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    page = (ROOT / "docs" / "performance.md").read_text()
    assert len(results) >= 8
    for path in results:
        for table_id in json.loads(path.read_text())["tables"]:
            assert f"<!-- bench:{table_id} -->" in page, table_id

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "benchmarks", copy / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (copy / "docs").mkdir()
    edited = page.replace("| CLI start-up |", "| CLI start-up (edited by hand) |")
    assert edited != page
    (copy / "docs" / "performance.md").write_text(edited)
    stale = subprocess.run([sys.executable, "benchmarks/tables.py", "--check"], cwd=copy,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert stale.returncode == 1 and "differs" in stale.stdout
