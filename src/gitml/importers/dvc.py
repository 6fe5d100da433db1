"""`gitml import dvc`: DVC experiments and DVCLive outputs become gitml runs.

Experiments are read from their commits under `refs/exps/` with pygit2 (nothing checked out,
DVC not imported): each becomes a run with the params of `params.yaml` (and DVCLive's
`params.yaml`), the final metrics of DVCLive's `metrics.json` and of every metrics file
`dvc.yaml` declares, every step of DVCLive's `plots/metrics/**/*.tsv` and of the other plots
`dvc.yaml` declares that have a `step` column (TSV, CSV or JSON), the deps and outs its
`dvc.lock` records (as inputs and outputs, with their md5s, `.dir` ones included), and tags
naming the experiment, its commit and its baseline. The baseline commit is the run's code
commit. One naming scheme: nested metrics join with dots, as `dvc metrics show` and
`dvc exp show` name them (DVCLive's `eval/acc` is `eval.acc`, final value and steps alike).
A DVCLive folder in the working tree (`--dvclive`) becomes one run the same way. A run's id
is the experiment commit's time plus its first six hex digits, so importing again adds
nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import git, logs, store
from gitml.data.pipeline import metrics_names, numeric_leaves, parse_lock, plots_names
from gitml.errors import GitError, GitmlError, UsageError
from gitml.importers import Summary, staged_run
from gitml.query.dvc_runs import experiment_refs, load_bounded
from gitml.records import normalize_params
from gitml.repo import Repo
from gitml.tracking import journal

log = logs.get(__name__)


def import_experiments(
    repo: Repo, *, dvclive: str = "dvclive", workspace: Path | None = None,
    echo: Callable[[str], None] = log,
) -> Summary:  # fmt: skip
    """Import every experiment under `refs/exps/`, and a working-tree DVCLive folder."""
    summary = Summary()
    refs = experiment_refs(repo.root)
    for found in sorted(refs.values(), key=lambda at: at.time):
        summary.experiments += 1
        commit, baseline, run_id = found.commit, found.baseline or "", found.run_id
        when = dt.datetime.fromtimestamp(found.time, tz=dt.UTC)
        if (repo.run_dir(run_id) / "run.toml").is_file():
            summary.skipped += 1
            continue

        def read(path: str, rev: str = commit) -> str | None:
            try:
                return git.read_file_at(repo.root, rev, path).decode()
            except GitError:
                return None

        live = f"{dvclive}/plots/metrics"
        files = git.files_under(repo.root, commit, live)
        steps = _steps(files, read, prefix=f"{live}/", default_ms=when)
        at = commit[:12]
        pipeline = _yaml(read("dvc.yaml"), f"{at}:dvc.yaml")
        for plot in plots_names(pipeline):  # dvc.yaml's other plots with a step column
            if plot.startswith(("/", "..")) or plot == live or plot.startswith(f"{live}/"):
                continue
            inside = git.files_under(repo.root, commit, plot)
            prefix = f"{plot}/" if inside else plot.rpartition("/")[0] + "/" * ("/" in plot)
            steps += _steps(inside or [plot], read, prefix=prefix, default_ms=when, need_step=True)
        tags = {"dvc.experiment": found.experiment or "", "dvc.exp_rev": commit,
                "dvc.baseline": baseline}  # fmt: skip
        declared = [n for n in metrics_names(pipeline) if not n.startswith(("/", ".."))]
        metrics = [(f"{at}:{path}", read(path))
                   for path in dict.fromkeys([f"{dvclive}/metrics.json", *declared])]  # fmt: skip
        locked = _lock_files(read("dvc.lock"), f"{commit[:12]}:dvc.lock")
        _write(repo, run_id, _Found(
            tags["dvc.experiment"], when,
            ((f"{at}:params.yaml", read("params.yaml")),
             (f"{at}:{dvclive}/params.yaml", read(f"{dvclive}/params.yaml"))),
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
    own = params.read_text() if params.is_file() else None
    _write(repo, run_id, _Found(
        folder.name, when, (("params.yaml", read("params.yaml")), (repo.relpath(params), own)),
        ((repo.relpath(metrics), metrics.read_text()),), steps,
        {"dvclive.folder": repo.relpath(folder)}, None,
    ))  # fmt: skip
    summary.runs += 1
    summary.steps += len(steps)


def _steps(
    files: list[str], read: Callable[[str], str | None], *, prefix: str, default_ms: dt.datetime,
    need_step: bool = False,
) -> list[tuple[int, int, float, str]]:  # fmt: skip
    """Per-metric TSV, CSV or JSON plots as (step, timestamp ms, value, name) rows.

    DVCLive's files are `step  timestamp  <value>`; another plot counts only with a ``step``
    column (``need_step``): a ROC curve or a confusion matrix is not a series of steps.
    """
    fallback = int(default_ms.timestamp() * 1000)
    rows: list[tuple[int, int, float, str]] = []
    for path in files:
        suffix = path.rpartition(".")[2]
        table = _table(read(path) or "", suffix, path)
        if not table or (need_step and "step" not in table[0]):
            continue
        header = list(table[0])
        values = [c for c in header if c not in ("step", "timestamp")]
        if len(values) != 1:
            continue  # several series in one file: not one metric's steps
        name = path.removeprefix(prefix).removesuffix(f".{suffix}").replace("/", ".")
        for at, record in enumerate(table):
            try:
                step = int(float(record.get("step", at)))
                stamp = int(float(record["timestamp"])) if "timestamp" in record else fallback
                rows.append((step, stamp, float(record[values[0]]), name))
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def _table(text: str, suffix: str, source: str) -> list[dict[str, Any]]:
    """A plot file's rows as dicts: TSV or CSV with a header, or a JSON list of objects."""
    if suffix in ("tsv", "csv"):
        return list(csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == "tsv" else ","))
    if suffix == "json":
        loaded = _yaml(text, source)
        if isinstance(loaded, dict) and len(loaded) == 1:
            loaded = next(iter(loaded.values()))  # {"train": [...]}, as sklearn plots write
        if isinstance(loaded, list) and all(isinstance(r, dict) for r in loaded):
            return loaded
    return []


@dataclass(frozen=True)
class _Found:
    """What one experiment (or DVCLive folder) holds."""

    name: str
    when: dt.datetime
    params: tuple[tuple[str, str | None], ...]  # (source, params.yaml text), later ones winning
    metrics: tuple[tuple[str, str | None], ...]  # (source, JSON or YAML), later ones winning
    steps: list[tuple[int, int, float, str]]
    tags: dict[str, str]
    code: dict[str, Any] | None
    files: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # dvc.lock's deps and outs


def _write(repo: Repo, run_id: str, found: _Found) -> None:

    name, when, steps, tags, code = found.name, found.when, found.steps, found.tags, found.code
    params: dict[str, Any] = {}
    for source, text in found.params:
        loaded = _yaml(text, source)
        if isinstance(loaded, dict):
            params.update(normalize_params(loaded))
    metrics: dict[str, float] = {}
    for source, text in found.metrics:
        loaded = _yaml(text, source)  # JSON is YAML: metrics files are either
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


def _lock_files(text: str | None, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`dvc.lock`'s deps (not made by another stage) and outs, as run inputs and outputs."""
    if not text:
        return {}, {}
    try:
        return parse_lock(text, source)
    except GitmlError as exc:
        log.warning("gitml: %s; the experiment is imported without its deps and outs", exc)
        return {}, {}


def _yaml(text: str | None, source: str) -> Any:
    """A file's YAML (or JSON) data; None, with a warning naming it, when it cannot be read."""
    if not text:
        return None
    try:
        return load_bounded(text, source)
    except GitmlError as exc:
        log.warning("gitml: %s; left out", exc)
        return None
