"""Real git repositories, real DVC, real processes; an isolated HOME for every test."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gitml.project import init_project
from gitml.repo import Repo, default_remote_dir
from tests.helpers import GIT_ENV, PREPARE_IRIS, TRAIN_IRIS, commit_all, git, run_ok


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
    # `gitml runs` fits a table to COLUMNS: tests that read whole tables set it themselves.
    monkeypatch.delenv("COLUMNS", raising=False)


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
    # The embedded default remote is a machine path, so it lives in the uncommitted
    # .dvc/config.local; each test gets its own project id too, so that clones made by the
    # test find this remote, as clones on one machine do.
    config = root / ".dvc" / "config.local"
    remote = tmp_path / "remote"
    remote.mkdir()
    config.write_text(config.read_text().replace(str(_template.parent / "remote"), str(remote)))
    settings = root / ".gitml" / "config.toml"
    text = settings.read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("id = ")]
    pid = f"test-{secrets.token_hex(6)}"
    settings.write_text(text.replace(line, f'id = "{pid}"'))
    machine_default = default_remote_dir(root, pid)
    machine_default.parent.mkdir(parents=True, exist_ok=True)
    machine_default.symlink_to(remote)
    git(root, "commit", "-q", "--amend", "--no-edit", "-a")
    monkeypatch.chdir(root)
    yield Repo(root)


@contextmanager
def _building(home: Path) -> Iterator[None]:
    """The test identity and a HOME of its own while a session template is built."""
    saved = dict(os.environ)
    os.environ.update({**GIT_ENV, "HOME": str(home)})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def _trained_template(
    _template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str]]:
    """Built once per session: two committed training runs (C=0.01, C=1.0) on prepared iris."""
    root = tmp_path_factory.mktemp("trained") / "project"
    shutil.copytree(_template, root, symlinks=True)
    with _building(home=root.parent):
        (root / "prepare.py").write_text(PREPARE_IRIS)
        (root / "train.py").write_text(TRAIN_IRIS)
        subprocess.run([sys.executable, "prepare.py"], cwd=root, check=True)
        commit_all(root, "prepare iris")
        runs = []
        for c in ("0.01", "1.0"):
            run_ok(root, "run", "-p", f"C={c}", "--", "python", "train.py")
            commit_all(root, f"train C={c}")
            runs.append(tomllib.loads((root / "metrics.toml").read_text())["run"])
    return root, runs


@pytest.fixture
def trained(
    _trained_template: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Repo, list[str]]:
    """A fresh copy of the trained project; the current directory is its root."""
    template, runs = _trained_template
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.chdir(root)
    return Repo(root), runs


@pytest.fixture(scope="session")
def _served_template(
    _trained_template: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The trained iris project with v1 (C=0.01) and v2 (C=1.0) registered, v2 in production."""
    template, runs = _trained_template
    root = tmp_path_factory.mktemp("served") / "project"
    shutil.copytree(template, root, symlinks=True)
    with _building(home=root.parent):
        for run in runs:
            run_ok(root, "model", "register", run, "iris")
        run_ok(root, "model", "promote", "iris", "2", "-m", "stronger C")
    return root


@pytest.fixture
def served(_served_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the served project; the current directory is its root."""
    root = tmp_path / "project"
    shutil.copytree(_served_template, root, symlinks=True)
    monkeypatch.chdir(root)
    return root


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the cores, since many tests wait on the processes they start.

    (A git hook, a server coming up, a Dask cluster, a sweep's trials: on 2 cores, 3 workers
    keep both busy. `PYTEST_XDIST_AUTO_NUM_WORKERS` still overrides it.)
    """
    override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if override:
        return int(override)
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Spread the `slow` tests evenly over the run, each kept in its place among the rest.

    xdist's worksteal scheduler gives each worker a contiguous share of the list, and a worker
    that runs dry steals from the end of the longest queue. The slow tests bunched together
    (the benchmarks are one module) all went to the last worker, which then ran them one
    after another while the others had long finished. Slow tests of one module that share a
    module-scoped fixture move together, so the fixture is still set up once.
    """
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("slow"):
            units.setdefault(_unit(item), []).append(item)
    moved = {id(item) for unit in units.values() for item in unit}
    if not units or len(moved) == len(items):
        return
    # Round-robin over the workers, then evenly over the list: worker k's share of the list
    # holds slow units k, k + workers, ... (so the benchmarks do not all fall into one share).
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    listed = list(units.values())
    slow = [unit for k in range(workers) for unit in listed[k::workers]]
    # The rest stays in module blocks: a slow test put inside another module's run would make
    # that module's module-scoped fixture (an MLflow store, a DVC history) be set up twice.
    blocks: list[list[pytest.Item]] = []
    for item in items:
        if id(item) in moved:
            continue
        if blocks and _module(blocks[-1][-1]) == _module(item):
            blocks[-1].append(item)
        else:
            blocks.append([item])
    rest = iter(blocks)
    step = len(items) / len(slow)
    ordered: list[pytest.Item] = []
    for k, unit in enumerate(slow):
        while len(ordered) < int(k * step) and (block := next(rest, None)) is not None:
            ordered.extend(block)
        ordered.extend(unit)
    for block in rest:
        ordered.extend(block)
    assert sorted(map(id, ordered)) == sorted(map(id, items))
    items[:] = ordered


def _unit(item: pytest.Item) -> str:
    """What a slow test moves with: itself, or its module when it uses a module-wide fixture."""
    info = getattr(item, "_fixtureinfo", None)
    scopes = {defs[-1].scope for defs in (info.name2fixturedefs.values() if info else ())}
    return _module(item) if scopes & {"module", "class", "package"} else item.nodeid


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]
