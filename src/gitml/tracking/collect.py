"""What a command wrapped by `gitml run` read and wrote, recorded into its run.

Declared files (`-i/-o`), files found by watching the command (`tracking.detect`), the stages
of a `dvc.lock` it rewrote, and the metrics files it wrote: each is hashed into the DVC cache and
recorded under the run's `[inputs]`/`[outputs]` (or its metrics).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import git, logs, store
from gitml.data.add import add_to_cache, ignore_file, track
from gitml.data.content import content_fields
from gitml.data.pipeline import (
    declared_metrics,
    load_yaml,
    lock_data_artifacts,
    lock_params,
    numeric_leaves,
)
from gitml.errors import FileFormatError, GitmlError
from gitml.repo import Repo, ensure_line
from gitml.tracking import detect, record

log = logs.get(__name__)


@dataclass(frozen=True, kw_only=True)
class Files:
    """What the user declared about a command's files, and whether to look for the rest."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    detect: bool = True


NO_FILES = Files()  # nothing declared, detection on


@dataclass(frozen=True)
class Watched:
    """What `_finish` needs to find the command's files: the tree before, the reads noted."""

    before: detect.Listing
    reads_file: Path | None
    files: Files
    env_vars: dict[str, str]


def command_files(
    repo: Repo, run_id: str, command: Sequence[str], cwd: Path, watched: Watched
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """Inputs and outputs declared and found, recorded; and the declared outputs missing.

    Files the script logged itself through the API (`log_input`, `log_model`) keep what it
    recorded (a profile, a model format): they are not recorded again.
    """
    root = repo.root
    logged = record.read(repo, run_id)
    known = {*logged.get("inputs", {}), *logged.get("outputs", {})}
    declared_out = [p for p in watched.files.outputs]
    missing = [p for p in declared_out if not (root / p).exists()]
    declared_out = [p for p in declared_out if p not in missing]
    wanted_in = [*watched.files.inputs, *detect.configured_inputs(root, repo.tracking_setting(
        "inputs"))]  # fmt: skip
    found_out: tuple[str, ...] = ()
    if watched.reads_file is not None:
        skip = [repo_rel(repo, cwd / n) for n in repo.tracking_setting("capture_files")]
        skip.append(repo.tracking_setting("summary_file"))
        found = detect.find(
            root,
            before=watched.before,
            after=detect.list_tree(root),
            reads=detect.read_paths(watched.reads_file),
            skip=[*(s for s in skip if s), *known],
        )
        wanted_in += [*detect.argument_files(root, command, cwd), *found.inputs]
        found_out = found.outputs
    outputs: dict[str, dict[str, Any]] = {}
    for rel in declared_out:
        if rel not in known:
            outputs[rel] = _record_file(repo, rel, run_id, output=True)
    for rel in found_out:
        if rel not in outputs and not any(rel.startswith(d.rstrip("/") + "/") for d in outputs):
            ref = _record_file(repo, rel, run_id, output=True)
            outputs[rel] = {**ref, "detected": "written"} if ref else ref
    inputs: dict[str, dict[str, Any]] = {}
    declared_in = set(watched.files.inputs)
    for rel in dict.fromkeys(wanted_in):
        if rel in outputs or rel in known or not (root / rel).exists():
            continue
        ref = _record_file(repo, rel, run_id, output=False)
        inputs[rel] = ref if rel in declared_in or not ref else {**ref, "detected": "read"}
    recorded = {k: v for k, v in inputs.items() if v}, {k: v for k, v in outputs.items() if v}
    if recorded[1]:  # projects set up before output pointers were merged by meaning
        ensure_line(root / ".gitattributes", "*.dvc merge=gitml")
    return *recorded, missing


def repo_rel(repo: Repo, path: Path) -> str | None:
    """``path`` relative to the repository root (links resolved), or None if outside it."""
    try:
        return path.resolve().relative_to(repo.root.resolve()).as_posix()
    except ValueError:
        return None


def _record_file(repo: Repo, rel: str, run_id: str, *, output: bool) -> dict[str, Any]:
    """Hash and cache one file; an output or a data-sized input also gets a pointer.

    A file git tracks stays git's. A new output gets a DVC pointer naming this run and a
    .gitignore entry, so `git add -A` commits the pointer, never the bytes; an input does when
    it is binary or large (a small text input, like a config, stays for git).
    """
    path = repo.root / rel
    try:
        if path.is_dir():
            ref = track(repo.root, path).to_dict()
        elif git.is_tracked(repo.root, rel) or (git.is_ignored(repo.root, rel) and not output):
            ref = add_to_cache(repo.root, path).to_dict()
        elif output or not git.is_code_sized(path):
            ref = track(repo.root, path, run_id=run_id if output else None).to_dict()
        else:
            ref = add_to_cache(repo.root, path).to_dict()
    except GitmlError as exc:
        log.warning("gitml: %s: not recorded: %s", rel, exc)
        return {}
    return {**ref, **content_fields(path)}


@dataclass
class PipelineRun:
    """What a `dvc repro` ran: its stages' deps and outs, the params it used, its metrics."""

    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def pipeline_run(repo: Repo, started: float) -> PipelineRun:
    """What a command that rewrote `dvc.lock` (`dvc repro`) ran, from the lock read once.

    The lock's deps, outs and params, and the metrics files `dvc.yaml` declares that the
    command wrote; nothing when the lock is as it was.
    """
    lock = repo.root / "dvc.lock"
    try:
        if lock.stat().st_mtime < started:
            return PipelineRun()
        data = load_yaml(lock.read_text(), str(lock))  # read once: artifacts and params
    except OSError:
        return PipelineRun()
    inputs, outputs = lock_data_artifacts(data, str(lock))
    for rel, ref in inputs.items():
        file = repo.root / rel
        if file.is_file() and not ref["md5"].endswith(".dir"):
            add_to_cache(repo.root, file)  # raw inputs must be restorable by hash
    metrics: dict[str, float] = {}
    for written in declared_metrics(repo.root):
        try:
            if written.stat().st_mtime < started:
                continue
        except OSError:
            continue
        metrics.update(read_metrics_file(written))
    return PipelineRun(inputs, outputs, lock_params(data), metrics)


def captured_metrics(repo: Repo, cwd: Path, started: float) -> dict[str, float]:
    """The metrics files the command wrote, read; each is git-ignored unless git tracks it.

    Their values live in run.toml and metrics.toml: committed as well, the file itself would
    conflict on every merge of two branches that each trained.
    """
    found: dict[str, float] = {}
    for name in repo.tracking_setting("capture_files"):
        path = cwd / name
        try:
            if path.stat().st_mtime < started:
                continue  # not written by this run
        except OSError:
            continue
        found.update(read_metrics_file(path))
        rel = repo_rel(repo, path)
        if (
            rel
            and rel != repo.tracking_setting("summary_file")
            and not git.is_tracked(repo.root, rel)
        ):
            ignore_file(path)
    return found


def read_metrics_file(path: Path) -> dict[str, float]:
    """Numeric leaves of a JSON, YAML or TOML metrics file, nested keys joined with dots."""
    raw = path.read_bytes()
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise FileFormatError(str(path), f"invalid JSON: {exc}") from exc
    elif path.suffix in (".yaml", ".yml"):  # DVC's metrics files may be YAML
        data = load_yaml(raw.decode(errors="replace"), str(path))
    else:
        data = store.parse_toml(raw, source=str(path))
        if "schema_version" in data and isinstance(data.get("metrics"), dict):
            data = data["metrics"]  # gitml's own summary format
    if not isinstance(data, dict):
        raise FileFormatError(str(path), "expected an object of metric names to numbers")
    return numeric_leaves(data)
