"""run.toml records: create one, update it under a lock, finalise it when the run ends."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from gitml import git, store
from gitml.errors import GitmlError, UsageError
from gitml.records import RunRecord, normalize_params
from gitml.repo import OWN_PATHS, Repo, summary_rule
from gitml.secrets import redact as redact_values
from gitml.secrets import redact_argv
from gitml.tracking import journal
from gitml.tracking.env import process_info

RUN_FILE = "run.toml"
PATCH_FILE = "code.patch"
FINAL_STATUSES = ("finished", "failed", "crashed", "interrupted")


def new_run_id() -> str:
    """A run id that sorts by start time and does not collide: 20261123T085012Z-3fa9c1."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def create(
    repo: Repo,
    *,
    name: str | None,
    params: Mapping[str, Any] | None,
    tags: Mapping[str, Any] | None,
    command: list[str],
    cwd: Path,
) -> dict[str, Any]:
    """Make the run folder and write its first run.toml (status running, code state recorded).

    The folder is filled under `.gitml/cache/` and renamed into `runs/` with its run.toml, so
    a process killed on the way (recording the code state can take a while) leaves no empty
    run folder behind, only a stray folder in the cache.
    """
    record: dict[str, Any] = {
        "schema_version": store.SCHEMA_VERSION,
        "id": "",
        "name": name,
        "status": "running",
        "start_time": store.utcnow(),
        "command": redact_argv(list(command)),
        "cwd": _relative_cwd(repo, cwd),
        "process": process_info(),
        "params": redact(normalize_params(params or {}), repo.tracking_setting("allow_params")),
        "metrics": {},
        "tags": redact(normalize_tags(tags or {}), repo.tracking_setting("allow_params")),
        "inputs": {},
        "outputs": {},
    }
    if name is not None and not isinstance(name, str):
        raise UsageError("name", f"run name must be a string, got {name!r}")
    staging = repo.cache_dir / f"new-run-{secrets.token_hex(8)}"
    staging.mkdir(parents=True)  # with the umask's mode, as the run folder should have
    state = git.code_state(repo.root, exclude=(*OWN_PATHS, repo.tracking_setting("summary_file")))
    code: dict[str, Any] = {"commit": state.commit, "branch": state.branch, "dirty": state.dirty}
    if state.patch:
        store.atomic_write(staging / PATCH_FILE, state.patch)
        code["patch"] = PATCH_FILE
        code["patch_sha256"] = hashlib.sha256(state.patch).hexdigest()
        if state.untracked:
            code["untracked"] = list(state.untracked)
    record["code"] = code
    _move_into_runs(repo, staging, record)
    return record


def _move_into_runs(repo: Repo, staging: Path, record: dict[str, Any]) -> None:
    """Give the record a new id, write it, and rename the folder to `runs/<id>` in one step."""
    repo.runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        record["id"] = new_run_id()
        run_dir = repo.run_dir(record["id"])
        if run_dir.exists():
            continue
        store.write_toml(staging / RUN_FILE, record, kind="run")
        try:
            os.rename(staging, run_dir)  # an empty folder of the same name would be replaced
        except OSError:  # taken meanwhile (not empty): draw another id
            continue
        return


def _relative_cwd(repo: Repo, cwd: Path) -> str:
    try:
        return cwd.resolve().relative_to(repo.root).as_posix()
    except ValueError:
        return "."


def read(repo: Repo, run_id: str) -> RunRecord:
    """The validated run.toml of one run in the working tree."""
    return cast(RunRecord, store.read_toml(repo.run_dir(run_id) / RUN_FILE, kind="run"))


def update(repo: Repo, run_id: str, change: Callable[[dict[str, Any]], None]) -> RunRecord:
    """Read-modify-write run.toml under the run's lock, so processes sharing a run never clash."""
    path = repo.run_dir(run_id) / RUN_FILE
    with store.locked(repo.cache_dir / "locks" / f"{run_id}.lock"):
        record = store.read_toml(path, kind="run")
        change(record)
        store.write_toml(path, record, kind="run")  # validated against its schema
    return cast(RunRecord, record)


def redact(params: dict[str, Any], allowed: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Params or tags that look like secrets as <redacted> (the rules: `gitml.secrets`).

    By name (token, password, key...) or by value (a cloud key, a forge token, a private
    key...). A secret in a run.toml would be committed and pushed with it. Names listed in
    `[tracking] allow_params` keep their values unless the value itself has a credential's
    shape; the command still gets the real values (its params file and environment are never
    written to the repository).
    """
    return redact_values(params, allowed)


def normalize_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags are string to string."""
    for key in tags:
        if not isinstance(key, str) or not key:
            raise UsageError(f"tag {key!r}", "tag names are non-empty strings")
    return {k: v if isinstance(v, str) else str(v) for k, v in tags.items()}


def finalize(
    repo: Repo,
    run_id: str,
    *,
    status: str,
    end_time: Any = None,
    extra: Callable[[dict[str, Any]], None] | None = None,
) -> RunRecord:
    """End a run: journals become metrics.parquet, run.toml gets status and final metrics.

    Order matters for crash safety: the Parquet file is written (atomically) before run.toml
    says the run ended, and the journals are removed only after that.
    """
    run_dir = repo.run_dir(run_id)
    live = journal.journals(run_dir)
    rows = [row for path in live for row in journal.read_journal(path)]
    parquet = run_dir / journal.PARQUET_NAME
    if rows:
        if parquet.exists():
            rows += journal.read_parquet(parquet).rows
        journal.write_parquet(parquet, _dedupe(rows), run_id=run_id)

    def change(record: dict[str, Any]) -> None:
        record["status"] = status
        record["end_time"] = end_time or store.utcnow()
        record["metrics"] = {**record.get("metrics", {}), **journal.latest_values(rows)}
        if extra is not None:
            extra(record)

    record = update(repo, run_id, change)
    for path in live:
        with suppress(FileNotFoundError):
            path.unlink()
    if status == "finished" and shown_in_summary(repo, record):
        write_summary(repo, record)
    return record


def shown_in_summary(repo: Repo, record: Mapping[str, Any]) -> bool:
    """Whether a finished run should replace the one metrics.toml shows now.

    With `[tracking] summary_run`, only runs of that name are shown. Else, with a
    `[registry] metric`, the better run by it (`repo.summary_rule`) stays shown: a throwaway
    run does not change what a pull request reviews. Else the newest finished run.
    """
    wanted = repo.tracking_setting("summary_run")
    if wanted and record.get("name") != wanted:
        return False
    rule = summary_rule(repo)
    if rule is None:
        return True
    try:
        current = store.read_toml(repo.root / repo.tracking_setting("summary_file"))
    except GitmlError:
        return True
    old = current.get("metrics", {}).get(rule.metric)
    new = record.get("metrics", {}).get(rule.metric)
    if not isinstance(old, int | float) or current.get("run") == record.get("id"):
        return True
    return isinstance(new, int | float) and rule.prefers(new, old)


def _dedupe(rows: list[journal.Row]) -> list[journal.Row]:
    # A repair after a crash between writing Parquet and removing journals sees rows twice.
    return sorted(set(rows), key=lambda r: (r[3], r[0], r[1]))


def write_summary(repo: Repo, record: Mapping[str, Any]) -> None:
    """Refresh the stable-path summary (metrics.toml) from a finished run."""
    summary = {
        "schema_version": store.SCHEMA_VERSION,
        "run": record["id"],
        "name": record.get("name"),
        "status": record["status"],
        "metrics": dict(record.get("metrics", {})),
        "params": dict(record.get("params", {})),
    }
    path = store.safe_target(repo.root, repo.tracking_setting("summary_file"))
    store.write_toml(path, summary, kind="metrics-summary")


def mark_crashed(repo: Repo, run_id: str) -> RunRecord:
    """Close a run whose process died: keep every flushed metric, status crashed."""
    run_dir = repo.run_dir(run_id)
    stamps = [row[1] for path in journal.journals(run_dir) for row in journal.read_journal(path)]
    if stamps:
        end = dt.datetime.fromtimestamp(max(stamps) / 1000, dt.UTC)
    else:
        end = dt.datetime.fromtimestamp((run_dir / RUN_FILE).stat().st_mtime, dt.UTC)

    def extra(rec: dict[str, Any]) -> None:
        rec.setdefault("error", "the process ended without closing the run (killed or crashed)")

    return finalize(repo, run_id, status="crashed", end_time=end, extra=extra)
