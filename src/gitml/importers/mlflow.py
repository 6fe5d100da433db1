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
from gitml.query.index import warn
from gitml.registry import versions as registry
from gitml.repo import Repo
from gitml.tracking import journal

log = logs.get(__name__)

ARTIFACTS_DIR = "mlflow-artifacts"
STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed",
          "RUNNING": "crashed", "SCHEDULED": "crashed"}  # fmt: skip
MODEL_FILES = ("model.pkl", "model.joblib", "model.skops")


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
    _import_registry(repo, client, ids, summary)
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
        "start_time": _time(info.start_time),
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
        record["end_time"] = _time(info.end_time)
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


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _import_artifacts(repo: Repo, client: Any, exp: Any, mlflow_run_id: str) -> dict[str, Any]:
    """Download a run's artifacts into the repository and cache them DVC-style."""
    listed = client.list_artifacts(mlflow_run_id)
    if not listed:
        return {}
    folder = repo.root / ARTIFACTS_DIR / _slug(exp.name) / mlflow_run_id
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


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def _import_registry(repo: Repo, client: Any, ids: dict[str, str], summary: Summary) -> None:
    """Registered models: versions whose runs were imported (with a model file), and aliases."""
    for model in client.search_registered_models():
        name = _slug(model.name)
        path = registry.registry_path(repo, name)
        if path.is_file():
            continue
        versions, events = [], []
        for mv in sorted(client.search_model_versions(f"name='{model.name}'"),
                         key=lambda v: int(v.version)):  # fmt: skip
            gitml_id = ids.get(mv.run_id or "")
            run_file = repo.run_dir(gitml_id) / "run.toml" if gitml_id else None
            record = store.read_toml(run_file, kind="run") if run_file else {}
            output = _model_output(record, mv.source) if run_file else None
            if output is None and run_file is not None:
                output = _download_version(repo, mv, run_file, record, summary)
            if output is None or gitml_id is None:
                summary.not_carried.append(f"{model.name} v{mv.version}: its run or model file "
                                           "was not imported")  # fmt: skip
                continue
            created = _time(mv.creation_timestamp)
            version = {
                "version": int(mv.version), "run": gitml_id, "path": output[0],
                "md5": output[1]["md5"], "size": output[1]["size"],
                "format": registry.format_of(output[0]),  # the MLmodel's flavor says below
                "created_at": created, "description": mv.description or "imported from MLflow",
                "metrics": record.get("metrics", {}),
            }  # fmt: skip
            signature, serialized = _model_info(mv, summary)
            if signature:
                version["signature"] = signature
            if serialized:
                version["format"] = serialized
            versions.append(version)
            events.append({"at": created, "action": "register", "version": int(mv.version),
                           "reason": f"imported from MLflow ({model.name})"})  # fmt: skip
        known = {v["version"] for v in versions}
        aliases = {a: int(v) for a, v in (model.aliases or {}).items()
                   if int(v) in known and registry.ALIAS_RE.match(a)}  # fmt: skip
        now = store.utcnow()
        events += [{"at": now, "action": "promote", "alias": a, "version": v,
                    "reason": "alias imported from MLflow"}
                   for a, v in sorted(aliases.items())]  # fmt: skip
        doc = {"schema_version": 1, "name": name, "versions": versions, "aliases": aliases,
               "history": events}  # fmt: skip
        if model.description:
            doc["description"] = model.description
        if model.tags:
            doc["tags"] = {str(k): str(v) for k, v in model.tags.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_toml(path, doc, kind="model")
        summary.models += 1
        summary.versions += len(versions)
        summary.aliases += len(aliases)


MLFLOW_TYPES = {"double": "double", "float": "double", "long": "long", "integer": "long",
                "boolean": "boolean", "string": "string", "datetime": "datetime"}  # fmt: skip


SERIALIZED = {"cloudpickle": "cloudpickle", "pickle": "pickle", "skops": "skops"}


def _model_info(mv: Any, summary: Summary) -> tuple[dict[str, Any] | None, str | None]:
    """A version's signature (gitml's shape) and file format, from its MLmodel file.

    The format is the sklearn flavor's `serialization_format` (MLflow 3 writes skops by
    default, cloudpickle or pickle when asked); None when the MLmodel does not say.
    """
    from mlflow.models import get_model_info

    try:
        info = get_model_info(mv.source)
    except Exception as exc:  # no MLmodel to read: the version is carried without one
        summary.not_carried.append(f"{mv.name} v{mv.version}: signature ({type(exc).__name__})")
        return None, None
    flavor = (info.flavors or {}).get("sklearn") or {}
    serialized = SERIALIZED.get(str(flavor.get("serialization_format", "")))
    return _signature(mv, info.signature, summary), serialized


def _signature(mv: Any, signature: Any, summary: Summary) -> dict[str, Any] | None:
    """MLflow's column signature of a version as gitml's (which `gitml serve` checks)."""
    if signature is None or signature.inputs is None:
        return None
    columns = [(getattr(c, "name", None), str(getattr(getattr(c, "type", None), "name", "")))
               for c in signature.inputs.inputs]  # fmt: skip
    if not columns or any(n is None or t not in MLFLOW_TYPES for n, t in columns):
        summary.not_carried.append(f"{mv.name} v{mv.version}: a tensor or typed-object "
                                   "signature (gitml takes named columns)")  # fmt: skip
        return None
    out: dict[str, Any] = {"inputs": [{"name": n, "type": MLFLOW_TYPES[t]} for n, t in columns],
                           "source": f"MLflow signature of {mv.source}"}  # fmt: skip
    outputs = signature.outputs.inputs if signature.outputs is not None else []
    kind = getattr(getattr(outputs[0], "type", None), "name", None) if len(outputs) == 1 else None
    if kind in MLFLOW_TYPES:
        out["output"] = {"type": MLFLOW_TYPES[kind]}
    return out


def _download_version(
    repo: Repo, mv: Any, run_file: Path, record: dict[str, Any], summary: Summary
) -> tuple[str, dict[str, Any]] | None:
    """Fetch a version's files (MLflow 3 keeps logged models apart from runs, ``models:/``).

    They go next to the run's artifacts and into its outputs (``record``, written back to
    ``run_file``); returns the model file.
    """
    import mlflow.artifacts

    experiment = _slug(record["tags"].get("mlflow.experiment", "experiment"))
    folder = repo.root / ARTIFACTS_DIR / experiment / record["tags"]["mlflow.run_id"]
    folder = folder / f"{_slug(mv.name)}-v{mv.version}"
    try:
        with tempfile.TemporaryDirectory(prefix="gitml-mlflow-") as tmp:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=tmp))
            files = [p for p in got.rglob("*") if p.is_file()] if got.is_dir() else [got]
            base = got if got.is_dir() else got.parent
            for file in files:
                target = folder / file.relative_to(base)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
    except Exception as exc:
        warn(f"{mv.name} v{mv.version}: cannot download {mv.source}: {exc}")
        return None
    outputs = record.setdefault("outputs", {})
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        outputs[repo.relpath(file)] = track(repo.root, file).to_dict()
        summary.artifacts += 1
    store.write_toml(run_file, record, kind="run")
    models = [(p, r) for p, r in sorted(outputs.items())
              if p.startswith(repo.relpath(folder)) and Path(p).name in MODEL_FILES]  # fmt: skip
    return models[0] if models else None


def _model_output(record: dict[str, Any], source: str) -> tuple[str, dict[str, Any]] | None:
    """The model file a version's source points at, among the run's imported artifacts."""
    outputs = record.get("outputs", {})
    sub = source.split("/artifacts/", 1)[-1].strip("/") if "/artifacts/" in source else ""
    for path, ref in sorted(outputs.items()):
        if Path(path).name in MODEL_FILES and (not sub or f"/{sub}/" in f"/{path}"):
            return path, ref
    return None
