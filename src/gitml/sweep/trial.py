"""One trial: `gitml run` of the sweep's command in a slot, watched, and its run brought home.

The trial is an ordinary `gitml run` process (its params as ``-p``, the sweep as tags), so the
script reads its params with `gitml.params()` or ``GITML_PARAM_*`` and logs as it always does.
While it runs, the step values of the sweep's metric are read from the run's metric journal as
the script flushes them and handed to the pruner; a trial the pruner stops gets SIGINT, which
`gitml run` records as ``interrupted``. The outcome is read from the finished run.toml.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import store
from gitml.records import RunRecord
from gitml.repo import Repo
from gitml.sweep.space import Value
from gitml.sweep.workspace import Slot, harvest
from gitml.tracking import journal, record
from gitml.tracking.env import process_gone
from gitml.tracking.run import RUN_ID_ENV
from gitml.tracking.wrap import PARAM_ENV_PREFIX, PARAMS_FILE_ENV

POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10.0
STATE_TAG, SWEEP_TAG, TRIAL_TAG = "sweep_state", "sweep", "sweep_trial"


@dataclass(frozen=True)
class Request:
    """What to run for one trial."""

    sweep_id: str
    number: int
    params: dict[str, Value]
    command: tuple[str, ...]
    cwd: str
    metric: str
    name: str | None = None
    fixed: dict[str, Value] = field(default_factory=dict)

    def argv(self) -> list[str]:
        """The `gitml run` command line of this trial."""
        name = f"{self.name or 'sweep'}-{self.number}"
        argv = [sys.executable, "-m", "gitml", "run", "--name", name,
                "-t", f"{SWEEP_TAG}={self.sweep_id}",
                "-t", f"{TRIAL_TAG}={self.number}"]  # fmt: skip
        for key, value in {**self.fixed, **self.params}.items():
            argv += ["-p", f"{key}={_literal(value)}"]
        return [*argv, "--", *self.command]


@dataclass
class Outcome:
    """How a trial ended: complete (with the metric's value), pruned or fail."""

    state: str
    value: float | None = None
    run_id: str | None = None
    error: str | None = None
    steps: int = 0


StepHook = Callable[[int, float], bool]  # (step, value) -> stop the trial now


def run_in_slot(
    slot: Slot, req: Request, on_step: StepHook | None, output: Path, cancel: threading.Event
) -> Outcome:
    """Run one trial in a prepared slot; its run folder ends up in the slot's runs.

    ``cancel`` set (the sweep was stopped) interrupts the trial; it ends as failed.
    """
    before = {p.name for p in slot.runs()}
    cwd = store.safe_target(slot.path, req.cwd) if req.cwd != "." else slot.path
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "wb") as out:
        proc = subprocess.Popen(req.argv(), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=_trial_env())  # fmt: skip
        watch = _Watch(slot, before, req.metric, on_step)
        pruned = False
        try:
            while proc.poll() is None:
                if cancel.is_set() or (not pruned and watch.poll()):
                    pruned = not cancel.is_set()
                    _stop(proc)
                    break
                time.sleep(POLL_SECONDS)
        except BaseException:
            _stop(proc)
            raise
    run_dir = watch.run_dir or _new_run(slot, before)
    if run_dir is None:
        code = proc.returncode
        return Outcome("fail", error=f"`gitml run` started no run (exit {code}): {_tail(output)}")
    rec = settled(slot, run_dir)
    if pruned:
        return Outcome("pruned", watch.last, run_dir.name, steps=watch.steps)
    if cancel.is_set():
        return Outcome("fail", run_id=run_dir.name, error="the sweep was stopped")
    outcome = judge(rec, req.metric)
    outcome.steps = watch.steps
    if outcome.error and rec["status"] != "finished":
        outcome.error = f"{outcome.error}: {_tail(output)}"
    return outcome


def judge(rec: RunRecord, metric: str) -> Outcome:
    """The outcome a finished (or failed) run record gives its trial."""
    run_id = rec["id"]
    if rec["status"] != "finished":
        why = rec.get("error") or f"exit code {rec.get('exit_code')}"
        return Outcome("fail", run_id=run_id, error=why)
    value = rec.get("metrics", {}).get(metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        logged = ", ".join(sorted(rec.get("metrics", {}))) or "none"
        error = f"the run logged no final {metric!r} (its metrics: {logged})"
        return Outcome("fail", run_id=run_id, error=error)
    return Outcome("complete", float(value), run_id)


def bring_home(repo: Repo, slot_run: Path, outcome: Outcome, branch: str | None) -> RunRecord:
    """Move a trial's run into the repository and tag it with how the trial ended."""
    harvest(repo, slot_run)
    return tag_trial(repo, slot_run.name, outcome, branch)


def tag_trial(repo: Repo, run_id: str, outcome: Outcome, branch: str | None) -> RunRecord:
    """Tag a trial's run, now in the repository, with how the trial ended."""

    def change(rec: dict[str, Any]) -> None:
        rec["tags"][STATE_TAG] = outcome.state
        if branch and not rec.get("code", {}).get("branch"):
            rec.setdefault("code", {"dirty": False})["branch"] = branch  # ran detached in a slot
        if outcome.error and outcome.state == "fail" and not rec.get("error"):
            rec["error"] = outcome.error[:2000]

    return record.update(repo, run_id, change)


class _Watch:
    """Finds the trial's run folder and feeds the metric's new steps to the pruner."""

    def __init__(self, slot: Slot, before: set[str], metric: str, on_step: StepHook | None):
        self.slot, self.before, self.metric, self.on_step = slot, before, metric, on_step
        self.run_dir: Path | None = None
        self.seen = -1
        self.last: float | None = None
        self.steps = 0

    def poll(self) -> bool:
        """Read new steps; True when the pruner says stop."""
        if self.run_dir is None:
            self.run_dir = _new_run(self.slot, self.before)
            if self.run_dir is None:
                return False
        rows = sorted((r[0], r[2]) for p in journal.journals(self.run_dir)
                      for r in journal.read_journal(p) if r[3] == self.metric)  # fmt: skip
        for step, value in rows:
            if step <= self.seen:
                continue
            self.seen, self.last, self.steps = step, value, self.steps + 1
            if self.on_step is not None and self.on_step(step, value):
                return True
        return False


def _new_run(slot: Slot, before: set[str]) -> Path | None:
    return next((p for p in slot.runs() if p.name not in before), None)


def settled(slot: Slot, run_dir: Path, *, wait: bool = False) -> RunRecord:
    """The run's record; a run its process left `running` (killed hard) is closed as crashed.

    With ``wait``, a run whose process is still alive is waited for.
    """
    slot_repo = Repo(slot.path)
    while True:
        rec = record.read(slot_repo, run_dir.name)
        if rec["status"] != "running":
            return rec
        if process_gone(rec.get("process", {})):
            return record.mark_crashed(slot_repo, run_dir.name)
        if not wait:
            return rec
        time.sleep(POLL_SECONDS)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the trial's process group (`gitml run` records it), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _trial_env() -> dict[str, str]:
    """The environment, minus what would tie the trial to a run or repository of ours."""
    drop = (RUN_ID_ENV, PARAMS_FILE_ENV, "GITML_REPO", "GIT_DIR", "GIT_WORK_TREE",
            "GIT_INDEX_FILE")  # fmt: skip
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(PARAM_ENV_PREFIX)}  # fmt: skip
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _literal(value: Value) -> str:
    """A param value as `gitml run -p` reads it back, type kept (a string stays a string)."""
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: "true" stays text, not a boolean
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _tail(output: Path, lines: int = 3) -> str:
    try:
        text = output.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    shown = " | ".join(line.strip() for line in text[-lines:] if line.strip())
    return shown[-400:] if shown else "no output"
