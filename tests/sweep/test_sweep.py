"""`gitml sweep` end to end: real trials of a real scikit-learn script, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from gitml.repo import Repo
from tests.helpers import commit_all, git, gitml, run_ok

TRAIN = (
    "import time, gitml, pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "p = gitml.params({'C': 1.0, 'max_iter': 100})\n"
    "with gitml.start_run() as run:\n"
    "    run.log_input('iris.csv')\n"
    "    data = pd.read_csv('iris.csv')\n"
    "    X, y = data.drop(columns='species'), data['species']\n"
    "    time.sleep(float(__import__('os').environ.get('TRIAL_SLEEP', '0')))\n"
    "    model = LogisticRegression(C=p['C'], max_iter=p['max_iter']).fit(X, y)\n"
    "    run.log_metrics({'accuracy': model.score(X, y)})\n"
    "    run.log_model(model, 'model.pkl')\n"
)
GRID = ["-p", "C=choice(0.001, 0.01, 1)", "-p", "max_iter=range(20, 100, 20)"]


def _start(root: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    out = root.parent / f"sweep-{time.monotonic_ns()}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitml", "sweep", *args],
        cwd=root, stdout=open(out, "w"), stderr=subprocess.STDOUT, text=True,  # noqa: SIM115
        env={**os.environ, **env}, start_new_session=True,
    )  # fmt: skip
    return proc, out


def _wait_for(check: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _trial_pids(repo: Repo) -> list[int]:
    """The training processes of this test's sweep: run from its slots (tests run in parallel)."""
    found = subprocess.run(["pgrep", "-fx", f"{sys.executable} train.py|python train.py"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    slots = str(repo.cache_dir / "sweeps")
    pids = []
    for pid in map(int, found.stdout.split()):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(slots):
                pids.append(pid)
        except OSError:
            continue  # ended meanwhile
    return pids


def _sweep_runs(repo: Repo, sweep_id: str) -> dict[str, dict]:
    runs = {}
    for path in repo.runs_dir.glob("*/run.toml"):
        rec = tomllib.loads(path.read_text())
        if rec["tags"].get("sweep") == sweep_id:
            runs[rec["id"]] = rec
    return runs


@pytest.mark.slow
def test_twelve_trials_two_at_a_time_killed_and_resumed(trained: tuple[Repo, list[str]]) -> None:
    repo, _ = trained
    (repo.root / "train.py").write_text(TRAIN)
    commit_all(repo.root, "a sweepable training script")
    proc, out = _start(repo.root, *GRID, "-j", "2", "-m", "accuracy", "--name", "lr",
                       "--", "python", "train.py", env={"TRIAL_SLEEP": "0.8"})  # fmt: skip
    sweeps = repo.gitml_dir / "sweeps"
    _wait_for(lambda: out.read_text().count(" complete: ") >= 2, "two finished trials")
    # Kill one trial's training process outright, as an OOM killer would.
    _wait_for(lambda: len(_trial_pids(repo)) >= 1, "a running trial")
    killed = _trial_pids(repo)[0]
    os.kill(killed, signal.SIGKILL)
    _wait_for(lambda: " failed " in out.read_text(), "the killed trial to be recorded")
    # Then kill the driver itself, mid-sweep: its trials go on as orphans in their slots.
    _wait_for(lambda: len(_trial_pids(repo)) >= 1, "another running trial")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (sweep_id,) = [p.name for p in sweeps.iterdir()]
    before = _sweep_runs(repo, sweep_id)
    assert len(before) < 12, out.read_text()

    done = gitml(repo.root, "sweep", "--resume", sweep_id, "-j", "2")
    assert done.returncode == 0, out.read_text() + done.stdout + done.stderr
    assert f"resuming sweep {sweep_id}: python train.py" in done.stderr
    runs = _sweep_runs(repo, sweep_id)
    states = [r["tags"]["sweep_state"] for r in runs.values()]
    assert states.count("complete") + states.count("pruned") == 12, states
    assert states.count("fail") >= 1  # the killed trial: kept, and recorded as failed
    failed = [r for r in runs.values() if r["tags"]["sweep_state"] == "fail"]
    assert all(r["status"] in ("failed", "crashed", "interrupted") for r in failed)
    finished = [r for r in runs.values() if r["tags"]["sweep_state"] == "complete"]
    points = {(r["params"]["C"], r["params"]["max_iter"]) for r in finished}
    assert len(points) == 12  # every grid point once, the killed one run again
    assert all(r["outputs"]["model.pkl"]["md5"] for r in finished)
    assert all(r["code"]["branch"] == "main" for r in finished)
    # Every run of the sweep is committed, with the sweep's own files.
    assert git(repo.root, "status", "--porcelain", "--", ".gitml/runs", ".gitml/sweeps") == ""
    tracked = git(repo.root, "ls-files", f".gitml/sweeps/{sweep_id}").split()
    assert {Path(p).name for p in tracked} == {"sweep.toml", "study.journal"}
    assert git(repo.root, "worktree", "list").count("\n") == 1  # the slots are gone

    listed = run_ok(repo.root, "runs", "--where", f"tags.sweep == '{sweep_id}' and "
                    "tags.sweep_state == 'complete'", "--format", "json")  # fmt: skip
    assert len(json.loads(listed)) == 12
    best = max(finished, key=lambda r: r["metrics"]["accuracy"])
    (best_line,) = [line for line in done.stdout.splitlines() if "best trial" in line]
    assert f"accuracy = {best['metrics']['accuracy']:.6g}" in best_line
    best_id = best_line.split(", run ")[1].split(";")[0]
    assert runs[best_id]["metrics"]["accuracy"] == best["metrics"]["accuracy"]
    run_ok(repo.root, "model", "register", best_id, "iris-sweep")
    promoted = gitml(repo.root, "model", "promote", "iris-sweep", "1", "-m", "best of the sweep")
    assert promoted.returncode == 0, promoted.stderr


PRUNED = (
    "import time, gitml\n"
    "p = gitml.params({'q': 1.0})\n"
    "with gitml.start_run() as run:\n"
    "    for step in range(8):\n"
    "        run.log_metric('score', p['q'] * (step + 1), step=step)\n"
    "        run.flush()\n"
    "        time.sleep(0.25)\n"
    "    run.log_metrics({'score': p['q'] * 8})\n"
)


@pytest.mark.slow
def test_trials_the_pruner_stops_are_recorded_as_pruned(project: Repo) -> None:
    (project.root / "train.py").write_text(PRUNED)
    commit_all(project.root, "a script that logs its steps")
    done = gitml(project.root, "sweep", "-p", "q=choice(1.0, 0.9, 0.1, 0.05)", "--prune",
                 "-m", "score", "--maximize", "--", "python", "train.py")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (sweep_id,) = [p.name for p in (project.gitml_dir / "sweeps").iterdir()]
    runs = _sweep_runs(project, sweep_id)
    by_q = {r["params"]["q"]: r for r in runs.values()}
    assert by_q[1.0]["tags"]["sweep_state"] == by_q[0.9]["tags"]["sweep_state"] == "complete"
    pruned = [r for r in runs.values() if r["tags"]["sweep_state"] == "pruned"]
    assert {r["params"]["q"] for r in pruned} == {0.1, 0.05}, done.stderr
    for r in pruned:
        assert r["status"] == "interrupted"
        assert r["metrics"].get("score", 0) < 8 * 0.1 + 1e-9  # stopped before its last step
    assert done.stderr.count(" pruned after ") == 2

    # the report groups the sweep: its trials by state, its best trial, its history plot
    best = by_q[1.0]["id"]
    report = run_ok(project.root, "report", "-o", "r/index.html", "--png-dir", "r/png")
    assert "1 sweep(s)" in report
    page = (project.root / "r" / "index.html").read_text()
    assert f'id="sweeps-{sweep_id}"' in page and "score per trial" in page
    row = f"| {sweep_id} | score ▲ | 4 of 4 | 2 | 2 | 0 | 8 | {best} | q=1.0 |"
    assert row in (project.root / "r" / "png" / "report.md").read_text()
    from gitml import report_sweeps

    outside = project.root.parent / "outside" / "sweep.toml"  # a tag naming a path is no id
    outside.parent.mkdir()
    outside.write_bytes((project.gitml_dir / "sweeps" / sweep_id / "sweep.toml").read_bytes())
    assert report_sweeps._spec(project, "../../../outside").metric is None


def test_bad_input_is_one_line_and_exit_2(project: Repo) -> None:
    cases = [
        (["-p", "C=choice(1,2)", "--", "python", "train.py"], "--metric"),
        (["-p", "C=interval(0,1)", "--sampler", "grid", "-m", "a", "--", "python", "x.py"],
         "a grid needs choice()"),
        (["-p", "C=choice(1,2)", "-n", "5", "-m", "a", "--", "python", "x.py"],
         "more than the grid's 2"),
        (["-p", "C=choice(1,2)", "-m", "a"], "nothing to run"),
        (["--resume", "20990101T000000Z-abcdef"], "no .gitml/sweeps/20990101T000000Z-abcdef"),
        (["--resume", "x", "-p", "C=1"], "give no params"),
        (["--resume", "../../../x"], "sweep '../../../x': not a sweep id"),
    ]  # fmt: skip
    for args, says in cases:
        done = gitml(project.root, "sweep", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (project.gitml_dir / "sweeps").exists()  # nothing half-written


def test_a_script_that_never_logs_the_metric_stops_the_sweep(project: Repo) -> None:
    (project.root / "train.py").write_text("print('no metrics here')\n")
    commit_all(project.root, "a script without the metric")
    done = gitml(project.root, "sweep", "-p", "C=choice(1,2,3,4,5,6)", "-m", "accuracy",
                 "--max-failures", "2", "--", "python", "train.py")  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "the run logged no final 'accuracy'" in done.stderr
    assert "failed trials stopped it" in done.stderr and "--resume" in done.stderr
    (sweep_id,) = [p.name for p in (project.gitml_dir / "sweeps").iterdir()]
    runs = _sweep_runs(project, sweep_id)
    assert len(runs) == 2 and all(r["tags"]["sweep_state"] == "fail" for r in runs.values())


def test_a_run_folder_from_a_worker_cannot_write_outside_its_run(project: Repo) -> None:
    from gitml.errors import GitmlError
    from gitml.sweep.workspace import harvest_files

    rid = "20261130T185409Z-cef5f3"
    attempts = [
        ("../../evil", {"run.toml": b""}),
        (rid, {"../../../hooks/pre-commit": b"#!/bin/sh\n", "run.toml": b""}),
        (rid, {"sub/run.toml": b""}),
        (rid, {".git": b"", "run.toml": b""}),
        (rid, {"metrics.parquet": b"x"}),  # no run.toml
        (rid, {"run.toml": b"schema_version = 1\nid = 'x'\n"}),  # breaks the schema
    ]
    for run_id, files in attempts:
        with pytest.raises(GitmlError):
            harvest_files(project, run_id, files)
    assert not project.runs_dir.exists() or not any(project.runs_dir.iterdir())
    assert not (project.root.parent / "evil").exists()


def test_a_dask_address_with_no_scheduler_is_exit_2_before_anything_is_written(
    project: Repo,
) -> None:
    done = gitml(project.root, "sweep", "-p", "C=1,2", "--prune", "--dask", "tcp://127.0.0.1:9",
                 "-m", "a", "--", "python", "train.py",
                 env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--dask: no Dask scheduler answers at tcp://127.0.0.1:9" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (project.gitml_dir / "sweeps").exists()
