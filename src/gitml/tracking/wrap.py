"""`gitml run -- <command>`: track any script as a run.

What the command read and wrote is recorded by `tracking.collect`. The wrapped command gets
its params three ways: ``GITML_PARAM_<NAME>`` environment variables, a
JSON params file named by ``GITML_PARAMS_FILE``, and `gitml.params()`. A script that uses the
tracking API joins the same run (``GITML_RUN_ID``); one that writes `metrics.json` or
`metrics.toml` has those values captured as the run's final metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from gitml import logs
from gitml.errors import CommandError, FileFormatError, UsageError
from gitml.records import RunRecord
from gitml.repo import Repo
from gitml.secrets import redact
from gitml.tracking import detect, record
from gitml.tracking.collect import (
    NO_FILES,
    Files,
    Watched,
    captured_metrics,
    command_files,
    pipeline_run,
)
from gitml.tracking.env import package_versions, python_env, script_imports
from gitml.tracking.run import RUN_ID_ENV

log = logs.get(__name__)

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
        out[key] = toml_literal(text.strip()) if typed else text
    return out


def toml_literal(text: str) -> Any:
    """``text`` as a TOML literal (``0.1``, ``5``, ``true``, ``\"rf\"``); a bare word is text."""
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


def run_command(
    repo: Repo,
    command: Sequence[str],
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    files: Files = NO_FILES,
    env_vars: Mapping[str, str] | None = None,
    autolog: bool = False,
    reproducing: bool = False,
) -> tuple[RunRecord, int]:
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


def _note_uncommitted(repo: Repo, rec: dict[str, Any], command: Sequence[str], cwd: Path) -> None:
    captured = set(rec.get("code", {}).get("untracked", []))
    for arg in command:
        with suppress(ValueError, OSError):
            rel = (cwd / arg).resolve().relative_to(repo.root.resolve()).as_posix()
            if rel in captured:
                log.warning(
                    "gitml: %s is not in git; captured in the run's code patch "
                    "(commit it to keep it)",
                    rel,
                )


def _recorded_vars(repo: Repo, env: Mapping[str, str]) -> dict[str, str]:
    """Every GITML_* the user set and the `[tracking] env_vars` the command runs with."""
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
) -> RunRecord:
    captured = captured_metrics(repo, cwd, started)
    pipeline = pipeline_run(repo, started)  # a `dvc repro`: dvc.lock, dvc.yaml
    inputs, outputs = pipeline.inputs, pipeline.outputs
    missing: list[str] = []
    if exit_code == 0:
        found_in, found_out, missing = command_files(repo, run_id, command, cwd, watched)
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
        rec["metrics"].update({**pipeline.metrics, **captured})
        if pipeline.params:  # what `-p` or the script set wins over what dvc.lock says
            rec["params"] = {**record.normalize_params(pipeline.params), **rec.get("params", {})}
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


def _command_imports(command: Sequence[str], cwd: Path) -> set[str]:
    scripts = [cwd / arg for arg in command if arg.endswith(".py")]
    return set().union(*(script_imports(s) for s in scripts)) if scripts else set()
