"""Helpers for tests: the real git CLI and the real gitml command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "gitml test",
    "GIT_AUTHOR_EMAIL": "test@gitml.invalid",
    "GIT_COMMITTER_NAME": "gitml test",
    "GIT_COMMITTER_EMAIL": "test@gitml.invalid",
    "DVC_NO_ANALYTICS": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run the real git CLI; return its stdout."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def gitml(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `gitml` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "gitml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def commit_all(cwd: Path, message: str) -> str:
    """Stage everything and commit; return the commit id."""
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)
    return git(cwd, "rev-parse", "HEAD").strip()


def dvc(cwd: Path, *args: str) -> str:
    """Run the real dvc CLI; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def run_ok(cwd: Path, *args: str) -> str:
    """Run `gitml` and insist it succeeds; return its stdout."""
    done = gitml(cwd, *args)
    assert done.returncode == 0, f"gitml {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


PREPARE_IRIS = (
    "import gitml\n"
    "from sklearn.datasets import load_iris\n"
    "with gitml.start_run(name='prepare') as run:\n"
    "    frame = load_iris(as_frame=True).frame\n"
    "    frame['species'] = frame.pop('target')\n"
    "    frame.to_csv('iris.csv', index=False)\n"
    "    run.log_artifact('iris.csv')\n"
)
TRAIN_IRIS = (
    "import pandas as pd, gitml\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "p = gitml.params({'C': 1.0})\n"
    "with gitml.start_run(params=p) as run:\n"
    "    run.log_input('iris.csv')\n"
    "    data = pd.read_csv('iris.csv')\n"
    "    X, y = data.drop(columns='species'), data['species']\n"
    "    model = LogisticRegression(C=p['C'], max_iter=300).fit(X, y)\n"
    "    run.log_metrics({'accuracy': model.score(X, y)})\n"
    "    run.log_model(model, 'model.pkl')\n"
)


def push_to_new_origin(root: Path, base: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Add a fresh bare repository under ``base`` as origin and push main to it (hooks run)."""
    origin = base / "origin.git"
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(root, "remote", "add", "origin", str(origin))
    pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=root,
                            capture_output=True, text=True, check=False)  # fmt: skip
    return origin, pushed


def chromium() -> str:
    """The headless browser's path: a failure on CI (.ci/run installs it), a skip elsewhere."""
    import shutil

    import pytest

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: .ci/run should have installed it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path
