"""Concurrency: several processes logging and promoting in one repository at once."""

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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


CRASHER = """\
import itertools, gitml
with gitml.start_run("crash-me", params={"lr": 0.1}) as run:
    for step in itertools.count():
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("acc", step / 1e6, step=step)
"""
# 50 kills (~30 s), 20 on CI; GITML_CRASH_KILLS=500 python -m pytest -m slow for a long soak.
KILLS = int(os.environ.get("GITML_CRASH_KILLS", "20" if os.environ.get("CI") else "50"))


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_every_run_readable(project):
    config = project.config_path
    config.write_text(config.read_text().replace("flush_every = 1000", "flush_every = 50", 1))
    assert "flush_every = 50" in config.read_text()
    (project.root / "crasher.py").write_text(CRASHER)
    rng = random.Random(7)
    killed = flushed = 0
    while killed < KILLS:
        batch = [subprocess.Popen([sys.executable, "crasher.py"], cwd=project.root,
                                  stderr=subprocess.DEVNULL) for _ in range(5)]  # fmt: skip
        started_at = time.monotonic()
        for process in sorted(batch, key=lambda _: rng.random()):
            if rng.random() < 0.5:
                # Tied to what the run has done, not to the clock: a busy machine makes the
                # wait longer, never the journal emptier. Then a little more, mid-batch.
                _wait_for_flushed_steps(project.runs_dir, process.pid)
                time.sleep(rng.uniform(0.0, 0.2))
                flushed += 1
            else:  # any moment: before the run exists, mid-write, mid-flush
                time.sleep(max(0.0, started_at + rng.uniform(0.0, 1.2) - time.monotonic()))
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed += 1
    assert flushed > 0, "no kill was made after steps were flushed"
    listed = gitml(project.root, "runs", "--format", "json")  # finds the dead, marks them crashed
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    started = sorted(p.name for p in project.runs_dir.iterdir())
    assert {r["id"] for r in rows} == set(started), "every run folder left is a readable run"
    with_steps = 0
    for run_dir in project.runs_dir.iterdir():
        record = store.read_toml(run_dir / "run.toml", kind="run")
        assert record["status"] == "crashed"
        parquet = run_dir / "metrics.parquet"
        if parquet.exists():
            steps = pq.read_table(parquet).to_pandas()
            loss = steps[steps["name"] == "loss"]["step"].tolist()
            assert loss == list(range(len(loss))), "no step lost before the last flush"
            with_steps += bool(loss)
        assert not list(run_dir.glob("*.journal")), "crashed journals are folded into Parquet"
    assert with_steps >= flushed, f"{flushed} killed after a flush, {with_steps} kept steps"
    assert not (project.root / ".git" / "index.lock").exists()
    print(
        f"\n{killed} processes killed ({flushed} after a flush), {len(started)} runs left, "
        f"{with_steps} with steps"
    )


def _wait_for_flushed_steps(runs_dir, pid, timeout=120.0):
    """Wait until the process ``pid`` has flushed at least one batch to its run's journal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for journal in runs_dir.glob(f"*/metrics.{pid}.journal"):
            with contextlib.suppress(OSError):
                if journal.stat().st_size > 0:
                    return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} flushed no steps in {timeout:.0f} s")


def _hook_pids(root):
    """Processes running gitml's pre-commit or post-commit hook in ``root`` right now.

    Only this repository's: another test's hooks may be running on the same machine.
    """
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")  # noqa: SIM115
                if Path(os.readlink(f"/proc/{entry}/cwd")) != root:
                    continue
            except OSError:
                continue
            if b"gitml.hooks" in cmdline and (
                b"pre-commit" in cmdline or b"post-commit" in cmdline
            ):
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_sigkill_of_the_commit_hooks_leaves_the_index_unlocked(project):
    import gitml as tracking

    rng = random.Random(11)
    kills = max(10, KILLS // 3)
    killed = 0
    for attempt in range(kills * 4):
        with tracking.start_run(f"run-{attempt}", params={"i": attempt}) as run:
            run.log_metrics({"accuracy": rng.random()})
        git(project.root, "add", "-A")
        commit = subprocess.Popen(["git", "commit", "-qm", f"run {attempt}"], cwd=project.root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + rng.uniform(0.0, 0.4)
        while commit.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        pids = _hook_pids(project.root.resolve()) if commit.poll() is None else []
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed += bool(pids)
        commit.wait(timeout=60)
        assert not (project.root / ".git" / "index.lock").exists(), f"locked after {attempt}"
        git(project.root, "status", "--porcelain")  # the index reads
        if killed >= kills:
            break
    assert killed >= kills, f"only {killed} hooks caught mid-run"
    for run_toml in project.runs_dir.glob("*/run.toml"):
        store.read_toml(run_toml, kind="run")
    git(project.root, "add", "-A")
    if git(project.root, "status", "--porcelain"):  # what an aborted commit left staged
        finished = subprocess.run(["git", "commit", "-qm", "after the kills"], cwd=project.root,
                                  capture_output=True, text=True, check=False)  # fmt: skip
        assert finished.returncode == 0, finished.stderr
    assert git(project.root, "status", "--porcelain") == ""
    listed = gitml(project.root, "runs", "--format", "json")
    assert len(json.loads(listed.stdout)) == len(list(project.runs_dir.iterdir()))
    print(f"\n{killed} hooks killed mid-commit")


# 8 kills on CI keep the suite in its 10 minutes (each is ~1 s); GITML_CRASH_KILLS asks for more.
PROMOTE_KILLS = int(os.environ.get("GITML_CRASH_KILLS", "8" if os.environ.get("CI") else "50"))


@pytest.mark.slow
def test_sigkill_of_promote_at_random_moments_leaves_the_registry_committed(served):
    """Kill `gitml model promote` anywhere: the registry is the old commit or the new one."""
    rel = ".gitml/models/iris.toml"
    rng = random.Random(11)

    def promote(version):
        return subprocess.Popen([sys.executable, "-m", "gitml", "model", "promote", "iris",
                                 version, "--to", "staging", "-m", "kill me"], cwd=served,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    started = time.monotonic()
    assert promote("1").wait(timeout=120) == 0  # one whole promotion: how long one takes
    whole = time.monotonic() - started
    before_head = after_head = window = 0
    for kill in range(PROMOTE_KILLS):
        head = git(served, "rev-parse", "HEAD").strip()
        current = tomllib.loads(git(served, "show", f"HEAD:{rel}"))["aliases"]["staging"]
        process = promote("2" if current == 1 else "1")
        time.sleep(rng.uniform(0.0, whole * 1.1))
        process.send_signal(signal.SIGKILL)
        process.wait()
        moved = git(served, "rev-parse", "HEAD").strip() != head
        after_head += moved
        before_head += not moved
        if git(served, "status", "--porcelain", "--", ".gitml/models"):
            # Only the few instructions between moving the branch and writing the file: the
            # note in .git says so, and the next registry command finishes the commit.
            assert (served / ".git" / "gitml-pending-commit.json").exists(), f"kill {kill}"
            window += 1
        shown = gitml(served, "model", "show", "iris", "--format", "json")
        assert shown.returncode == 0, f"kill {kill}: {shown.stderr}"
        committed = tomllib.loads(git(served, "show", f"HEAD:{rel}"))
        assert json.loads(shown.stdout)["aliases"] == committed["aliases"], f"kill {kill}"
        assert git(served, "status", "--porcelain", "--", ".gitml/models") == "", f"kill {kill}"
        assert not (served / ".git" / "index.lock").exists()
    assert before_head + after_head == PROMOTE_KILLS and before_head > 0 and after_head > 0
    log = git(served, "log", "--format=%s", f"-{after_head}").splitlines()
    for subject in log:  # every promotion that landed says what it did, from the right version
        assert re.fullmatch(r"model iris: promote v[12] to staging \(was v[12]\): kill me", subject)
    print(
        f"\n{PROMOTE_KILLS} promotions killed: {before_head} before the commit landed, "
        f"{after_head} after, {window} between the branch and the working file"
    )
