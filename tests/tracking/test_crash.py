import json
import signal
import subprocess
import sys
import time

import pytest

from gitml import store
from gitml.tracking import journal
from tests.helpers import gitml

SCRIPT = """
import sys, time
import gitml
run = gitml.start_run("doomed", params={"lr": 0.1})
for i in range(2500):
    run.log_metric("loss", 1.0 / (i + 1))
run.flush()
print(run.id, flush=True)
for i in range(2500, 2600):
    run.log_metric("loss", 1.0 / (i + 1))   # buffered, never flushed
time.sleep(60)
"""


@pytest.fixture
def killed_run(project):
    env = {"GITML_FLUSH_TEST": "1"}
    # A long flush interval: only the explicit flush and full batches reach the disk.
    config = project.config_path.read_text().replace("flush_seconds = 1.0", "flush_seconds = 600")
    project.config_path.write_text(config)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=project.root,
        stdout=subprocess.PIPE,
        env={**__import__("os").environ, **env},
    )
    run_id = proc.stdout.readline().decode().strip()
    assert run_id, "the script did not start its run"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return run_id


def test_killed_run_is_readable_running_then_crashed(project, killed_run):
    run_dir = project.run_dir(killed_run)
    rec = store.read_toml(run_dir / "run.toml", kind="run")
    assert rec["status"] == "running", "the record left behind is valid and says running"
    rows = [r for p in journal.journals(run_dir) for r in journal.read_journal(p)]
    assert len(rows) == 2500

    listed = gitml(project.root, "runs", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert run["id"] == killed_run
    assert run["status"] == "crashed"
    assert run["metrics"]["loss"] == pytest.approx(1 / 2500)

    repaired = store.read_toml(run_dir / "run.toml", kind="run")
    assert repaired["status"] == "crashed" and "ended without closing" in repaired["error"]
    steps = journal.read_parquet(run_dir / "metrics.parquet").rows
    assert sorted(s for s, *_ in steps) == list(range(2500)), "every flushed step, nothing more"
    assert not journal.journals(run_dir)


def test_torn_last_journal_line_is_ignored(tmp_path):
    path = tmp_path / "metrics.1.journal"
    path.write_bytes(b"0\t1000\t0.5\tloss\n1\t1001\t0.4\tloss\n2\t10")
    assert journal.read_journal(path) == [(0, 1000, 0.5, "loss"), (1, 1001, 0.4, "loss")]


def test_live_run_is_not_marked_crashed(project):
    import gitml as api

    run = api.start_run("alive")
    run.log_metric("x", 1)
    listed = gitml(project.root, "runs", "--format", "json")
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "running"
    run.end()
    assert run.record["status"] == "finished"


@pytest.mark.parametrize(
    ("tail", "status"),
    [("pass", "finished"), ("raise ValueError('bad data')", "failed")],
    ids=["normal-exit", "uncaught-exception"],
)
def test_run_left_open_is_closed_at_exit(project, tail, status):
    script = f"import gitml\nrun = gitml.start_run('open')\nrun.log_metric('m', 1)\n{tail}\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project.root, capture_output=True, check=False
    )
    (run_dir,) = list(project.runs_dir.iterdir())
    rec = store.read_toml(run_dir / "run.toml", kind="run")
    assert rec["status"] == status and rec["metrics"] == {"m": 1.0}
    if status == "failed":
        assert done.returncode == 1 and rec["error"] == "ValueError: bad data"


def test_timed_flush_reaches_disk_without_another_log_call(project):
    config = project.config_path.read_text().replace("flush_seconds = 1.0", "flush_seconds = 0.2")
    project.config_path.write_text(config)
    script = (
        "import time, gitml\nrun = gitml.start_run()\nrun.log_metric('m', 7)\n"
        "print(run.id, flush=True)\ntime.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=project.root, stdout=subprocess.PIPE
    )
    run_id = proc.stdout.readline().decode().strip()
    try:
        deadline = time.monotonic() + 10
        rows = []
        while time.monotonic() < deadline and not rows:
            time.sleep(0.1)
            rows = [
                r
                for p in journal.journals(project.run_dir(run_id))
                for r in journal.read_journal(p)
            ]
        assert [(r[0], r[2], r[3]) for r in rows] == [(0, 7.0, "m")]
    finally:
        proc.kill()
        proc.wait()
