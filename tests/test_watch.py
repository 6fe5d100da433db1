"""`gitml watch`: drift, retraining, registration and promotion on real data, each a commit."""

import hashlib
import signal
import subprocess
import sys
import time
import tomllib

import numpy as np
import pandas as pd
import pytest

from tests.helpers import git, gitml

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _production(root):
    return tomllib.loads((root / ".gitml/models/iris.toml").read_text())["aliases"]["production"]


def _labelled(root, rows, seed, shift=0.0):
    """Iris-like labelled rows; ``shift`` moves the petal lengths (a sensor recalibrated)."""
    iris = pd.read_csv(root / "iris.csv")
    rng = np.random.default_rng(seed)
    frame = iris.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    noise = rng.normal(0, 0.05, (rows, len(FEATURES)))
    frame[FEATURES] = frame[FEATURES].to_numpy() + noise
    frame["petal length (cm)"] += shift
    return frame


@pytest.mark.slow
def test_drift_retrains_and_promotes_a_better_challenger(served, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _labelled(served, 600, seed=1, shift=2.5).to_csv(incoming / "batch-1.csv", index=False)
    before = git(served, "rev-parse", "HEAD").strip()

    done = gitml(served, "watch", str(incoming), "--model", "iris@production", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "batch-1.csv: drift in petal length (cm)" in done.stdout
    assert "promoted iris v3 to production: accuracy" in done.stdout
    assert _production(served) == 3
    log = git(served, "log", "--format=%s", f"{before}..HEAD").splitlines()[::-1]
    assert log[0] == "watch: drift check of batch-1.csv: drift in petal length (cm)"
    assert log[1] == "watch: retrain on batch-1.csv (drift in petal length (cm))"
    assert log[2].startswith("model iris: register v3 from run ")
    assert log[3].startswith("model iris: promote v3 to production (was v2): gitml watch: accuracy")
    assert log[4].startswith("watch: batch-1.csv: promoted v3")
    assert git(served, "status", "--porcelain") == ""
    assert len(pd.read_csv(served / "iris.csv")) == 150 + 420  # 70% of the file trained on
    watched = tomllib.loads((served / ".gitml/monitor/iris/watch.toml").read_text())
    entry = watched["processed"][0]
    assert (entry["file"], entry["challenger"], entry["promoted"]) == ("batch-1.csv", 3, True)

    again = gitml(served, "watch", str(incoming), "--model", "iris@production", "--once")
    assert (again.returncode, again.stdout.strip()) == (0, f"nothing new in {incoming}")


@pytest.mark.slow
def test_no_drift_no_retraining_and_a_failing_step_leaves_production(served, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _labelled(served, 600, seed=2).to_csv(incoming / "a-same.csv", index=False)
    done = gitml(served, "watch", str(incoming), "--model", "iris@production", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "a-same.csv: no drift" in done.stdout and _production(served) == 2

    data_md5 = hashlib.md5((served / "iris.csv").read_bytes()).hexdigest()
    broken = _labelled(served, 200, seed=3, shift=2.5).drop(columns="species")
    broken.to_csv(incoming / "b-unlabelled.csv", index=False)
    done = gitml(served, "watch", str(incoming), "--model", "iris@production", "--once")
    assert done.returncode == 2
    assert ("gitml watch: b-unlabelled.csv: b-unlabelled.csv: lacks training column(s) species; "
            "iris@production unchanged") in done.stdout  # fmt: skip
    assert _production(served) == 2
    assert hashlib.md5((served / "iris.csv").read_bytes()).hexdigest() == data_md5
    watched = tomllib.loads((served / ".gitml/monitor/iris/watch.toml").read_text())
    assert [e["file"] for e in watched["processed"]] == ["a-same.csv", "b-unlabelled.csv"]
    assert "lacks training column" in watched["processed"][1]["error"]

    # a training command that fails: the training data is put back, production stays
    (served / "train.py").write_text("raise SystemExit('the GPU is on fire')\n")
    git(served, "commit", "-qam", "a broken training script")
    _labelled(served, 200, seed=6, shift=2.5).to_csv(incoming / "c-shifted.csv", index=False)
    done = gitml(served, "watch", str(incoming), "--model", "iris@production", "--once")
    assert done.returncode == 2
    assert "retraining failed: `python train.py` exited 1; iris@production unchanged" in done.stdout
    assert _production(served) == 2
    assert hashlib.md5((served / "iris.csv").read_bytes()).hexdigest() == data_md5
    assert git(served, "status", "--porcelain") == ""


@pytest.mark.slow
def test_count_policy_trains_on_every_waiting_file(served, tmp_path):
    config = served / ".gitml/config.toml"
    config.write_text(config.read_text() + '\n[watch]\nmodel = "iris@production"\nevery = 2\n')
    git(served, "commit", "-qam", "watch every 2 files")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _labelled(served, 200, seed=4).to_csv(incoming / "a.csv", index=False)
    done = gitml(served, "watch", str(incoming), "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    _labelled(served, 200, seed=5).to_parquet(incoming / "b.parquet")
    done = gitml(served, "watch", str(incoming), "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    watched = tomllib.loads((served / ".gitml/monitor/iris/watch.toml").read_text())
    first, second = watched["processed"]
    assert first["steps"][-1] == "no retraining: no drift, and fewer than 2 files waiting"
    assert second["trained_with"] == ["a.csv"] and second["challenger"] == 3
    assert "retrained (policy: every 2 files)" in second["steps"][1]
    assert len(pd.read_csv(served / "iris.csv")) == 150 + 280  # 70% of the 400 rows


def test_watching_picks_up_a_file_that_lands_and_stops_on_sigterm(served, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "gitml", "watch", str(incoming), "--model", "iris@production"],
            cwd=served, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait(lambda: "watching" in log.read_text(), log)
        staged = tmp_path / "staged.csv"
        _labelled(served, 600, seed=8, shift=2.5).to_csv(staged, index=False)
        staged.rename(incoming / "landed.csv")  # lands whole, as a copy-then-rename does
        record = served / ".gitml/monitor/iris/watch.toml"
        _wait(lambda: record.is_file() and "landed.csv" in record.read_text(), log)
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=30) == 0
    finally:
        watcher.kill()
    text = log.read_text()
    assert "landed.csv: drift in petal length (cm)" in text and text.rstrip().endswith("stopped")
    assert _production(served) == 3


def _wait(condition, log, timeout=90):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def test_one_watch_step_reads_the_watched_alias_once(served, tmp_path, monkeypatch):
    """Drift reference, champion, its age and its score all come from one read of the alias."""
    from gitml.registry import versions
    from gitml.repo import Repo
    from gitml.watch import Policy, process

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _labelled(served, 600, seed=1, shift=2.5).to_csv(incoming / "batch-1.csv", index=False)
    reads = []
    real = versions.resolve

    def counted(repo, ref):
        resolved = real(repo, ref)
        reads.append(str(resolved.ref))
        return resolved

    monkeypatch.setattr(versions, "resolve", counted)
    monkeypatch.chdir(served)
    repo = Repo(served)
    policy = Policy.from_config(repo, "iris@production", max_age_days=365.0)
    outcome = process(repo, policy, incoming / "batch-1.csv", echo=lambda _line: None)
    assert outcome.error is None and outcome.promoted, outcome
    assert reads.count("iris@production") == 1, reads
    assert "iris@3" in reads  # the challenger, by number


def test_a_model_reference_is_parsed_in_one_place():
    from gitml.errors import UsageError
    from gitml.registry.ref import ModelRef

    assert ModelRef.parse("wine@production") == ModelRef("wine", "production")
    assert ModelRef.parse("wine").selector == "latest"
    assert ModelRef.parse("wine", default="staging").alias == "staging"
    assert (ModelRef.parse("wine@v3").number, ModelRef.parse("wine@3").alias) == (3, None)
    assert str(ModelRef("wine", "production").at(4)) == "wine@4"
    for bad in ("@production", "", "a@b@c"):
        with pytest.raises(UsageError):
            ModelRef.parse(bad)
