"""A sweep's files and its Optuna study.

`.gitml/sweeps/<id>/` holds:

- ``sweep.toml``: what is searched (command, metric, direction, sampler, space, code commit),
  written once, validated against schemas/sweep.schema.json;
- ``code.patch``: the uncommitted code every trial runs (when there was any);
- ``study.journal``: Optuna's own journal storage, JSON lines appended as trials start, report
  and end. Optuna reads it back to resume (`JournalStorage`), it diffs line by line in a pull
  request, and it holds no pickles: reading a stranger's journal runs no code.

The search itself is Optuna's (grid through an own list of combinations, so a failed point is
run again on resume; random with `RandomSampler`, Bayesian with `TPESampler`, pruning with
`MedianPruner`). Its trials are asked and told by the driver: each is a gitml run of the command
with the trial's params, tagged ``sweep = <id>`` and ``sweep_trial = <number>``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import __version__, store
from gitml.errors import FileFormatError, GitmlError, UsageError
from gitml.repo import Repo
from gitml.sweep.space import Dimension, Space, Value, from_tables
from gitml.sweep.workspace import RUN_ID, Snapshot
from gitml.tracking.record import new_run_id

SWEEPS = "sweeps"
SPEC_FILE, PATCH_FILE, JOURNAL_FILE = "sweep.toml", "code.patch", "study.journal"
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median")
MAX_GRID = 100_000  # combinations a grid may have: each is a run, and the grid is listed


@dataclass(frozen=True)
class Spec:
    """What one sweep searches: its sweep.toml, parsed once."""

    id: str
    command: tuple[str, ...]
    cwd: str
    metric: str
    direction: str
    sampler: str
    trials: int
    space: Space
    code: Snapshot
    pruner: str = "none"
    seed: int | None = None
    name: str | None = None
    max_failures: int | None = None

    @property
    def failure_budget(self) -> int:
        """How many failed trials end the sweep (it would loop on a broken script otherwise)."""
        return self.max_failures if self.max_failures is not None else max(3, self.trials // 2)


def sweep_dir(repo: Repo, sweep_id: str) -> Path:
    """The folder of one sweep's files; an id not shaped like one (`../x`) is refused."""
    if not RUN_ID.match(sweep_id):
        raise UsageError(f"sweep {sweep_id!r}", "not a sweep id (such as 20261130T185409Z-cef5f3)")
    return repo.gitml_dir / SWEEPS / sweep_id


def new_spec(repo: Repo, **fields: Any) -> Spec:
    """A new sweep's spec with a fresh id (checks what the CLI could not)."""
    spec = Spec(id=new_run_id(), **fields)
    problem = _grid_problem(spec)
    if problem:
        raise UsageError(*problem)
    return spec


def _grid_problem(spec: Spec) -> tuple[str, str] | None:
    """What makes a grid search of ``spec`` impossible (the option at fault, why), or None."""
    if spec.sampler != "grid":
        return None
    if not spec.space.discrete:
        odd = next(d.name for d in spec.space.dimensions if not d.discrete)
        return "--sampler grid", (f"{odd} is an interval; a grid needs choice() or range(): "
                                  "use --sampler random or --sampler tpe")  # fmt: skip
    size = spec.space.grid_size()
    if size > MAX_GRID:
        why = f"the grid has {size:,} combinations, more than {MAX_GRID:,}"
        return "--sampler grid", f"{why}: narrow it, or use --sampler random or tpe with -n"
    if spec.trials > size:
        return "--trials", f"{spec.trials} is more than the grid's {size} combinations"
    return None


def write(repo: Repo, spec: Spec) -> Path:
    """Write sweep.toml (and the code patch) of a new sweep; returns its folder."""
    folder = sweep_dir(repo, spec.id)
    folder.mkdir(parents=True, exist_ok=False)
    doc: dict[str, Any] = {
        "schema_version": store.SCHEMA_VERSION,
        "id": spec.id,
        "created_at": store.utcnow(),
        "command": list(spec.command),
        "cwd": spec.cwd,
        "metric": spec.metric,
        "direction": spec.direction,
        "sampler": spec.sampler,
        "pruner": spec.pruner,
        "trials": spec.trials,
        "space": spec.space.to_toml(),
        "code": {"commit": spec.code.commit},
        "gitml": __version__,
    }
    if spec.name:
        doc["name"] = spec.name
    if spec.seed is not None:
        doc["seed"] = spec.seed
    if spec.max_failures is not None:
        doc["max_failures"] = spec.max_failures
    if spec.code.branch:
        doc["code"]["branch"] = spec.code.branch
    if spec.code.patch:
        store.atomic_write(folder / PATCH_FILE, spec.code.patch)
        doc["code"]["patch_sha256"] = hashlib.sha256(spec.code.patch).hexdigest()
    store.write_toml(folder / SPEC_FILE, doc, kind="sweep")
    return folder


def read(repo: Repo, sweep_id: str) -> Spec:
    """The spec of an existing sweep, checked (its patch against the recorded hash too)."""
    folder = sweep_dir(repo, sweep_id)
    path = folder / SPEC_FILE
    if not path.is_file():
        known = sorted(p.name for p in (repo.gitml_dir / SWEEPS).glob("*") if p.is_dir())
        hint = f"; sweeps here: {', '.join(known[-5:])}" if known else "; there is none here"
        raise UsageError(f"sweep {sweep_id!r}", f"no {repo.relpath(path)}{hint}")
    doc = store.read_toml(path, kind="sweep")
    source = repo.relpath(path)
    if doc["id"] != sweep_id:
        raise FileFormatError(source, f"id {doc['id']!r} is not its folder's name {sweep_id!r}")
    patch = None
    if "patch_sha256" in doc["code"]:
        try:
            patch = (folder / PATCH_FILE).read_bytes()
        except OSError as exc:
            raise FileFormatError(repo.relpath(folder / PATCH_FILE), exc.strerror or "") from exc
        if hashlib.sha256(patch).hexdigest() != doc["code"]["patch_sha256"]:
            raise FileFormatError(
                repo.relpath(folder / PATCH_FILE),
                "does not match the patch_sha256 of sweep.toml (edited after the sweep began)",
            )
    space_doc = dict(doc["space"]["dimensions"])
    space = from_tables(space_doc, source=f"{source}: space.dimensions")
    space = Space(space.dimensions, dict(doc["space"].get("fixed", {})))
    spec = Spec(
        id=doc["id"], command=tuple(doc["command"]), cwd=doc["cwd"], metric=doc["metric"],
        direction=doc["direction"], sampler=doc["sampler"], trials=doc["trials"], space=space,
        code=Snapshot(doc["code"]["commit"], doc["code"].get("branch"), patch),
        pruner=doc.get("pruner", "none"), seed=doc.get("seed"), name=doc.get("name"),
        max_failures=doc.get("max_failures"),
    )  # fmt: skip
    problem = _grid_problem(spec)
    if problem:
        raise FileFormatError(source, f"{problem[0].removeprefix('--')}: {problem[1]}")
    return spec


@dataclass
class Trial:
    """One trial as the study knows it."""

    number: int
    params: dict[str, Value]
    state: str  # running, complete, pruned, fail
    value: float | None
    run: str | None


class Study:
    """The Optuna study of one sweep, in its journal file; asked and told by one driver."""

    def __init__(self, repo: Repo, spec: Spec) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.path = sweep_dir(repo, spec.id) / JOURNAL_FILE
        # One driver holds the sweep's lock (`driver.py`), so Optuna's own lock file is not
        # needed: it would leave a lock link beside the journal if the driver were killed.
        backend = JournalFileBackend(str(self.path), lock_obj=_NoLock())  # type: ignore[arg-type]
        storage = JournalStorage(backend)
        self._optuna = optuna
        self.distributions = {d.name: _distribution(optuna, d) for d in spec.space.dimensions}
        try:
            self.study = optuna.create_study(
                study_name=spec.id,
                storage=storage,
                direction=spec.direction,  # type: ignore[arg-type]
                sampler=_sampler(optuna, spec),
                pruner=_pruner(optuna, spec),
                load_if_exists=True,
            )
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise FileFormatError(repo.relpath(self.path), f"not a readable study: {exc}") from exc
        done = len(self.study.get_trials(deepcopy=False))
        if done and spec.seed is not None:  # resumed: a seeded sampler must not replay trial 0
            self.study.sampler = _sampler(optuna, spec, offset=done)

    def trials(self) -> list[Trial]:
        """Every trial so far, in order."""
        states = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "fail",
                  "RUNNING": "running", "WAITING": "waiting"}  # fmt: skip
        return [
            Trial(t.number, dict(t.params) or dict(t.system_attrs.get("fixed_params", {})),
                  states[t.state.name], t.value, t.user_attrs.get("run"))
            for t in self.study.get_trials(deepcopy=False)
        ]  # fmt: skip

    def done(self) -> int:
        """Trials that count towards the sweep: complete or pruned."""
        return sum(t.state in ("complete", "pruned") for t in self.trials())

    def ask(self) -> tuple[Any, dict[str, Value]]:
        """A new trial and its params: the next unfinished grid point, or the sampler's pick."""
        if self.spec.sampler == "grid":
            point = self._next_grid_point()
            if point is None:
                raise GitmlError(f"sweep {self.spec.id}: every grid point is taken")
            self.study.enqueue_trial(point, skip_if_exists=False)
        trial = self.study.ask(self.distributions)
        return trial, {**dict(trial.params)}

    def remaining_grid(self) -> int:
        """Grid points with no trial that is complete, pruned or running."""
        taken = self._taken()
        return sum(_key(p) not in taken for p in self.spec.space.grid())

    def _next_grid_point(self) -> dict[str, Value] | None:
        taken = self._taken()
        return next((p for p in self.spec.space.grid() if _key(p) not in taken), None)

    def _taken(self) -> set[str]:
        return {_key(t.params) for t in self.trials() if t.state in ("complete", "pruned",
                                                                        "running")}  # fmt: skip

    def started(self, trial: Any, run_id: str) -> None:
        """Note the run a trial is."""
        trial.set_user_attr("run", run_id)

    def report(self, trial: Any, value: float, step: int) -> bool:
        """An intermediate value; True when the pruner says to stop the trial."""
        if not math.isfinite(value):
            return False
        trial.report(value, step)
        return bool(trial.should_prune())

    def tell(self, trial: Any, state: str, value: float | None = None) -> None:
        """End a trial: complete (with its value), pruned or fail."""
        optuna = self._optuna
        states = {"complete": optuna.trial.TrialState.COMPLETE,
                  "pruned": optuna.trial.TrialState.PRUNED,
                  "fail": optuna.trial.TrialState.FAIL}  # fmt: skip
        if state == "complete":
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=states[state])

    def close(self, number: int, outcome: Any) -> bool:
        """End trial ``number`` as ``outcome`` says if it is still running; True if it was."""
        frozen = next((t for t in self.study.get_trials(deepcopy=False) if t.number == number),
                      None)  # fmt: skip
        if frozen is None or frozen.state.name != "RUNNING":
            return False
        if outcome.run_id:
            self.study._storage.set_trial_user_attr(frozen._trial_id, "run", outcome.run_id)
        self.tell(number, outcome.state, outcome.value)
        return True

    def fail_running(self) -> list[Trial]:
        """Mark the trials a dead driver left running as failed; returns them."""
        left = [t for t in self.trials() if t.state == "running"]
        for t in left:
            self.study.tell(t.number, state=self._optuna.trial.TrialState.FAIL,
                            skip_if_finished=True)  # fmt: skip
        return left

    def best(self) -> Trial | None:
        """The complete trial with the best value."""
        complete = [t for t in self.trials() if t.state == "complete" and t.value is not None]
        if not complete:
            return None
        pick = max if self.spec.direction == "maximize" else min
        return pick(complete, key=lambda t: t.value)  # type: ignore[arg-type, return-value]


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _distribution(optuna: Any, dim: Dimension) -> Any:
    d = optuna.distributions
    if dim.kind == "categorical":
        return d.CategoricalDistribution(list(dim.choices))
    if dim.kind == "int":
        step = int(dim.step or 1)
        return d.IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=step)
    return d.FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)


def _sampler(optuna: Any, spec: Spec, offset: int = 0) -> Any:
    seed = None if spec.seed is None else spec.seed + offset
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)  # grid: every trial is enqueued


def _pruner(optuna: Any, spec: Spec) -> Any:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


class _NoLock:
    """Optuna's journal lock interface, for a journal only one process writes."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


@contextmanager
def driving(repo: Repo, sweep_id: str) -> Iterator[None]:
    """Hold the sweep's lock: one driver at a time runs (or resumes) a sweep."""
    from filelock import FileLock, Timeout

    path = repo.cache_dir / "locks" / f"sweep-{sweep_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0.2)
    except Timeout as exc:
        raise GitmlError(
            f"sweep {sweep_id} is being run by another `gitml sweep` on this machine; wait for "
            "it, or stop it first"
        ) from exc
    try:
        yield
    finally:
        lock.release()
