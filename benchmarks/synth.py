"""Synthetic run histories for benchmarks: N valid run.toml records over C commits.

Records are written the way gitml writes them (store.write_toml, schema-valid) and committed with
the real git CLI, so the history looks like a real team's.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
from pathlib import Path

from gitml import store
from gitml.repo import init_project

ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@gitml.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@gitml.invalid",
    "DVC_NO_ANALYTICS": "1",
}  # fmt: skip


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, env={**os.environ, **ENV},
                   stdout=subprocess.DEVNULL)  # fmt: skip


def record(i: int, rng: random.Random) -> dict:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=37 * i)
    return {
        "schema_version": 1,
        "id": start.strftime("%Y%m%dT%H%M%SZ") + f"-{i % 0xFFFFFF:06x}",
        "name": f"run-{i}",
        "status": "finished",
        "start_time": start,
        "end_time": start + dt.timedelta(seconds=rng.randint(5, 500)),
        "command": ["python", "train.py"],
        "cwd": ".",
        "params": {"depth": rng.randint(1, 10), "lr": rng.choice([0.3, 0.1, 0.03, 0.01]),
                   "model": rng.choice(["rf", "gbm", "svm"]), "seed": i, "n_estimators": 100},
        "metrics": {"accuracy": rng.random(), "f1": rng.random(), "loss": rng.random() * 2},
        "tags": {"owner": rng.choice(["ana", "bo", "cy"])},
        "code": {"commit": f"{i:040x}", "branch": "main", "dirty": False},
        "inputs": {"data/train.csv": {"md5": f"{i:032x}", "size": 1000 + i}},
        "outputs": {"model.pkl": {"md5": f"{i + 7:032x}", "size": 2000 + i}},
        "env": {"python": "3.11.7", "platform": "Linux", "packages": {"scikit-learn": "1.9.1",
                "numpy": "2.4.6", "pandas": "3.1.1"}},
    }  # fmt: skip


def make_history(root: Path, *, runs: int, commits: int, remote: Path, seed: int = 0) -> Path:
    """A gitml project at ``root`` holding ``runs`` committed runs in ``commits`` commits."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    init_project(root, remote_dir=remote)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    rng = random.Random(seed)
    per_commit = max(1, runs // commits)
    runs_dir = root / ".gitml" / "runs"
    for i in range(runs):
        rec = record(i, rng)
        folder = runs_dir / rec["id"]
        folder.mkdir(parents=True)
        (folder / "run.toml").write_bytes(store.dumps_toml(rec))
        if (i + 1) % per_commit == 0 or i == runs - 1:
            git(root, "add", "-A")
            git(root, "commit", "-q", "-m", f"runs up to {i}")
    return root
