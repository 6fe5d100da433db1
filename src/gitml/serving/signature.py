"""Model signatures: the input columns and types a model takes, and what it returns.

Captured at registration from the model itself (scikit-learn's ``feature_names_in_``) and the
run's training data (the column types), and checked by `gitml serve` and `gitml predict`.
Types use MLflow's names (long, double, boolean, string, datetime) so the two read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitml import logs
from gitml.check.facts import model_facts
from gitml.check.guard import file_findings
from gitml.check.scan import trusted_types
from gitml.data import ArtifactRef
from gitml.data.checkout import verified_object
from gitml.errors import GitmlError, UsageError
from gitml.records import Artifact, ColumnType, RunRecord, Signature
from gitml.repo import Repo
from gitml.serving.models import load_model

log = logs.get(__name__)

DATA_SUFFIXES = (".csv", ".parquet", ".pq")
SAMPLE_ROWS = 1000


def type_name(dtype: Any) -> ColumnType:
    """MLflow's type name of a numpy/pandas dtype."""
    kinds: dict[str, ColumnType] = {
        "i": "long", "u": "long", "f": "double", "b": "boolean", "M": "datetime"
    }  # fmt: skip
    return kinds.get(getattr(dtype, "kind", "O"), "string")


def load_verified_model(
    repo: Repo, md5: str, size: int, fmt: str, *, unrestricted: bool = False
) -> Any:
    """Load a model from the DVC cache after checking its bytes hash to ``md5``.

    Every global the file names must be on the allow-list or in `[check] trusted_types`
    (`gitml.serving.models.load_model`); ``unrestricted`` (``--allow-findings``) lifts that.
    """
    path = verified_object(repo.root, ArtifactRef(md5=md5, size=size))
    return load_model(path, format=fmt, trusted=trusted_types(repo), unrestricted=unrestricted)


def read_sample(repo: Repo, path: str, ref: Artifact, rows: int = SAMPLE_ROWS) -> Any:
    """The first rows of a CSV or Parquet input, read from its verified cache object."""
    import pandas as pd

    obj = verified_object(repo.root, ArtifactRef(md5=ref["md5"], size=ref["size"]))
    if path.endswith(".csv"):
        return pd.read_csv(obj, nrows=rows)
    import pyarrow.parquet as pq

    first = next(pq.ParquetFile(obj).iter_batches(batch_size=rows), None)
    return first.to_pandas() if first is not None else pd.DataFrame()


def infer(repo: Repo, record: RunRecord, path: str, artifact: Artifact) -> Signature | None:
    """The signature of the model a run saved at ``path``; None when it cannot be told.

    The file is scanned first: one `gitml check` finds unsafe is never read further, and gets
    no signature. Then its feature names and classes are read from the file without
    unpickling it (`check.facts`); with the run's training data giving the column types, that
    is the whole signature. Only a model without feature names (fitted on an unnamed array),
    or whose training data is unknown, is loaded, by the restricted loader.
    """
    fmt = artifact.get("format", "joblib")
    try:
        findings = file_findings(repo, artifact["md5"], artifact["size"], fmt, path)
    except GitmlError as exc:
        findings, reason = [], str(exc)
    else:
        reason = ""
    if findings or reason:
        why = f"{findings[0].message} [{findings[0].rule}]" if findings else reason
        log.warning("gitml: note: no signature for %s: not loaded: %s", path, why)
        return None

    try:  # its bytes hashed once, for the facts and (if need be) the load
        obj = verified_object(repo.root, ArtifactRef(md5=artifact["md5"], size=artifact["size"]))
        static = _static_signature(repo, record, obj, fmt)
        if static is not None:
            return static
        model = load_model(obj, format=fmt, trusted=trusted_types(repo))
    except Exception as exc:
        log.warning("gitml: note: no signature for %s: cannot load it (%s)", path, exc)
        return None
    features = [str(c) for c in getattr(model, "feature_names_in_", [])]
    n_features = getattr(model, "n_features_in_", None)
    if not features and n_features is None:
        return None
    sample, source = _training_sample(repo, record, features)
    names = features or [str(i) for i in range(int(n_features or 0))]
    types = {n: type_name(sample[n].dtype) for n in names} if sample is not None else {}
    signature: Signature = {
        "inputs": [{"name": n, "type": types.get(n, "double")} for n in names],
    }
    if source:
        signature["source"] = source
    if sample is not None and len(sample) and hasattr(model, "predict"):
        import numpy as np

        out = np.asarray(model.predict(sample.head(5)))
        signature["output"] = {"type": type_name(out.dtype), "shape": [-1, *out.shape[1:]]}
    classes = getattr(model, "classes_", None)
    if classes is not None:
        signature["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    return signature


def _static_signature(repo: Repo, record: RunRecord, obj: Path, fmt: str) -> Signature | None:
    """The signature from the file's facts and the training data, or None (then: load it)."""
    import numpy as np

    facts = model_facts(obj, fmt)
    if facts is None or not facts.features:
        return None
    sample, source = _training_sample(repo, record, facts.features)
    if sample is None:
        return None
    output: ColumnType = type_name(np.asarray(facts.classes).dtype) if facts.classes else "double"
    signature: Signature = {
        "inputs": [{"name": n, "type": type_name(sample[n].dtype)} for n in facts.features],
        "output": {"type": output, "shape": [-1]},
    }
    if source:
        signature["source"] = source
    if facts.classes is not None:
        signature["classes"] = facts.classes
    return signature


def _training_sample(repo: Repo, record: RunRecord, features: list[str]) -> tuple[Any, str | None]:
    """The first rows of the run's CSV or Parquet input holding every feature, and its path."""
    for input_path, ref in (record.get("inputs") or {}).items():
        if not input_path.endswith(DATA_SUFFIXES) or "md5" not in ref:
            continue
        try:
            frame = read_sample(repo, input_path, ref)
        except Exception:
            continue
        if features and set(features) <= set(map(str, frame.columns)):
            return frame[features], input_path
    return None, None


def check_frame(signature: dict[str, Any] | None, frame: Any, *, where: str) -> Any:
    """``frame`` with the signature's columns in order and types; a clear error otherwise."""
    if not signature:
        return frame
    names = [c["name"] for c in signature["inputs"]]
    columns = [str(c) for c in frame.columns]
    missing = [n for n in names if n not in columns]
    if missing:
        raise UsageError(where, f"missing feature(s) {', '.join(missing[:10])}")
    extra = [c for c in columns if c not in names]
    if extra:
        raise UsageError(where, f"unknown feature(s) {', '.join(extra[:10])}")
    frame = frame[names]
    for column in signature["inputs"]:
        name, kind = column["name"], column["type"]
        actual = type_name(frame[name].dtype)
        if kind in ("double", "long") and actual not in ("double", "long", "boolean"):
            raise UsageError(where, f"feature {name!r} must be a number ({kind}), got {actual}")
    return frame
