"""MLflow's registered models as gitml registry files (part of `gitml import mlflow`).

Each version whose run was imported, with a model file among the run's artifacts (or fetched
from MLflow 3's logged models), its aliases, its description and its column signature.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gitml import store
from gitml.data.add import track
from gitml.importers import Summary
from gitml.query.index import warn
from gitml.registry import versions as registry
from gitml.repo import Repo

ARTIFACTS_DIR = "mlflow-artifacts"
MODEL_FILES = ("model.pkl", "model.joblib", "model.skops")


def ms_time(ms: int) -> dt.datetime:
    """An MLflow timestamp (milliseconds since the epoch) as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def slug(name: str) -> str:
    """An MLflow name as a safe folder or registry name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def import_registry(repo: Repo, client: Any, ids: dict[str, str], summary: Summary) -> None:
    """Registered models: versions whose runs were imported (with a model file), and aliases."""
    for model in client.search_registered_models():
        name = slug(model.name)
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
            created = ms_time(mv.creation_timestamp)
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

    experiment = slug(record["tags"].get("mlflow.experiment", "experiment"))
    folder = repo.root / ARTIFACTS_DIR / experiment / record["tags"]["mlflow.run_id"]
    folder = folder / f"{slug(mv.name)}-v{mv.version}"
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
