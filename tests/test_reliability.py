"""Concurrency: several processes logging and promoting in one repository at once."""

import json
import subprocess
import sys
import tomllib

import pyarrow.parquet as pq

from gitml import store
from tests.helpers import git, gitml

LOGGER = """\
import sys, gitml
with gitml.start_run(f"worker-{sys.argv[1]}", params={"worker": int(sys.argv[1])}) as run:
    for step in range(10_000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.log_metric("accuracy", 0.5 + int(sys.argv[1]) / 100)
"""


def test_eight_processes_log_ten_thousand_steps_each_at_once(project):
    (project.root / "logger.py").write_text(LOGGER)
    workers = [subprocess.Popen([sys.executable, "logger.py", str(i)], cwd=project.root,
                                stderr=subprocess.PIPE, text=True) for i in range(8)]  # fmt: skip
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read()
    runs = sorted(project.runs_dir.iterdir())
    assert len(runs) == 8
    for run_dir in runs:
        record = store.read_toml(run_dir / "run.toml", kind="run")  # valid against its schema
        assert record["status"] == "finished"
        steps = pq.read_table(run_dir / "metrics.parquet").to_pandas()
        loss = steps[steps["name"] == "loss"]
        assert loss["step"].tolist() == list(range(10_000))
        assert record["metrics"]["loss"] == 1.0 / 10_000
        assert not list(run_dir.glob("*.journal")), "journals are folded into Parquet at the end"
    summary = tomllib.loads((project.root / "metrics.toml").read_text())
    assert summary["run"] in {r.name for r in runs}
    listed = gitml(project.root, "runs", "--format", "json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 8


def test_two_promotions_at_once_both_land(served):
    promotions = [
        subprocess.Popen([sys.executable, "-m", "gitml", "model", "promote", "iris", version,
                          "--to", alias, "-m", f"race {alias}"], cwd=served,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for version, alias in (("1", "staging"), ("2", "canary"), ("1", "shadow"))
    ]  # fmt: skip
    for promotion in promotions:
        assert promotion.wait(timeout=120) == 0, promotion.stderr.read()
    doc = store.read_toml(served / ".gitml/models/iris.toml", kind="model")
    assert doc["aliases"] == {"production": 2, "staging": 1, "canary": 2, "shadow": 1}
    log = git(served, "log", "--format=%s", "-3").splitlines()
    assert sorted(m.rsplit(": race ", 1)[1] for m in log) == ["canary", "shadow", "staging"]
    assert not (served / ".git" / "index.lock").exists()
    assert git(served, "status", "--porcelain") == ""
    assert gitml(served, "model", "history", "iris").returncode == 0
