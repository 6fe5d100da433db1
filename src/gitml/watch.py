"""`gitml watch DIR`: continuous training, one commit per step.

When a labelled data file (CSV or Parquet, the training data's columns) lands in DIR:

1. drift: the file's features against the champion's training data (its stored profile), the
   report committed;
2. retrain, on drift (``[watch] retrain = "drift"``, the default), on every file (``"always"``)
   or never; with ``every = N`` also once N files wait untrained, with ``max_age_days`` also
   when the champion is that old. The file (with any files still waiting) is split into a
   training part and a holdout (``holdout``, 30%), the training part is appended to the
   champion run's training input, and the champion's recorded command is re-run with its
   recorded params as a new tracked run, committed;
3. the challenger is registered as the next version (a commit);
4. champion and challenger are scored on the holdout with the registry metric, and the
   challenger is promoted (a commit saying why) only if it is better by ``margin``.

A failure in any step stops that file there: the training input is restored, the alias is not
moved, the failure is reported and kept in `.gitml/monitor/<name>/watch.toml` with the steps
done, which is committed too. `--once` processes the files not yet processed and exits.
"""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import git, logs, store
from gitml.data.ingest import md5_of
from gitml.errors import CommandError, GitmlError, UsageError
from gitml.monitoring import drift
from gitml.monitoring.drift_report import save as save_drift
from gitml.monitoring.drift_sources import resolve_reference
from gitml.monitoring.monitor import MONITOR_DIR
from gitml.monitoring.performance import metric_function
from gitml.registry import versions as registry
from gitml.registry.ref import ModelRef, Resolved
from gitml.repo import Repo
from gitml.serving.loading import load, predict
from gitml.store import utcnow
from gitml.tracking.wrap import run_command
from gitml.watch_data import (
    SUFFIXES,
    Champion,
    append_training_data,
    find_champion,
    labelled_rows,
    read_frame,
    split_holdout,
    target_column,
    training_data,
)

log = logs.get(__name__)

DEFAULTS = {"retrain": "drift", "holdout": 0.3, "margin": 0.0, "alias": "production"}
STABLE_SECONDS = 0.5


@dataclass
class Outcome:
    """What happened to one data file."""

    file: str
    md5: str
    steps: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    run: str | None = None
    challenger: int | None = None
    promoted: bool = False
    error: str | None = None
    trained_with: list[str] = field(default_factory=list)  # earlier files trained on too


@dataclass(frozen=True)
class Policy:
    """`[watch]` of the config, with the command line on top."""

    ref: ModelRef  # name@alias: the alias kept trained
    target: str | None
    retrain: str
    holdout: float
    margin: float
    metric: str
    every: int = 0  # also retrain once this many files wait untrained (0: off)
    max_age_days: float = 0  # also retrain when the champion is this old (0: off)

    @property
    def model(self) -> str:
        """The watched model's name."""
        return self.ref.name

    @property
    def alias(self) -> str:
        """The alias kept trained."""
        return self.ref.selector

    @classmethod
    def from_config(cls, repo: Repo, spec: str | None, **overrides: Any) -> Policy:
        """The policy for ``spec`` (``name@alias``), or `[watch] model`."""
        conf = {**DEFAULTS, **repo.config.get("watch", {})}
        conf.update({k: v for k, v in overrides.items() if v is not None})
        spec = spec or conf.get("model")
        if not spec:
            raise UsageError("--model", "name the model to keep trained, as name@alias")
        ref = ModelRef.parse(spec, default=conf["alias"])
        if ref.alias is None:
            raise UsageError("--model", f"{spec}: watch keeps an alias trained; give name@alias")
        metric = conf.get("metric") or repo.config.get("registry", {}).get("metric", "accuracy")
        return cls(ref, conf.get("target"), conf["retrain"],
                   float(conf["holdout"]), float(conf["margin"]), metric,
                   int(conf.get("every", 0)), float(conf.get("max_age_days", 0)))  # fmt: skip


def process(repo: Repo, policy: Policy, file: Path, echo: Callable[[str], None]) -> Outcome:
    """Take one data file through drift, retraining, registration and promotion."""
    outcome = Outcome(file=file.name, md5=md5_of(file))
    restore: Callable[[], None] | None = None
    try:
        frame = read_frame(file)
        resolved = registry.resolve(repo, policy.ref)  # once: every step below uses this version
        outcome.drifted = _drift(repo, policy, file, frame, outcome, champion=resolved, echo=echo)
        why, waiting = _why_retrain(repo, policy, resolved, file, outcome.drifted)
        if why is None:
            outcome.steps.append(f"no retraining: {_why_not(policy)}")
            return outcome
        champion = find_champion(repo, resolved)
        data = training_data(repo, champion)
        named = [(file.name, frame), *((w.name, read_frame(w)) for w in waiting)]
        train, holdout = split_holdout(labelled_rows(list(data.columns), named), policy.holdout)
        restore = append_training_data(repo, champion, data, train)
        outcome.run = _retrain(repo, policy, champion, file, why, echo=echo)
        restore = None  # the new training data is committed with the run
        outcome.trained_with = [w.name for w in waiting]
        outcome.steps.append(f"retrained ({why}): run {outcome.run}"
                             + (f", with {', '.join(outcome.trained_with)}" if waiting
                                else ""))  # fmt: skip
        _register_and_decide(repo, policy, outcome, holdout, file, champion=resolved, echo=echo)
    except GitmlError as exc:
        outcome.error = exc.message
        echo(f"gitml watch: {file.name}: {exc.message}; {policy.ref} unchanged")
    finally:
        if restore is not None:
            restore()
        _record(repo, policy, outcome)
    return outcome


def _why_retrain(
    repo: Repo, policy: Policy, champion: Resolved, file: Path, drifted: list[str]
) -> tuple[str | None, list[Path]]:
    """Why retrain now (None: not now), and the earlier files waiting to be trained on."""
    if policy.retrain == "never":
        return None, []
    waiting = _waiting(repo, policy, file.parent)
    if drifted:
        return f"drift in {', '.join(drifted)}", waiting
    if policy.retrain == "always":
        return "policy: retrain on every file", waiting
    if policy.every and len(waiting) + 1 >= policy.every:
        return f"policy: every {policy.every} files", waiting
    if policy.max_age_days:
        age = (utcnow() - champion.version["created_at"]).total_seconds() / 86400
        if age >= policy.max_age_days:
            return f"policy: champion is {age:.0f} days old (max {policy.max_age_days})", waiting
    return None, []


def _why_not(policy: Policy) -> str:
    if policy.retrain == "never":
        return "policy is never"
    return "no drift" + (f", and fewer than {policy.every} files waiting" if policy.every else "")


def _waiting(repo: Repo, policy: Policy, folder: Path) -> list[Path]:
    """Files processed earlier without retraining (and no error), still there unchanged."""
    entries = _processed(repo, policy)
    used = {name for e in entries for name in e.get("trained_with", [])}
    out = []
    for entry in entries:
        path = folder / entry["file"]
        if "run" in entry or "error" in entry or entry["file"] in used or not path.is_file():
            continue
        if md5_of(path) == entry["md5"]:
            out.append(path)
    return out


def _drift(
    repo: Repo, policy: Policy, file: Path, frame: Any, outcome: Outcome, *,
    champion: Resolved, echo: Callable[[str], None],
) -> list[str]:  # fmt: skip

    reference = resolve_reference(repo, champion)
    columns = reference.features or [c for c in frame.columns if c != policy.target]
    current = frame[[c for c in columns if c in frame.columns]]
    report = drift.compare(repo, reference, current, file.name, drift.Settings.from_config(
        repo, None, None))  # fmt: skip
    toml, detail = save_drift(repo, report)
    summary = f"drift in {', '.join(report.drifted)}" if report.drifted else "no drift"
    git.commit(repo.root, [repo.relpath(toml), repo.relpath(detail)],
               f"watch: drift check of {file.name}: {summary}")  # fmt: skip
    outcome.steps.append(f"drift check: {summary}")
    echo(f"{file.name}: {summary} ({len(report.features)} features checked)")
    return report.drifted


def _retrain(
    repo: Repo, policy: Policy, champion: Champion, file: Path, why: str, *,
    echo: Callable[[str], None],
) -> str:  # fmt: skip

    record = champion.record
    echo(f"{file.name}: retraining with `{' '.join(record['command'])}`")
    champion_label = f"{policy.ref}=v{champion.resolved.number}"
    rec, code = run_command(
        repo, record["command"], name=f"watch: retrain on {file.name}",
        params=record.get("params", {}),
        tags={"gitml.watch.file": file.name, "gitml.watch.champion": champion_label},
        cwd=repo.root / record.get("cwd", "."),
    )  # fmt: skip
    if code != 0:
        failure = f"retraining failed: `{' '.join(record['command'])}` exited {code}"
        git.commit(
            repo.root, [repo.relpath(repo.run_dir(rec["id"]))], f"watch: {failure} on {file.name}"
        )  # the failed run's record is kept
        raise CommandError(failure)
    paths = [repo.relpath(repo.run_dir(rec["id"])), repo.tracking_setting("summary_file")]
    for section in (rec.get("inputs", {}), rec.get("outputs", {})):
        paths += [f"{p}.dvc" for p in section if (repo.root / f"{p}.dvc").is_file()]
    git.commit(repo.root, sorted(set(paths)), f"watch: retrain on {file.name} ({why})")
    return str(rec["id"])


def _register_and_decide(
    repo: Repo, policy: Policy, outcome: Outcome, holdout: Any, file: Path, *,
    champion: Resolved, echo: Callable[[str], None],
) -> None:  # fmt: skip
    assert outcome.run is not None
    about = f"challenger trained by gitml watch on {file.name}"
    version = registry.register(repo, outcome.run, policy.model, description=about)
    outcome.challenger = int(version["version"])
    outcome.steps.append(f"registered v{outcome.challenger}")
    champion_value, challenger_value, goal, rows = _score(repo, policy, champion, outcome, holdout)
    gain = challenger_value - champion_value if goal == "maximize" else (
        champion_value - challenger_value)  # fmt: skip
    verdict = (f"{policy.metric} {challenger_value:.4f} vs champion {champion_value:.4f} "
               f"({gain:+.4f}, margin {policy.margin:g}) on {rows} holdout rows "
               f"of {file.name}")  # fmt: skip
    if gain > policy.margin:
        registry.promote(repo, policy.model, str(outcome.challenger), policy.alias,
                         reason=f"gitml watch: {verdict}")  # fmt: skip
        outcome.promoted = True
        outcome.steps.append(f"promoted v{outcome.challenger}: {verdict}")
        echo(f"{file.name}: promoted {policy.model} v{outcome.challenger} to {policy.alias}: "
             f"{verdict}")  # fmt: skip
    else:
        outcome.steps.append(f"not promoted: {verdict}")
        echo(f"{file.name}: kept the champion; challenger v{outcome.challenger}: {verdict}")


def _score(repo: Repo, policy: Policy, resolved: Resolved, outcome: Outcome, holdout: Any) -> tuple:

    compute, goal = metric_function(policy.metric)
    champion = load(repo, resolved)
    challenger = load(repo, policy.ref.at(str(outcome.challenger)))
    target = policy.target or target_column(holdout, champion.inputs.columns)
    values = []
    for loaded in (champion, challenger):
        columns = loaded.inputs.columns or [c for c in holdout.columns if c != target]
        frame = loaded.inputs.frame(holdout[columns].to_dict("records"), "holdout")
        values.append(float(compute(holdout[target], predict(loaded, frame)["predictions"])))
    return values[0], values[1], goal, len(holdout)


def _log_path(repo: Repo, policy: Policy) -> Path:

    return repo.gitml_dir / MONITOR_DIR / policy.model / "watch.toml"


def _processed(repo: Repo, policy: Policy) -> list[dict[str, Any]]:
    """The outcomes kept in `.gitml/monitor/<name>/watch.toml`, oldest first."""
    path = _log_path(repo, policy)
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = store.parse_toml(path.read_bytes(), source=str(path)).get(
        "processed", [])  # fmt: skip
    return entries


def _record(repo: Repo, policy: Policy, outcome: Outcome) -> None:
    """Append the outcome to `.gitml/monitor/<name>/watch.toml` and commit it."""
    path = _log_path(repo, policy)
    entry = {k: v for k, v in vars(outcome).items() if v not in (None, [])}
    entry["at"] = store.utcnow()
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, store.dumps_toml({"processed": [*_processed(repo, policy), entry]}))
    status = ("failed: " + (outcome.error or "")) if outcome.error else (
        outcome.steps[-1] if outcome.steps else "done")  # fmt: skip
    try:
        git.commit(repo.root, [repo.relpath(path)], f"watch: {outcome.file}: {status}"[:200])
    except GitmlError as exc:
        log.warning("gitml watch: could not commit %s: %s", path, exc)


def pending(repo: Repo, policy: Policy, folder: Path) -> list[Path]:
    """Data files in ``folder`` not processed yet (by name and md5)."""
    done = {(e["file"], e["md5"]) for e in _processed(repo, policy)}
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    return [p for p in files if (p.name, md5_of(p)) not in done]


def watch(repo: Repo, policy: Policy, folder: Path, *, once: bool,
          echo: Callable[[str], None]) -> list[Outcome]:  # fmt: skip
    """Process what is in ``folder``; unless ``once``, then wait for new files until stopped."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    if not folder.is_dir():
        raise UsageError("dir", f"{folder}: no such folder")
    outcomes = [process(repo, policy, f, echo) for f in pending(repo, policy, folder)]
    if once:
        return outcomes
    arrived: queue.Queue[Path] = queue.Queue()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            if event.event_type in ("created", "moved", "closed"):
                path = Path(getattr(event, "dest_path", "") or event.src_path)
                if path.suffix.lower() in SUFFIXES:
                    arrived.put(path)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # so a file being processed is put back in order

    signal.signal(signal.SIGTERM, stop)
    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=False)
    observer.start()
    echo(f"watching {folder} for new data (Ctrl-C or SIGTERM to stop)")
    try:
        while True:
            try:
                arrived.get(timeout=1.0)
            except queue.Empty:
                continue
            time.sleep(STABLE_SECONDS)  # let a file being copied in finish
            for file in pending(repo, policy, folder):
                outcomes.append(process(repo, policy, file, echo))
    except KeyboardInterrupt:
        echo("stopped")
        return outcomes
    finally:
        observer.stop()
        observer.join(timeout=5)
