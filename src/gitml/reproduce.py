"""`gitml reproduce <commit|run>`: re-run a recorded run from its exact code and data, and compare.

For each run: a temporary git worktree at the recorded code commit, the recorded patch applied,
the inputs restored by hash (from the DVC cache, else the remote, verified), the recorded command
re-run with the recorded params through the same wrapper as `gitml run`, then its metrics and
output hashes compared with the recorded ones. The worktree is removed afterwards, also on
failure and Ctrl-C, unless ``keep`` is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import __version__, git, logs, store
from gitml.data import ArtifactRef, cache_dir
from gitml.data.checkout import restore
from gitml.errors import AmbiguousRunError, GitmlError, RunNotFoundError
from gitml.query.api import collect, resolve
from gitml.query.indexed import IndexedRun, record_of
from gitml.records import RunRecord
from gitml.repo import Repo
from gitml.secrets import REDACTED
from gitml.tracking.comparison import (
    EXACT,
    Check,
    Tolerance,
    compare,
    compare_series,
    compared,
    metric_settings,
    series_of,
)
from gitml.tracking.wrap import run_command

log = logs.get(__name__)

REPRODUCED, DIFFERS, UNVERIFIED, FAILED = "reproduced", "differs", "not verified", "could not run"
EXIT_CODES = {REPRODUCED: 0, DIFFERS: 1, UNVERIFIED: 1, FAILED: 2}


@dataclass
class Reproduction:
    """The outcome for one run."""

    run_id: str
    name: str | None
    commit: str | None
    verdict: str = FAILED
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    worktree: Path | None = None
    new_run: str | None = None


class ReproduceError(GitmlError):
    """Something that stops one run from being re-run (missing data, bad patch...)."""


def targets(repo: Repo, ref: str) -> list[IndexedRun]:
    """The runs ``ref`` names: a run id (or unique prefix), else the runs landed in a commit."""
    try:
        return [resolve(repo, ref)]
    except RunNotFoundError:
        pass
    except AmbiguousRunError:
        if git.resolve_commit(repo.root, ref) is None:
            raise
    commit = git.resolve_commit(repo.root, ref)
    if commit is None:
        raise GitmlError(f"{ref!r}: neither a run id nor a commit; see `gitml runs` or `git log`")
    runs = collect(repo)
    by_commit: dict[str, list[IndexedRun]] = {}
    for r in runs:
        if r.landed:
            by_commit.setdefault(r.landed, []).append(r)
    # A commit that recorded no run (a registry commit, a code change) stands for the runs of
    # its nearest ancestor that did: what the tree at that commit was produced by.
    for ancestor in git.first_parents(repo.root, commit):
        if ancestor in by_commit:
            if ancestor != commit:
                log.warning(
                    "gitml: commit %s recorded no run; reproducing the runs of its ancestor %s",
                    commit[:12],
                    ancestor[:12],
                )
            return sorted(by_commit[ancestor], key=lambda r: r.run_id)
    raise GitmlError(f"commit {commit[:12]}: no run was recorded in this commit or before it")


def reproduce(
    repo: Repo,
    ref: str,
    *,
    tolerance: Tolerance = EXACT,
    keep: bool = False,
    echo: Callable[[str], None] = log,
) -> list[Reproduction]:
    """Reproduce every run ``ref`` names; see the module docstring."""
    git.require_full_history(repo.root, "gitml reproduce")
    results = []
    for run in targets(repo, ref):
        result = reproduce_run(repo, run, tolerance=tolerance, keep=keep, echo=echo)
        write_verdict(repo, result, tolerance)
        results.append(result)
    return results


REPRODUCTIONS = "reproductions"  # .gitml/reproductions/<run-id>.toml: the last verdict of each


def verdict_path(repo: Repo, run_id: str) -> Path:
    """Where the last `gitml reproduce` of ``run_id`` is recorded."""
    return repo.gitml_dir / REPRODUCTIONS / f"{run_id}.toml"


def write_verdict(repo: Repo, result: Reproduction, tolerance: Tolerance) -> None:
    """Record ``result`` as the run's last reproduction (a file to commit, like a run)."""
    counted = [c for c in result.checks if c.expected]
    doc = {"schema_version": 1, "run": result.run_id, "created_at": store.utcnow().isoformat(),
           "verdict": result.verdict, "reason": result.reason, "code_commit": result.commit,
           "tolerance": {"rtol": tolerance.rtol, "atol": tolerance.atol},
           "compared": len(counted), "differ": [c.name for c in counted if not c.ok],
           "gitml": __version__}  # fmt: skip
    path = verdict_path(repo, result.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_toml(path, doc, kind="reproduction")


def last_verdict(repo: Repo, run_id: str) -> dict[str, Any] | None:
    """The run's last recorded reproduction, or None (never reproduced, or unreadable)."""
    path = verdict_path(repo, run_id)
    if not path.is_file():
        return None
    try:
        return store.read_toml(path, kind="reproduction")
    except GitmlError as exc:
        log.warning("gitml: %s", exc)
        return None


def reproduce_run(
    repo: Repo,
    run: IndexedRun,
    *,
    tolerance: Tolerance,
    keep: bool,
    echo: Callable[[str], None],
) -> Reproduction:
    """Re-run one run in a temporary worktree and compare."""
    record = record_of(repo, run)
    commit = record.get("code", {}).get("commit")
    result = Reproduction(run.run_id, record.get("name"), commit)
    base = Path(tempfile.mkdtemp(prefix="gitml-reproduce-"))
    worktree = base / "tree"
    made = False
    try:
        commit = _check_runnable(record)
        echo(f"gitml: reproducing run {run.run_id} at {commit[:12]} in {worktree}")
        git.add_worktree(repo.root, worktree, commit)
        made = True
        _prepare(repo, run, record, worktree)
        new, code = _rerun(record, worktree)
        result.new_run = new["id"]
        if new["status"] == "interrupted":
            raise KeyboardInterrupt
        if code != 0:
            raise ReproduceError(
                f"the command {' '.join(record['command'])!r} failed with exit code {code}"
            )
        settings = metric_settings(repo, tolerance)
        result.checks = compare(record, new, settings)
        result.checks += compare_series(
            series_of(repo, run, record), series_of(Repo(worktree), None, new), settings
        )
        result.verdict, result.reason = _verdict(record, new, result.checks)
    except GitmlError as exc:
        result.verdict, result.reason = FAILED, str(exc)
    finally:
        if keep and made:
            result.worktree = worktree
        else:
            if made:
                git.remove_worktree(repo.root, worktree)
            shutil.rmtree(base, ignore_errors=True)
    return result


def _verdict(old: RunRecord, new: RunRecord, checks: list[Check]) -> tuple[str, str]:
    """The verdict and why; never "reproduced" on nothing, or on less than the run produced."""
    unrecorded = sorted(set(new.get("outputs", {})) - set(old.get("outputs", {})))
    counted = [c for c in checks if c.expected]
    if not counted and not unrecorded:  # all([]) is true: nothing compared is no verdict
        raise ReproduceError(
            "nothing to compare: the run recorded no metric and no output; log a metric "
            "or an output (`run.log_metric`, `gitml run -o PATH`) to make it checkable"
        )
    env = _env_note(old)
    if not all(c.ok for c in counted):
        return DIFFERS, env or (
            "(no environment variable was recorded: if the command reads some, list them "
            "in [tracking] env_vars to record and restore them)"
        )
    if unrecorded:
        shown = ", ".join(unrecorded[:3]) + (" ..." if len(unrecorded) > 3 else "")
        return UNVERIFIED, (
            f"the command wrote {shown}, which the recorded run did not record, so it "
            f"could not be compared; re-run it with `gitml run` (or `-o PATH`) to record it"
        )
    return REPRODUCED, env


def _env_note(record: RunRecord) -> str:
    restored = record.get("env", {}).get("vars", {})
    if not restored:
        return ""
    now = [k for k, v in sorted(restored.items()) if os.environ.get(k) != v and v != REDACTED]
    text = "ran with the recorded environment variables " + ", ".join(sorted(restored))
    return text + (f" ({', '.join(now)} set differently here)" if now else "")


def _check_runnable(record: RunRecord) -> str:
    """The commit to re-run at; why not, when the record cannot be re-run."""
    if not record.get("command"):
        raise ReproduceError(f"run {record['id']}: no command was recorded")
    if any(REDACTED in str(arg) for arg in record["command"]):
        raise ReproduceError(
            f"run {record['id']}: its command line held a secret, recorded as {REDACTED}; "
            "pass secrets through the environment so the command can be run again"
        )
    commit = record.get("code", {}).get("commit")
    if not commit:
        raise ReproduceError(
            f"run {record['id']}: started before the first commit; no code to check out"
        )
    return commit


def _prepare(repo: Repo, run: IndexedRun, record: RunRecord, worktree: Path) -> None:
    """Patch, gitml/DVC set-up sharing the main cache, inputs restored by hash."""
    patch = record["code"].get("patch")
    if patch:
        _apply_patch(repo, run, worktree, patch)
    gitml_config = worktree / ".gitml" / "config.toml"
    if not gitml_config.exists():
        gitml_config.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo.config_path, gitml_config)
    dvc_dir = worktree / ".dvc"
    if not (dvc_dir / "config").exists():
        dvc_dir.mkdir(exist_ok=True)
        shutil.copyfile(repo.root / ".dvc" / "config", dvc_dir / "config")
    # The worktree shares the repository's DVC cache: nothing is copied twice.
    (dvc_dir / "config.local").write_text(f"[cache]\n    dir = {cache_dir(repo.root)}\n")
    for path, ref in record.get("inputs", {}).items():
        try:
            dest = store.safe_target(worktree, path)
            restore(repo.root, ArtifactRef(md5=ref["md5"], size=ref["size"]), dest)
        except GitmlError as exc:
            raise ReproduceError(f"input {path}: {exc}") from exc


def _apply_patch(repo: Repo, run: IndexedRun, worktree: Path, patch: str) -> None:
    source = repo.run_dir(run.run_id) / patch
    if run.in_workdir and source.is_file():
        data = source.read_bytes()
    else:
        rel = source.relative_to(repo.root).as_posix()
        data = git.read_file_at(repo.root, run.commit or "HEAD", rel)
    patch_file = worktree.parent / "code.patch"
    patch_file.write_bytes(data)
    try:
        git.apply_patch(worktree, patch_file)
    except GitmlError as exc:
        raise ReproduceError(f"the recorded patch does not apply: {exc}") from exc


def _rerun(record: RunRecord, worktree: Path) -> tuple[RunRecord, int]:

    return run_command(
        Repo(worktree),
        record["command"],
        name=f"reproduce {record['id']}",
        params=record.get("params", {}),
        tags={"gitml.reproduces": record["id"]},
        cwd=worktree / record.get("cwd", "."),
        env_vars={k: v for k, v in record.get("env", {}).get("vars", {}).items() if v != REDACTED},
        reproducing=True,
    )


def render(results: list[Reproduction]) -> str:
    """A side-by-side table per run and a verdict line."""
    lines = []
    for r in results:
        head = f"run {r.run_id}" + (f" ({r.name})" if r.name else "")
        lines.append(f"{head} from code commit {(r.commit or '?')[:12]}: {r.verdict}")
        if r.reason:
            lines.append(f"  {r.reason}")
        if r.checks:
            rows = [("", "recorded", "reproduced", "", "")] + [
                (c.name, _fmt(c.recorded), _fmt(c.reproduced), _mark(c), c.note) for c in r.checks
            ]
            widths = [max(len(row[i]) for row in rows) for i in range(5)]
            lines += [
                "  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                for row in rows
            ]
            lines.append("  " + compared(r.checks))
        if r.worktree:
            lines.append(f"  worktree kept at {r.worktree}")
    return "\n".join(lines) + "\n"


def _mark(check: Check) -> str:
    if not check.expected:
        return "ignored"
    return "ok" if check.ok else "DIFFERS"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.10g}"
    text = str(value)
    return text[:12] if len(text) == 32 else text


def exit_code(results: list[Reproduction]) -> int:
    """2 if any run could not run, else 1 if any differs, else 0."""
    return max((EXIT_CODES[r.verdict] for r in results), default=2)
