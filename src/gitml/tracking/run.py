"""The tracking API: `start_run` and the `Run` it returns."""

from __future__ import annotations

import atexit

# Writing Parquet at exit imports pandas (through pyarrow), which imports concurrent.futures;
# once shutdown has begun it can no longer register its own exit hook, so it is imported now.
import concurrent.futures.thread  # noqa: F401
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from gitml import store
from gitml.data.add import track
from gitml.data.content import content_fields
from gitml.errors import ArtifactError, RunStateError, UsageError
from gitml.monitoring.profile import profile_file, profile_path, write_profile
from gitml.records import RunRecord
from gitml.repo import Repo
from gitml.serving.models import save_model
from gitml.tracking import journal, record
from gitml.tracking.env import imported_modules, python_env

# Set by `gitml run` for the command it wraps, so the script's own runs join the wrapper's run.
RUN_ID_ENV = "GITML_RUN_ID"


class Run:
    """One run: params, step metrics, tags, inputs and artifacts, recorded under `.gitml/runs/`.

    Use it as a context manager (an exception marks the run failed and propagates) or call
    `end()` yourself. A run left open when the interpreter exits is ended then: failed if an
    uncaught exception ended the program, finished otherwise.
    """

    def __init__(self, repo: Repo, run_id: str, *, attached: bool = False) -> None:
        self.repo = repo
        self.id = run_id
        self.attached = attached
        self.dir = repo.run_dir(run_id)
        self._ended = False
        self._next_step: dict[str, int] = {}
        self._journal = journal.MetricJournal(
            self.dir / f"metrics.{os.getpid()}.journal",
            flush_every=int(repo.tracking_setting("flush_every")),
            flush_seconds=float(repo.tracking_setting("flush_seconds")),
        )
        _close_at_exit(self)

    def __repr__(self) -> str:
        return f"<Run {self.id}>"

    # -- params, tags -------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record one param. A param keeps its first value: changing it is an error."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several params at once (nested mappings become dotted names)."""
        new = record.redact(record.normalize_params(params), self.repo.tracking_setting(
            "allow_params"))  # fmt: skip

        def change(rec: dict[str, Any]) -> None:
            for key, value in new.items():
                old = rec["params"].get(key, value)
                if not store.same_value(old, value):
                    raise UsageError(
                        f"param {key!r}", f"already logged as {old!r}; params cannot change"
                    )
                rec["params"][key] = value

        self._update(change)

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (tags may be changed)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        new = record.redact(record.normalize_tags(tags), self.repo.tracking_setting("allow_params"))
        self._update(lambda rec: rec["tags"].update(new))

    # -- metrics -----------------------------------------------------------------------------
    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Log one value of a metric; ``step`` defaults to one past this metric's last step."""
        if self._ended:
            raise RunStateError(self.id, "has ended; start a new run to log more")
        if name not in self._next_step:
            journal.check_metric_name(name)
        if type(value) is not float:
            value = journal.check_metric_value(name, value)
        if step is None:
            step = self._next_step.get(name, 0)
        elif type(step) is not int or step < 0:
            step = _check_step(name, step)
        self._next_step[name] = step + 1
        self._journal.append(step, name, value)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics at the same step."""
        for name, value in metrics.items():
            self.log_metric(name, value, step)

    def flush(self) -> None:
        """Write buffered metric steps to disk now."""
        self._journal.flush()

    # -- data and artifacts ------------------------------------------------------------------
    def log_input(self, path: str | os.PathLike[str], *, profile: bool = False) -> dict[str, Any]:
        """Hash a data file DVC-compatibly, cache it, and record it under `[inputs]`.

        With ``profile=True`` (CSV or Parquet) the run also keeps a compact profile of the file,
        quantiles and category counts per column, so `gitml drift` can compare new data with
        it without the raw file.
        """
        ref = self._log_file("inputs", Path(path))
        if not profile:
            return ref

        rel = self.repo.relpath(Path(path))
        target = profile_path(self.dir, rel)
        write_profile(target, profile_file(Path(path)))
        ref["profile"] = target.relative_to(self.dir).as_posix()
        self._update(lambda rec: rec["inputs"][rel].__setitem__("profile", ref["profile"]))
        return ref

    def log_artifact(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Hash a produced file DVC-compatibly, cache it, and record it under `[outputs]`."""
        return self._log_file("outputs", Path(path))

    def log_model(
        self, model: Any, path: str | os.PathLike[str] = "model.pkl", *, format: str = "joblib"
    ) -> dict[str, Any]:
        """Save a model (joblib, or skops which loads without running arbitrary code) and log it.

        The file is written atomically, cached in DVC with a `.dvc` pointer, and recorded under
        `[outputs]` with its format.
        """
        save_model(model, Path(path), format=format)
        return self._log_file("outputs", Path(path), format=format)

    def _log_file(self, section: str, path: Path, **extra: Any) -> dict[str, Any]:
        absolute = Path(os.path.abspath(path))
        try:
            rel = absolute.relative_to(self.repo.root).as_posix()
        except ValueError:
            raise ArtifactError(str(path), f"is outside the repository {self.repo.root}") from None
        real = absolute.resolve()
        if not real.is_relative_to(self.repo.root.resolve()):
            raise ArtifactError(rel, f"is a link to {real}, outside the repository")
        if rel.startswith(".gitml/") or rel.startswith(".git/"):
            raise ArtifactError(rel, "is inside gitml's or git's own folder")

        ref = {**track(self.repo.root, absolute).to_dict(), **extra}
        if section == "outputs":
            ref.update(content_fields(absolute))
        self._update(lambda rec: rec.setdefault(section, {}).__setitem__(rel, ref))
        return ref

    # -- ending --------------------------------------------------------------------------------
    @property
    def record(self) -> RunRecord:
        """The run.toml record as it is on disk now."""
        return record.read(self.repo, self.id)

    def end(self, status: str = "finished", *, error: str | None = None) -> RunRecord:
        """Flush everything and close the run with ``status`` (finished, failed or crashed)."""
        if status not in record.FINAL_STATUSES:
            raise UsageError(
                "status", f"{status!r} is not one of {', '.join(record.FINAL_STATUSES)}"
            )
        if self._ended:
            return self.record
        self._ended = True
        self._journal.close()
        env = python_env(imported_modules())
        if self.attached:
            return record.update(self.repo, self.id, lambda rec: _merge_env(rec, env))

        def extra(rec: dict[str, Any]) -> None:
            _merge_env(rec, env)
            if error:
                rec["error"] = error

        return record.finalize(self.repo, self.id, status=status, extra=extra)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("interrupted", error="interrupted (Ctrl-C)")
        else:
            self.end("failed", error=_describe(exc))

    def _at_exit(self) -> None:
        if self._ended:
            return
        failure = getattr(sys, "last_value", None)
        if isinstance(failure, KeyboardInterrupt):
            self.end("interrupted", error="interrupted (Ctrl-C)")
        elif failure is not None:
            self.end("failed", error=_describe(failure))
        else:
            self.end("finished")

    def _update(self, change: Any) -> None:
        if self._ended:
            raise RunStateError(self.id, "has ended; start a new run to log more")
        record.update(self.repo, self.id, change)


def _close_at_exit(run: Run) -> None:
    """End ``run`` when the program ends, if it is still open then.

    `threading._register_atexit` callbacks run as soon as the main thread is done, before the
    interpreter starts tearing down, when imports (pyarrow, to write Parquet) still work; a plain
    `atexit` callback is too late for them. It is what `concurrent.futures` uses; `atexit` is the
    fallback where it is missing. A weak reference keeps finished runs collectable.
    """
    ref = weakref.ref(run)

    def close() -> None:
        alive = ref()
        if alive is not None:
            alive._at_exit()

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(close)
    except RuntimeError:  # missing, or called during shutdown
        atexit.register(close)


def _merge_env(rec: dict[str, Any], env: dict[str, Any]) -> None:
    old = rec.get("env", {})
    rec["env"] = {**env, "packages": {**old.get("packages", {}), **env["packages"]}}


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _check_step(name: str, step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        item = getattr(step, "item", None)
        step = item() if callable(item) else step
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UsageError(f"metric {name!r}", f"step {step!r} is not a non-negative integer")
    return step


def start_run(
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    repo: Repo | str | os.PathLike[str] | None = None,
    join: bool = True,
) -> Run:
    """Start a run in the gitml project containing ``repo`` (default: the current directory).

    Inside a command wrapped by `gitml run`, this joins the wrapper's run instead of starting a
    new one, so the script's params and metrics land in the same record; ``join=False`` starts
    a run of its own all the same (one per Optuna trial, say).

    Example:
        >>> with gitml.start_run("baseline", params={"lr": 0.1}) as run:
        ...     run.log_metric("loss", 0.5, step=1)

    """
    project = repo if isinstance(repo, Repo) else Repo.find(repo)
    joined = os.environ.get(RUN_ID_ENV) if join else None
    if joined and (project.run_dir(joined) / record.RUN_FILE).is_file():
        run = Run(project, joined, attached=True)
        if name and not run.record.get("name"):
            run._update(lambda rec: rec.__setitem__("name", name))
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        return run
    rec = record.create(
        project, name=name, params=params, tags=tags, command=_own_command(), cwd=Path.cwd()
    )
    return Run(project, rec["id"])


def _own_command() -> list[str]:
    # How to run this script again: `python <script relative to cwd> args...`.
    argv = list(sys.argv)
    if not argv or argv[0] in ("", "-c"):
        return ["python", *argv[:1]] if argv and argv[0] == "-c" else ["python"]
    script = argv[0]
    if os.path.isabs(script):
        with suppress(ValueError):  # another drive on Windows
            script = os.path.relpath(script)
    return ["python", script, *argv[1:]]
