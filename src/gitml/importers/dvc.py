"""`gitml import dvc`: DVC experiments and DVCLive outputs become gitml runs.

Experiments are read from their commits under `refs/exps/` with pygit2 (nothing checked out,
DVC not imported): each becomes a run with the params of `params.yaml` (and DVCLive's
`params.yaml`), the final metrics of DVCLive's `metrics.json` and of every metrics file
`dvc.yaml` declares, every step of DVCLive's `plots/metrics/**/*.tsv`, the deps and outs its
`dvc.lock` records (as inputs and outputs, with their md5s, `.dir` ones included), and tags
naming the experiment, its commit and its baseline. The baseline commit is the run's code
commit. One naming scheme: nested metrics join with dots, as `dvc metrics show` and
`dvc exp show` name them (DVCLive's `eval/acc` is `eval.acc`, final value and steps alike).
A DVCLive folder in the working tree (`--dvclive`) becomes one run the same way. A run's id
is the experiment commit's time plus its first six hex digits, so importing again adds
nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import git, logs, store
from gitml.data.pipeline import metrics_names, numeric_leaves, parse_lock
from gitml.errors import GitError, GitmlError, UsageError
from gitml.importers import Summary, staged_run
from gitml.records import normalize_params
from gitml.repo import Repo
from gitml.tracking import journal

log = logs.get(__name__)

EXPS = "refs/exps/"


def import_experiments(
    repo: Repo, *, dvclive: str = "dvclive", workspace: Path | None = None,
    echo: Callable[[str], None] = log,
) -> Summary:  # fmt: skip
    """Import every experiment under `refs/exps/`, and a working-tree DVCLive folder."""
    summary = Summary()
    refs = {n: c for n, c in git.refs_under(repo.root, EXPS).items()
            if not n.startswith(f"{EXPS}exec/") and n.count("/") >= 4}  # fmt: skip
    info = git.commit_info(repo.root, set(refs.values()))
    for name, commit in sorted(refs.items(), key=lambda item: info[item[1]][0]):
        summary.experiments += 1
        parts = name.split("/")  # refs/exps/<sha[:2]>/<sha[2:]>/<name>
        baseline = parts[-3] + parts[-2]
        when = dt.datetime.fromtimestamp(info[commit][0], tz=dt.UTC)
        run_id = f"{when.strftime('%Y%m%dT%H%M%SZ')}-{commit[:6]}"
        if (repo.run_dir(run_id) / "run.toml").is_file():
            summary.skipped += 1
            continue

        def read(path: str, rev: str = commit) -> str | None:
            try:
                return git.read_file_at(repo.root, rev, path).decode()
            except GitError:
                return None

        files = git.files_under(repo.root, commit, f"{dvclive}/plots/metrics")
        steps = _steps(files, read, prefix=f"{dvclive}/plots/metrics/", default_ms=when)
        tags = {"dvc.experiment": name.rsplit("/", 1)[-1], "dvc.exp_rev": commit,
                "dvc.baseline": baseline}  # fmt: skip
        declared = _declared_metrics(read("dvc.yaml"))
        metrics = [read(path) for path in dict.fromkeys([f"{dvclive}/metrics.json", *declared])]
        locked = _lock_files(read("dvc.lock"), f"{commit[:12]}:dvc.lock")
        _write(repo, run_id, _Found(
            tags["dvc.experiment"], when, (read("params.yaml"), read(f"{dvclive}/params.yaml")),
            tuple(metrics), steps, tags, {"commit": baseline, "dirty": False}, locked,
        ))  # fmt: skip
        summary.runs += 1
        summary.steps += len(steps)
    if workspace is not None:
        _import_folder(repo, workspace, summary)
    return summary


def _import_folder(repo: Repo, folder: Path, summary: Summary) -> None:
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        raise UsageError("--dvclive", f"{folder}: no metrics.json (not a DVCLive folder)")
    when = dt.datetime.fromtimestamp(metrics.stat().st_mtime, tz=dt.UTC)
    digest = hashlib.md5(metrics.read_bytes()).hexdigest()[:6]
    run_id = f"{when.strftime('%Y%m%dT%H%M%SZ')}-{digest}"
    summary.experiments += 1
    if (repo.run_dir(run_id) / "run.toml").is_file():
        summary.skipped += 1
        return

    def read(path: str) -> str | None:
        file = repo.root / path
        return file.read_text() if file.is_file() else None

    plots = folder / "plots" / "metrics"
    files = sorted(repo.relpath(p) for p in plots.rglob("*.tsv")) if plots.is_dir() else []
    prefix = f"{repo.relpath(plots)}/"
    steps = _steps(files, read, prefix=prefix, default_ms=when)
    params = folder / "params.yaml"
    _write(repo, run_id, _Found(
        folder.name, when, (read("params.yaml"), params.read_text() if params.is_file() else None),
        (metrics.read_text(),), steps, {"dvclive.folder": repo.relpath(folder)}, None,
    ))  # fmt: skip
    summary.runs += 1
    summary.steps += len(steps)


def _steps(
    files: list[str], read: Callable[[str], str | None], *, prefix: str, default_ms: dt.datetime
) -> list[tuple[int, int, float, str]]:
    """DVCLive's per-metric TSVs as (step, timestamp ms, value, name) rows."""
    fallback = int(default_ms.timestamp() * 1000)
    rows: list[tuple[int, int, float, str]] = []
    for path in files:
        if not path.endswith(".tsv"):
            continue
        text = read(path) or ""
        lines = [line.split("\t") for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            continue
        header = lines[0]
        name = path.removeprefix(prefix).removesuffix(".tsv").replace("/", ".")  # as DVC shows
        value_at = len(header) - 1 - header[::-1].index(header[-1])
        for cells in lines[1:]:
            record = dict(zip(header, cells, strict=False))
            try:
                step = int(float(record.get("step", len(rows))))
                stamp = int(float(record["timestamp"])) if "timestamp" in record else fallback
                rows.append((step, stamp, float(cells[value_at]), name))
            except (ValueError, IndexError):
                continue
    return rows


@dataclass(frozen=True)
class _Found:
    """What one experiment (or DVCLive folder) holds."""

    name: str
    when: dt.datetime
    params: tuple[str | None, ...]  # params.yaml texts, later ones winning
    metrics: tuple[str | None, ...]  # metrics files (JSON or YAML), later ones winning
    steps: list[tuple[int, int, float, str]]
    tags: dict[str, str]
    code: dict[str, Any] | None
    files: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # dvc.lock's deps and outs


def _write(repo: Repo, run_id: str, found: _Found) -> None:

    name, when, steps, tags, code = found.name, found.when, found.steps, found.tags, found.code
    params: dict[str, Any] = {}
    for text in found.params:
        loaded = _yaml(text)
        if isinstance(loaded, dict):
            params.update(normalize_params(loaded))
    metrics: dict[str, float] = {}
    for text in found.metrics:
        loaded = _yaml(text)  # JSON is YAML: metrics files are either
        flat = numeric_leaves(loaded) if isinstance(loaded, dict) else {}  # dotted names
        metrics.update({k: v for k, v in flat.items() if k != "step"})
    record: dict[str, Any] = {
        "schema_version": 1, "id": run_id, "name": name[:250], "status": "finished",
        "start_time": when, "end_time": when, "params": params, "metrics": metrics,
        "tags": tags,
    }  # fmt: skip
    if code:
        record["code"] = code
    for kind, files in zip(("inputs", "outputs"), found.files, strict=True):
        if files:
            record[kind] = files
    run_dir = repo.run_dir(run_id)
    store.validate("run", record, source=str(run_dir / "run.toml"))  # before any file is made
    with staged_run(repo, run_id) as staging:  # the whole run or nothing
        if steps:
            journal.write_parquet(staging / journal.PARQUET_NAME, steps, run_id=run_id)
        store.write_toml(staging / "run.toml", record, kind="run")


def _declared_metrics(text: str | None) -> list[str]:
    """The metrics files a `dvc.yaml` text declares, relative paths inside the repository."""
    return [n for n in metrics_names(_yaml(text)) if not n.startswith(("/", ".."))]


def _lock_files(text: str | None, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`dvc.lock`'s deps (not made by another stage) and outs, as run inputs and outputs."""
    if not text:
        return {}, {}
    try:
        return parse_lock(text, source)
    except GitmlError as exc:
        log.warning("gitml: %s; the experiment is imported without its deps and outs", exc)
        return {}, {}


def _yaml(text: str | None) -> Any:
    if not text:
        return None
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe", pure=True).load(text)
    except Exception:
        return None
