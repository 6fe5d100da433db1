"""Real git repositories, real DVC, real processes; an isolated HOME for every test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitml.repo import Repo, init_project
from tests.helpers import GIT_ENV, commit_all, git


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(home / "dvc-site-cache"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    for key in list(os.environ):
        if key.startswith("GITML_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gitml project built once per session: git + DVC + gitml, one commit."""
    base = tmp_path_factory.mktemp("template")
    root = base / "project"
    root.mkdir()
    env_backup = dict(os.environ)
    os.environ.update(GIT_ENV)
    os.environ["DVC_SITE_CACHE_DIR"] = str(base / "dvc-site-cache")
    try:
        git(root, "init", "-q", "-b", "main")
        init_project(root, remote_dir=base / "remote")
        (root / "train.py").write_text("print('training')\n")
        commit_all(root, "init project")
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    return root


@pytest.fixture
def project(_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    """A fresh copy of the template project; the current directory is its root."""
    root = tmp_path / "project"
    shutil.copytree(_template, root, symlinks=True)
    # Each test gets its own DVC remote: objects pushed by one test must not satisfy another.
    config = root / ".dvc" / "config"
    remote = tmp_path / "remote"
    remote.mkdir()
    config.write_text(config.read_text().replace(str(_template.parent / "remote"), str(remote)))
    git(root, "commit", "-q", "--amend", "--no-edit", "-a")
    monkeypatch.chdir(root)
    yield Repo(root)
