"""A real local Dask cluster: a scheduler and two worker processes on 127.0.0.1.

The workers share no folder with the driver except the two remotes: a bare git repository and
the DVC remote. They get the code by cloning the git remote and the data by hash from the DVC
remote, and send runs and predictions back through Dask.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitml.repo import Repo
from tests.helpers import commit_all, git, gitml, run_ok
from tests.sweep.test_sweep import PRUNED

pytest.importorskip("distributed")

TRAIN = (
    "import gitml, pandas as pd\n"
    "from sklearn.tree import DecisionTreeClassifier\n"
    "p = gitml.params({'depth': 2, 'criterion': 'gini'})\n"
    "with gitml.start_run() as run:\n"
    "    run.log_input('iris.csv')\n"
    "    data = pd.read_csv('iris.csv')\n"
    "    X, y = data.drop(columns='species'), data['species']\n"
    "    model = DecisionTreeClassifier(max_depth=p['depth'], criterion=p['criterion'],\n"
    "                                   random_state=0).fit(X, y)\n"
    "    run.log_metrics({'accuracy': model.score(X, y)})\n"
    "    run.log_model(model, 'model.pkl')\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` and `dask worker --nworkers 2`, each worker in a folder of its own."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    logs = tmp_path / "cluster-logs"
    logs.mkdir()
    scheduler = subprocess.Popen(
        [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"], stdout=open(logs / "scheduler", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,
    )  # fmt: skip
    workers = subprocess.Popen(
        [str(bin_dir / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
         "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp_path / "workers")],
        stdout=open(logs / "workers", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,
    )  # fmt: skip
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        with Client(address, timeout=30) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, (logs / "workers").read_text()
                time.sleep(0.2)
            pids = client.run(os.getpid)
        assert len(set(pids.values())) == 2  # two worker processes
        yield address
    finally:
        for proc in (workers, scheduler):  # nothing of theirs is needed: no graceful close
            os.killpg(proc.pid, signal.SIGKILL)  # the group: the worker processes too
            proc.wait(timeout=20)


@pytest.mark.slow
def test_a_sweep_a_pruned_sweep_and_a_partitioned_prediction_on_a_dask_cluster(
    trained: tuple[Repo, list[str]], cluster: str, tmp_path: Path
) -> None:
    repo, _ = trained
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo.root, "remote", "add", "origin", str(origin))
    (repo.root / "train.py").write_text(TRAIN)
    commit_all(repo.root, "a tree to sweep")
    git(repo.root, "push", "-q", "origin", "main")

    done = gitml(repo.root, "sweep", "-p", "depth=range(1,3)", "-p", "criterion=gini,entropy",
                 "--dask", cluster, "-m", "accuracy", "--", "python", "train.py")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (sweep_id,) = [p.name for p in (repo.gitml_dir / "sweeps").iterdir()]
    runs = {}
    for path in repo.runs_dir.glob("*/run.toml"):
        rec = tomllib.loads(path.read_text())
        if rec["tags"].get("sweep") == sweep_id:
            runs[rec["id"]] = rec
    assert len(runs) == 4 and {r["tags"]["sweep_state"] for r in runs.values()} == {"complete"}
    points = {(r["params"]["depth"], r["params"]["criterion"]) for r in runs.values()}
    assert points == {(d, c) for d in (1, 2) for c in ("gini", "entropy")}
    for rec in runs.values():
        folder = repo.run_dir(rec["id"])
        assert {p.name for p in folder.iterdir()} >= {"run.toml", "metrics.parquet"}
        assert rec["status"] == "finished" and 0 < rec["metrics"]["accuracy"] <= 1
        assert rec["inputs"]["iris.csv"]["md5"]  # the worker read the data the driver has
        md5 = rec["outputs"]["model.pkl"]["md5"]
        cached = repo.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        assert cached.is_file()  # fetched from the DVC remote into the driver's cache
        assert "slot-" not in str(folder)
    assert git(repo.root, "status", "--porcelain", "--", ".gitml") == ""  # committed
    assert "refs/gitml" not in git(repo.root, "ls-remote", str(origin))  # its ref removed

    # --prune: each worker sends its trial's steps to the driver's pruner and gets its verdict
    (repo.root / "train.py").write_text(PRUNED.replace("range(8)", "range(12)"))
    commit_all(repo.root, "a script that logs its steps")
    done = gitml(repo.root, "sweep", "-p", "q=choice(1.0, 0.9, 0.1, 0.05)", "--prune", "-m",
                 "score", "--maximize", "--dask", cluster, "--", "python", "train.py")  # fmt: skip
    assert done.returncode == 0, done.stderr
    pruned_id = next(p.name for p in (repo.gitml_dir / "sweeps").iterdir() if p.name != sweep_id)
    states = {}
    for path in repo.runs_dir.glob("*/run.toml"):
        rec = tomllib.loads(path.read_text())
        if rec["tags"].get("sweep") == pruned_id:
            states[rec["params"]["q"]] = (rec["tags"]["sweep_state"], rec["status"])
    assert states == {
        1.0: ("complete", "finished"),
        0.9: ("complete", "finished"),
        0.1: ("pruned", "interrupted"),
        0.05: ("pruned", "interrupted"),
    }, done.stderr
    assert done.stderr.count(" pruned after ") == 2

    best = max(runs.values(), key=lambda r: (r["metrics"]["accuracy"], r["id"]))
    run_ok(repo.root, "model", "register", best["id"], "iris-tree")
    run_ok(repo.root, "model", "promote", "iris-tree", "1", "-m", "best of the sweep")
    git(repo.root, "push", "-q", "origin", "main")

    import pandas as pd

    data = pd.read_csv(repo.root / "iris.csv")
    parts = tmp_path / "parts"
    for i, start in enumerate(range(0, len(data), 40)):
        folder = parts / f"batch={i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        data.iloc[start : start + 40].drop(columns="species").to_parquet(folder / f"p{i}.parquet")
    out = tmp_path / "predictions"
    done = gitml(repo.root, "predict", "iris-tree@production", str(parts), "-o", str(out),
                 "--dask", cluster)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(data)} predictions of 4 partition(s)" in done.stdout
    here = tmp_path / "here"
    run_ok(repo.root, "predict", "iris-tree@production", str(parts), "-o", str(here))
    for i in range(4):
        rel = Path(f"batch={i % 2}") / f"p{i}.parquet"
        remote, local = pd.read_parquet(out / rel), pd.read_parquet(here / rel)
        assert len(remote) == len(data.iloc[i * 40 : (i + 1) * 40])
        assert remote["prediction"].tolist() == local["prediction"].tolist()
