"""`gitml run -- <command>`: track any script as a run.

The wrapped command gets its params three ways: ``GITML_PARAM_<NAME>`` environment variables, a
JSON params file named by ``GITML_PARAMS_FILE``, and `gitml.params()`. A script that uses the
tracking API joins the same run (``GITML_RUN_ID``); one that writes `metrics.json` or
`metrics.toml` has those values captured as the run's final metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import git, store
from gitml.errors import CommandError, FileFormatError, GitmlError, UsageError
from gitml.repo import Repo, ensure_line
from gitml.tracking import detect, record
from gitml.tracking.env import package_versions, python_env, script_imports
from gitml.tracking.run import RUN_ID_ENV

PARAMS_FILE_ENV = "GITML_PARAMS_FILE"
PARAM_ENV_PREFIX = "GITML_PARAM_"
AUTOLOG_ENV = "GITML_AUTOLOG"
INTERRUPTED_CODES = (130, -2)


def parse_assignments(items: Sequence[str], *, option: str, typed: bool = True) -> dict[str, Any]:
    """``["lr=0.1", "model=rf"]`` -> ``{"lr": 0.1, "model": "rf"}``.

    With ``typed``, values are read as TOML literals (``0.1``, ``5``, ``true``), else kept as text.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{option} {item!r}", "expected KEY=VALUE")
        out[key] = _literal(text.strip()) if typed else text
    return out


def _literal(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def params(defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The params of the run this script was started in by `gitml run`, over ``defaults``.

    Example:
        >>> p = gitml.params({"n_estimators": 100, "max_depth": 5})

    """
    merged = dict(defaults or {})
    path = os.environ.get(PARAMS_FILE_ENV)
    if path:
        try:
            merged.update(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise FileFormatError(path, f"cannot read the run's params file: {exc}") from exc
    return merged


@dataclass(frozen=True, kw_only=True)
class Files:
    """What the user declared about a command's files, and whether to look for the rest."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    detect: bool = True


def run_command(
    repo: Repo,
    command: Sequence[str],
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    files: Files = Files(),
    env_vars: Mapping[str, str] | None = None,
    autolog: bool = False,
    reproducing: bool = False,
) -> tuple[dict[str, Any], int]:
    """Run ``command`` as a tracked run; returns the final record and the command's exit code.

    ``files`` are repository paths. ``env_vars`` replace the recorded variables' values (what
    `gitml reproduce` restores); by default they are read from this process's environment.
    """
    if not command:
        raise UsageError("command", "nothing to run; put the command after `--`")
    cwd = (cwd or Path.cwd()).resolve()
    rec = record.create(repo, name=name, params=params, tags=tags, command=list(command), cwd=cwd)
    run_id = rec["id"]
    if not reproducing:  # a reproduction's worktree has the patch's new files untracked
        _note_uncommitted(repo, rec, command, cwd)
    detect_files = files.detect and bool(repo.tracking_setting("detect"))
    before = detect.list_tree(repo.root) if detect_files else {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="gitml-params-") as tmp:
        # The command gets the real values: only the files are redacted.
        real = record.normalize_params(params or {})
        env = _child_env(repo, run_id, real, Path(tmp) / "params.json")
        env.update(env_vars or {})
        reads_file = Path(tmp) / "reads"
        if detect_files or autolog:
            env = detect.child_env(env, reads_file if detect_files else None)
        if autolog:
            env[AUTOLOG_ENV] = "1"
        watched = Watched(before, reads_file if detect_files else None, files, _recorded_vars(
            repo, env))  # fmt: skip
        try:
            code = _execute(command, cwd=cwd, env=env)
        except KeyboardInterrupt:  # recorded as interrupted; the caller exits 130
            code = 130
        except OSError as exc:
            _finish(
                repo,
                run_id,
                command,
                cwd,
                started=started,
                watched=watched,
                exit_code=127,
                error=str(exc),
            )
            raise CommandError(f"{command[0]}: cannot run the command: {exc.strerror}") from exc
        return _finish(
            repo, run_id, command, cwd, started=started, watched=watched, exit_code=code
        ), code


@dataclass(frozen=True)
class Watched:
    """What `_finish` needs to find the command's files: the tree before, the reads noted."""

    before: detect.Listing
    reads_file: Path | None
    files: Files
    env_vars: dict[str, str]


def _note_uncommitted(repo: Repo, rec: dict[str, Any], command: Sequence[str], cwd: Path) -> None:
    captured = set(rec.get("code", {}).get("untracked", []))
    for arg in command:
        with suppress(ValueError, OSError):
            rel = (cwd / arg).resolve().relative_to(repo.root.resolve()).as_posix()
            if rel in captured:
                print(
                    f"gitml: {rel} is not in git; captured in the run's code patch "
                    "(commit it to keep it)",
                    file=sys.stderr,
                )


def _recorded_vars(repo: Repo, env: Mapping[str, str]) -> dict[str, str]:
    """Every GITML_* the user set and the `[tracking] env_vars` the command runs with."""
    from gitml.secrets import redact

    internal = {RUN_ID_ENV, PARAMS_FILE_ENV, "GITML_REPO", detect.READS_FILE_ENV, AUTOLOG_ENV}
    names = set(repo.tracking_setting("env_vars"))
    picked = {
        k: v
        for k, v in env.items()
        if (k in names or k.startswith("GITML_"))
        and k not in internal
        and not k.startswith(PARAM_ENV_PREFIX)
    }
    return dict(sorted(redact(picked, []).items()))


def _execute(command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> int:
    proc = subprocess.Popen(list(command), cwd=cwd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The child got the same SIGINT from the terminal; let it finish its own cleanup.
        proc.wait()
        raise


def _child_env(repo: Repo, run_id: str, values: Mapping[str, Any], path: Path) -> dict[str, str]:
    path.write_text(json.dumps(values, indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith(PARAM_ENV_PREFIX)}
    env[RUN_ID_ENV] = run_id
    env[PARAMS_FILE_ENV] = str(path)
    env["GITML_REPO"] = str(repo.root)
    for key, value in values.items():
        env[PARAM_ENV_PREFIX + re.sub(r"\W", "_", key).upper()] = _env_text(value)
    return env


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, list) else str(value)


def _finish(
    repo: Repo,
    run_id: str,
    command: Sequence[str],
    cwd: Path,
    *,
    started: float,
    watched: Watched,
    exit_code: int,
    error: str | None = None,
) -> dict[str, Any]:
    captured = _captured_metrics(repo, cwd, started)
    inputs, outputs = _pipeline_artifacts(repo, started)
    missing: list[str] = []
    if exit_code == 0:
        found_in, found_out, missing = _command_files(repo, run_id, command, cwd, watched)
        inputs = {**found_in, **inputs}
        outputs = {**found_out, **outputs}
    env = python_env([])
    env["packages"] = package_versions(_command_imports(command, cwd))
    if watched.env_vars:
        env["vars"] = watched.env_vars
    if missing:
        error = f"declared output {missing[0]} was not written" + (
            f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        )

    def extra(rec: dict[str, Any]) -> None:
        rec["metrics"].update(captured)
        rec.setdefault("inputs", {}).update(inputs)
        rec.setdefault("outputs", {}).update(outputs)
        rec["exit_code"] = exit_code
        old = rec.get("env", {})  # a script using the API recorded what it really imported
        packages = {**env["packages"], **old.get("packages", {})}
        rec["env"] = {
            **env,
            "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
        }
        if exit_code != 0 or error:
            rec["error"] = error or f"command exited with code {exit_code}"

    status = "finished" if exit_code == 0 and not missing else "failed"
    if exit_code in INTERRUPTED_CODES:  # Ctrl-C: the shell's 130, or killed by SIGINT
        status, error = "interrupted", "interrupted (Ctrl-C)"
    return record.finalize(repo, run_id, status=status, extra=extra)


def _command_files(
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
        skip = [_repo_rel(repo, cwd / n) for n in repo.tracking_setting("capture_files")]
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


def _repo_rel(repo: Repo, path: Path) -> str | None:
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
    from gitml.data.add import add_to_cache, track
    from gitml.data.content import content_md5

    path = repo.root / rel
    try:
        if path.is_dir():
            ref = track(repo.root, path).to_dict()
        elif git.is_tracked(repo.root, rel) or (git.is_ignored(repo.root, rel) and not output):
            ref = add_to_cache(repo.root, path).to_dict()
        elif output or not detect.code_sized(repo.root, rel):
            ref = track(repo.root, path, run_id=run_id if output else None).to_dict()
        else:
            ref = add_to_cache(repo.root, path).to_dict()
    except GitmlError as exc:
        print(f"gitml: {rel}: not recorded: {exc}", file=sys.stderr)
        return {}
    content = content_md5(path) if path.is_file() else None
    if content:
        ref["content_md5"] = content
    return ref


def _pipeline_artifacts(
    repo: Repo, started: float
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """A `dvc repro` (or any command that rewrote dvc.lock) records its stages' deps and outs."""
    from gitml.data.add import add_to_cache
    from gitml.data.pipeline import lock_artifacts

    lock = repo.root / "dvc.lock"
    try:
        if lock.stat().st_mtime < started:
            return {}, {}
    except OSError:
        return {}, {}
    inputs, outputs = lock_artifacts(repo.root)
    for path, ref in inputs.items():
        file = repo.root / path
        if file.is_file() and not ref["md5"].endswith(".dir"):
            add_to_cache(repo.root, file)  # raw inputs must be restorable by hash
    return inputs, outputs


def _command_imports(command: Sequence[str], cwd: Path) -> set[str]:
    scripts = [cwd / arg for arg in command if arg.endswith(".py")]
    return set().union(*(script_imports(s) for s in scripts)) if scripts else set()


def _captured_metrics(repo: Repo, cwd: Path, started: float) -> dict[str, float]:
    """The metrics files the command wrote, read; each is git-ignored unless git tracks it.

    Their values live in run.toml and metrics.toml: committed as well, the file itself would
    conflict on every merge of two branches that each trained.
    """
    from gitml.data.add import ignore_file

    found: dict[str, float] = {}
    for name in repo.tracking_setting("capture_files"):
        path = cwd / name
        try:
            if path.stat().st_mtime < started:
                continue  # not written by this run
        except OSError:
            continue
        found.update(read_metrics_file(path))
        rel = _repo_rel(repo, path)
        if (
            rel
            and rel != repo.tracking_setting("summary_file")
            and not git.is_tracked(repo.root, rel)
        ):
            ignore_file(path)
    return found


def read_metrics_file(path: Path) -> dict[str, float]:
    """Numeric leaves of a JSON or TOML metrics file, nested keys joined with dots."""
    raw = path.read_bytes()
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise FileFormatError(str(path), f"invalid JSON: {exc}") from exc
    else:
        data = store.parse_toml(raw, source=str(path))
        if "schema_version" in data and isinstance(data.get("metrics"), dict):
            data = data["metrics"]  # gitml's own summary format
    if not isinstance(data, dict):
        raise FileFormatError(str(path), "expected an object of metric names to numbers")
    return _numeric_leaves(data)


def _numeric_leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_numeric_leaves(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
