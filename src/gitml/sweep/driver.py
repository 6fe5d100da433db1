"""The sweep driver: asks the study for trials, runs ``jobs`` of them at once, tells the results.

Trials run on an engine: `LocalEngine` here (one worktree slot a parallel trial), or
`gitml.sweep.dask_engine` on a Dask cluster. Either returns an `Outcome` per trial, with the
run folder in this repository's `.gitml/runs/`. The study is asked and told from this process
only, under one lock; resuming a sweep first closes what a killed driver left behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from gitml import git
from gitml.errors import GitmlError
from gitml.repo import Repo
from gitml.sweep import study as studies
from gitml.sweep import workspace
from gitml.sweep.study import Spec, Study
from gitml.sweep.trial import (
    TRIAL_TAG,
    Outcome,
    Request,
    StepHook,
    bring_home,
    judge,
    run_in_slot,
    settled,
)
from gitml.sweep.workspace import Slot
from gitml.tracking import record

Echo = Callable[[str], None]


class Engine(Protocol):
    """Runs trials: ``jobs`` at a time, each to an `Outcome` with its run in the repository."""

    jobs: int

    def start(self) -> None:
        """Get ready (make slots, connect)."""

    def submit(self, req: Request, on_step: StepHook | None) -> Future[Outcome]:
        """Start one trial."""

    def close(self, *, abort: bool = False) -> None:
        """Release what `start` took; ``abort`` interrupts the trials still running."""


@dataclass
class Result:
    """What a `gitml sweep` invocation did."""

    spec: Spec
    stopped_by_failures: bool = False
    study: Study | None = None

    @property
    def done(self) -> int:
        """Complete or pruned trials of the whole sweep (earlier invocations too)."""
        return self.study.done() if self.study else 0

    @property
    def complete(self) -> bool:
        """Whether the sweep has all the trials it wants."""
        return self.done >= self.spec.trials


class LocalEngine:
    """Trials on this machine, each in its own worktree slot (`workspace.Slot`)."""

    def __init__(self, repo: Repo, spec: Spec, jobs: int) -> None:
        self.repo, self.spec, self.jobs = repo, spec, jobs
        self._free: list[Slot] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gitml-trial")

    def start(self) -> None:
        """One slot a job; each is made when its first trial starts."""
        self._free = [Slot.local(self.repo, self.spec.id, i, self.spec.code)
                      for i in range(self.jobs)]  # fmt: skip

    def submit(self, req: Request, on_step: StepHook | None) -> Future[Outcome]:
        """Run the trial in a free slot, on a thread of the pool."""
        return self._pool.submit(self._run, req, on_step)

    def _run(self, req: Request, on_step: StepHook | None) -> Outcome:
        with self._lock:
            slot = self._free.pop()
        try:
            slot.prepare()
            output = workspace.slots_dir(self.repo, self.spec.id) / f"trial-{req.number}.log"
            outcome = run_in_slot(slot, req, on_step, output, self._cancel)
            for run_dir in slot.runs():  # the trial's run
                bring_home(self.repo, run_dir, outcome, self.spec.code.branch)
            return outcome
        finally:
            with self._lock:
                self._free.append(slot)

    def close(self, *, abort: bool = False) -> None:
        """Wait for the trials (interrupted with ``abort``), then remove the slots."""
        if abort:
            self._cancel.set()
        self._pool.shutdown(wait=True)
        workspace.remove_all(self.repo, self.spec.id)


def run(repo: Repo, spec: Spec, engine: Engine, *, echo: Echo) -> Result:
    """Run (or resume) a sweep until it has ``spec.trials`` complete or pruned trials."""
    result = Result(spec)
    with studies.driving(repo, spec.id):
        study = Study(repo, spec)
        result.study = study
        recover(repo, spec, study, echo)
        lock = threading.Lock()
        failures = 0
        engine.start()
        running: dict[Future[Outcome], tuple[Any, Request]] = {}
        try:
            while True:
                while len(running) < engine.jobs and _wants_more(study, spec, len(running)):
                    if failures >= spec.failure_budget:
                        result.stopped_by_failures = True
                        break
                    with lock:
                        trial, params = study.ask()
                    req = Request(spec.id, trial.number, params, spec.command, spec.cwd,
                                  spec.metric, spec.name, spec.space.fixed)  # fmt: skip
                    hook = _pruning(study, trial, lock) if spec.pruner != "none" else None
                    running[engine.submit(req, hook)] = (trial, req)
                    echo(f"trial {trial.number} started: {_shown(params)}")
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    trial, req = running.pop(future)
                    outcome = _outcome_of(future)
                    with lock:
                        if outcome.run_id:
                            study.started(trial, outcome.run_id)
                        study.tell(trial, outcome.state, outcome.value)
                    failures += outcome.state == "fail"
                    echo(_line(spec, req.number, outcome))
        except BaseException:  # Ctrl-C, or a failure of the driver: stop the trials, keep runs
            engine.close(abort=True)
            with lock:
                for future, (trial, _req) in running.items():
                    if not future.cancel():
                        study.tell(trial, "fail")
            raise
        engine.close()
    return result


def _wants_more(study: Study, spec: Spec, running: int) -> bool:
    if study.done() + running >= spec.trials:
        return False
    return spec.sampler != "grid" or study.remaining_grid() > 0


def _pruning(study: Study, trial: Any, lock: threading.Lock) -> StepHook:
    def on_step(step: int, value: float) -> bool:
        with lock:
            return study.report(trial, value, step)

    return on_step


def _outcome_of(future: Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except GitmlError as exc:
        return Outcome("fail", error=str(exc))


def recover(repo: Repo, spec: Spec, study: Study, echo: Echo) -> None:
    """Bring home the runs a stopped driver left in its slots, and close its running trials.

    A trial still running (its driver was killed, not stopped) is waited for; a run that
    finished counts as it ended.
    """
    folder = workspace.slots_dir(repo, spec.id)
    for slot_path in sorted(folder.glob("slot-*")) if folder.is_dir() else []:
        slot = Slot.local(repo, spec.id, int(slot_path.name.rpartition("-")[2]), spec.code)
        for run_dir in slot.runs():
            rec = record.read(Repo(slot.path), run_dir.name)
            if rec["status"] == "running":
                echo(f"waiting for run {run_dir.name}, which a stopped driver left running")
            rec = settled(slot, run_dir, wait=True)
            outcome = judge(rec, spec.metric)
            bring_home(repo, run_dir, outcome, spec.code.branch)
            number = rec["tags"].get(TRIAL_TAG, "")
            if number.isdigit() and study.close(int(number), outcome):
                echo(_line(spec, int(number), outcome) + " (left by a stopped driver)")
    for trial in study.fail_running():
        echo(f"trial {trial.number} was left running by a stopped driver: marked failed")
    workspace.remove_all(repo, spec.id)


def commit(repo: Repo, spec: Spec, result: Result) -> str | None:
    """Commit the sweep's files and its trials' runs; returns the new commit, None if no change."""
    paths = [repo.relpath(studies.sweep_dir(repo, spec.id))]
    paths += [repo.relpath(repo.run_dir(r)) for r in uncommitted_trials(repo, spec.id)]
    others = git.run_git(repo.root, "diff", "--cached", "--name-only").split()
    if others:
        raise GitmlError(
            f"the sweep's files are not committed: the index already has staged changes "
            f"({', '.join(others[:3])}{' ...' if len(others) > 3 else ''}), which a sweep's "
            f"commit must not take along; commit them first, then `git add {paths[0]}` and the "
            "trials' runs"
        )
    git.run_git(repo.root, "add", "--", *paths)
    if not git.run_git(repo.root, "diff", "--cached", "--name-only").strip():
        return None
    best = result.study.best() if result.study else None
    what = f"best {spec.metric} = {best.value:.6g} (trial {best.number})" if best else "no best yet"
    message = f"gitml sweep {spec.id}: {result.done} of {spec.trials} trials, {what}"
    # Not `git commit -- <paths>`: with a pathspec git commits a temporary index, and what the
    # pre-commit hook stages (metrics.toml) would be committed but left out of the real index.
    git.run_git(repo.root, "commit", "--quiet", "-m", message)
    return git.run_git(repo.root, "rev-parse", "HEAD").strip()


def uncommitted_trials(repo: Repo, sweep_id: str) -> list[str]:
    """The ids of this sweep's runs that git does not have yet (this and earlier invocations)."""
    listed = git.run_git(repo.root, "ls-files", "-z", "--others", "--modified",
                         "--exclude-standard", "--", ".gitml/runs")  # fmt: skip
    found = set()
    for path in filter(None, listed.split("\0")):
        parts = path.split("/")
        if len(parts) == 4 and parts[3] == "run.toml":
            try:
                rec = record.read(repo, parts[2])
            except GitmlError:
                continue  # not a trial's business here; `gitml check` names a broken record
            if rec["tags"].get("sweep") == sweep_id:
                found.add(parts[2])
    return sorted(found)


def _shown(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _line(spec: Spec, number: int, outcome: Outcome) -> str:
    run = f" run {outcome.run_id}" if outcome.run_id else ""
    if outcome.state == "complete":
        return f"trial {number} complete: {spec.metric} = {outcome.value:.6g}{run}"
    if outcome.state == "pruned":
        last = "" if outcome.value is None else f" at {spec.metric} = {outcome.value:.6g}"
        return f"trial {number} pruned after {outcome.steps} step(s){last}{run}"
    return f"trial {number} failed{run}: {outcome.error}"
