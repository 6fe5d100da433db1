"""`gitml import mlflow`: an `mlruns/` folder or a sqlite store becomes gitml files.

Read through MLflow's own client (``pip install mlflow``; the file store is opened with
``MLFLOW_ALLOW_FILE_STORE=true``, which MLflow 3.13+ needs). For every run of every experiment,
active and deleted:

- a run record: the name, the status (FINISHED -> finished, FAILED and KILLED -> failed,
  RUNNING and SCHEDULED -> crashed: a store's run cannot still be running), start and end, the
  params (typed as numbers and booleans where the text prints back the same, else kept as the
  text MLflow stores), the final metrics (MLflow's latest value per key), the tags, plus
  `mlflow.run_id`, `mlflow.experiment` and `mlflow.experiment_id`, and the experiment's own
  tags as `mlflow.experiment.<tag>`;
- every step of every metric, with its timestamp, in `metrics.parquet`;
- the artifacts, under `mlflow-artifacts/<experiment>/<mlflow run id>/`, into the DVC cache;
- registered models: each version whose run was imported, with its aliases, its model's
  description and its MLflow signature (named columns), which `gitml serve` then checks.

The gitml id is the MLflow start time plus the first six hex digits of the MLflow run id, so
importing twice adds nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml import logs, store
from gitml.data.add import track
from gitml.errors import GitmlError, SchemaError, UsageError
from gitml.importers import Summary, staged_run
from gitml.importers.mlflow_registry import ARTIFACTS_DIR, import_registry, ms_time, slug
from gitml.query.index import warn
from gitml.repo import Repo
from gitml.tracking import journal

log = logs.get(__name__)

STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed",
          "RUNNING": "crashed", "SCHEDULED": "crashed"}  # fmt: skip


def tracking_uri(source: str) -> str:
    """``sqlite:///...`` as is; a folder as a ``file://`` URI."""
    if source.startswith(("sqlite:", "postgresql:", "mysql:")):
        return source
    folder = Path(source)
    if not folder.is_dir():
        raise UsageError("SOURCE", f"{source}: neither an mlruns folder nor a sqlite:/// URI")
    return folder.resolve().as_uri()


def import_store(
    repo: Repo, source: str, *, artifacts: bool = True, progress: bool | None = None,
    echo: Callable[[str], None] = log,
) -> Summary:  # fmt: skip
    """Import every experiment, run and registered model of an MLflow store."""
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise UsageError(
            "mlflow", "importing needs the mlflow package: pip install mlflow"
        ) from exc

    import mlflow
    from tqdm import tqdm

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logs.quiet("mlflow", level=30)  # WARNING
    uri = tracking_uri(source)
    mlflow.set_tracking_uri(uri)  # models:/ URIs resolve against the global one
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    summary = Summary()
    ids: dict[str, str] = {}
    experiments = client.search_experiments(view_type=ViewType.ALL)
    summary.experiments = len(experiments)
    runs = []
    for exp in experiments:
        try:
            runs += [(exp, run) for run in _all_runs(client, exp.experiment_id, ViewType.ALL)]
        except Exception as exc:  # MLflow will not list it: one bad run refuses the lot
            runs += [(exp, run) for run in _one_by_one(client, uri, exp, exc, summary)]
    bar = tqdm(runs, desc="import mlflow", unit=" runs", disable=None if progress is None
               else not progress)  # fmt: skip
    for exp, run in bar:
        gitml_id = run_id_for(run)
        ids[run.info.run_id] = gitml_id
        if (repo.run_dir(gitml_id) / "run.toml").is_file():
            summary.skipped += 1
            continue
        try:
            _import_run(repo, client, exp, run, gitml_id, artifacts=artifacts, summary=summary)
        except Exception as exc:  # the store refuses this run (MlflowException and the like)
            if isinstance(exc, GitmlError) and not isinstance(exc, SchemaError):
                raise  # ours: a repository problem, not this run's
            reason = _why(exc)
            summary.failed.append(f"run {run.info.run_id} ({exp.name}): {reason}")
            warn(f"run {run.info.run_id} not imported: {reason}")
            continue
        summary.runs += 1
    import_registry(repo, client, ids, summary)
    if any(run.data.tags.get("mlflow.parentRunId") for _, run in runs):
        summary.not_carried.append("parent/child run links (kept as the mlflow.parentRunId tag)")
    summary.not_carried.append("dataset inputs (mlflow.log_input), traces and evaluation tables")
    return summary


def _one_by_one(client: Any, uri: str, exp: Any, exc: Exception, summary: Summary) -> list[Any]:
    """A file store's runs read one at a time, when MLflow refuses to list them together.

    A run with an invalid param key stops `search_runs` for its whole experiment: the runs
    that can be read come, and the others are named in ``summary.failed``.
    """
    reason = _why(exc)
    folder = Path(uri.removeprefix("file://")) / str(exp.experiment_id)
    if not uri.startswith("file://") or not folder.is_dir():
        summary.failed.append(f"experiment {exp.name}: cannot list its runs: {reason}")
        return []
    runs = []
    for meta in sorted(folder.glob("*/meta.yaml")):
        try:
            runs.append(client.get_run(meta.parent.name))
        except Exception as one:
            why = _why(one)
            summary.failed.append(f"run {meta.parent.name} ({exp.name}): {why}")
    return runs


def _why(exc: BaseException) -> str:
    """An exception in one line, at most 300 characters: its type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def _all_runs(client: Any, experiment_id: str, view: Any) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], run_view_type=view, max_results=1000,
                                  page_token=token)  # fmt: skip
        runs += list(page)
        token = page.token
        if not token:
            return runs


def run_id_for(run: Any) -> str:
    """The gitml id of an MLflow run: its start time, and six hex digits of its id."""
    started = dt.datetime.fromtimestamp((run.info.start_time or 0) / 1000, tz=dt.UTC)
    digits = re.sub(r"[^0-9a-f]", "", run.info.run_id.lower()).ljust(6, "0")[:6]
    return f"{started.strftime('%Y%m%dT%H%M%SZ')}-{digits}"


def _typed(value: str) -> Any:
    """An MLflow param (always text) as the number or boolean it spells, when that is exact.

    Only where the value prints back as the same text (``str(v) == text``): "4" is 4, "4.0"
    is 4.0 and "True" (Python's spelling, which MLflow's autolog writes) is true, but "0.10",
    "false", "007" and "1_000" stay text, so the import changes nothing MLflow stored.
    """
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            number = kind(value)
        except ValueError:
            continue
        if str(number) == value:
            return number
    return value


def _import_run(
    repo: Repo, client: Any, exp: Any, run: Any, gitml_id: str, *, artifacts: bool,
    summary: Summary,
) -> None:  # fmt: skip

    info = run.info
    record: dict[str, Any] = {
        "schema_version": 1,
        "id": gitml_id,
        "name": (info.run_name or info.run_id)[:250],
        "status": STATUS.get(info.status, "crashed"),
        "start_time": ms_time(info.start_time),
        "params": {k: _typed(v) for k, v in run.data.params.items()},
        "metrics": {k: float(v) for k, v in run.data.metrics.items()},
        "tags": {
            **{f"mlflow.experiment.{k}": v for k, v in (exp.tags or {}).items()},
            **dict(run.data.tags),
            "mlflow.run_id": info.run_id,
            "mlflow.experiment": exp.name,
            "mlflow.experiment_id": str(exp.experiment_id),
        },
    }
    if info.end_time:
        record["end_time"] = ms_time(info.end_time)
    if info.status == "KILLED":
        record["error"] = "killed (MLflow status KILLED)"
    if info.lifecycle_stage == "deleted":
        record["tags"]["mlflow.deleted"] = "true"
    run_dir = repo.run_dir(gitml_id)
    store.validate("run", record, source=str(run_dir / "run.toml"))  # before any file is made
    history = client.get_metric_history
    rows = [(m.step, m.timestamp, float(m.value), key)
            for key in run.data.metrics for m in history(info.run_id, key)]  # fmt: skip
    with staged_run(repo, gitml_id) as staging:  # the whole run or nothing
        if rows:
            journal.write_parquet(staging / journal.PARQUET_NAME, rows, run_id=gitml_id)
        if artifacts:
            try:
                outputs = _import_artifacts(repo, client, exp, info.run_id)
            except Exception as exc:  # the store's artifacts: the run itself is still carried
                if isinstance(exc, GitmlError):
                    raise
                reason = _why(exc)
                summary.failed.append(f"artifacts of run {info.run_id}: {reason}")
                outputs = {}
            if outputs:
                record["outputs"] = outputs
                summary.artifacts += len(outputs)
        store.write_toml(staging / "run.toml", record, kind="run")
    summary.steps += len(rows)


def _import_artifacts(repo: Repo, client: Any, exp: Any, mlflow_run_id: str) -> dict[str, Any]:
    """Download a run's artifacts into the repository and cache them DVC-style."""
    listed = client.list_artifacts(mlflow_run_id)
    if not listed:
        return {}
    folder = repo.root / ARTIFACTS_DIR / slug(exp.name) / mlflow_run_id
    with tempfile.TemporaryDirectory(prefix="gitml-mlflow-") as tmp:
        downloaded = Path(client.download_artifacts(mlflow_run_id, "", tmp))
        folder.mkdir(parents=True, exist_ok=True)
        outputs = {}
        for file in sorted(p for p in downloaded.rglob("*") if p.is_file()):
            target = folder / file.relative_to(downloaded)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
            outputs[repo.relpath(target)] = track(repo.root, target).to_dict()
    return outputs
