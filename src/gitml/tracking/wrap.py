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
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gitml import store
from gitml.errors import CommandError, FileFormatError, UsageError
from gitml.repo import Repo
from gitml.tracking import record
from gitml.tracking.env import package_versions, python_env, script_imports
from gitml.tracking.run import RUN_ID_ENV

PARAMS_FILE_ENV = "GITML_PARAMS_FILE"
PARAM_ENV_PREFIX = "GITML_PARAM_"


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


def run_command(
    repo: Repo,
    command: Sequence[str],
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> tuple[dict[str, Any], int]:
    """Run ``command`` as a tracked run; returns the final record and the command's exit code."""
    if not command:
        raise UsageError("command", "nothing to run; put the command after `--`")
    cwd = (cwd or Path.cwd()).resolve()
    rec = record.create(repo, name=name, params=params, tags=tags, command=list(command), cwd=cwd)
    run_id = rec["id"]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="gitml-params-") as tmp:
        # The command gets the real values: only the files are redacted.
        real = record.normalize_params(params or {})
        env = _child_env(repo, run_id, real, Path(tmp) / "params.json")
        try:
            code = _execute(command, cwd=cwd, env=env)
        except KeyboardInterrupt:
            _finish(repo, run_id, command, cwd, started, exit_code=130)
            raise
        except OSError as exc:
            _finish(repo, run_id, command, cwd, started, exit_code=127, error=str(exc))
            raise CommandError(f"{command[0]}: cannot run the command: {exc.strerror}") from exc
    return _finish(repo, run_id, command, cwd, started, exit_code=code), code


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
    started: float,
    *,
    exit_code: int,
    error: str | None = None,
) -> dict[str, Any]:
    captured = _captured_metrics(repo, cwd, started)
    inputs, outputs = _pipeline_artifacts(repo, started)
    env = python_env([])
    env["packages"] = package_versions(_command_imports(command, cwd))

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
        if exit_code != 0:
            rec["error"] = error or f"command exited with code {exit_code}"

    status = "finished" if exit_code == 0 else "failed"
    return record.finalize(repo, run_id, status=status, extra=extra)


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
    found: dict[str, float] = {}
    for name in repo.tracking_setting("capture_files"):
        path = cwd / name
        try:
            if path.stat().st_mtime < started:
                continue  # not written by this run
        except OSError:
            continue
        found.update(read_metrics_file(path))
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
