"""Live performance: labels that arrive later, joined to what the served model predicted.

`gitml monitor labels NAME FILE` keeps the labels (`request_id`, optionally `row`, and `label`)
under `.gitml/monitor/<name>/labels/`, joins every label kept so far to the request log, and
computes the model's metric per time window and per model version. A window whose metric is
worse than the version's metric at registration by more than the tolerance is a degradation:
the command says so and exits 1. The windows go to a TOML summary and a Parquet table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import store
from gitml.errors import UsageError
from gitml.monitoring.monitor import MONITOR_DIR, read_requests
from gitml.monitoring.profile import read_table
from gitml.registry import versions as registry
from gitml.repo import Repo
from gitml.store import utcnow

TOLERANCE = 0.05
MIN_LABELS = 30  # fewer labelled rows in a window say too little to flag it


def _rmse(y: Any, p: Any) -> float:
    from sklearn.metrics import mean_squared_error

    return math.sqrt(mean_squared_error(y, p))


def metric_function(name: str) -> tuple[Any, str]:
    """The function computing a registry metric from (labels, predictions), and its goal."""
    from sklearn import metrics

    table: dict[str, tuple[Any, str]] = {
        "accuracy": (metrics.accuracy_score, "maximize"),
        "balanced_accuracy": (metrics.balanced_accuracy_score, "maximize"),
        "f1": (lambda y, p: metrics.f1_score(y, p, average="macro"), "maximize"),
        "f1_macro": (lambda y, p: metrics.f1_score(y, p, average="macro"), "maximize"),
        "precision": (lambda y, p: metrics.precision_score(y, p, average="macro"), "maximize"),
        "recall": (lambda y, p: metrics.recall_score(y, p, average="macro"), "maximize"),
        "r2": (metrics.r2_score, "maximize"),
        "mae": (metrics.mean_absolute_error, "minimize"),
        "rmse": (_rmse, "minimize"),
    }
    for prefix in ("validation_", "val_", "test_", "holdout_"):
        name = name.removeprefix(prefix)
    if name not in table:
        known = ", ".join(sorted(table))
        raise UsageError("--metric", f"{name!r}: live performance knows {known}")
    return table[name]


@dataclass(frozen=True)
class Window:
    """The metric over one time window of labelled predictions of one version."""

    start: str
    version: int
    labelled: int
    value: float
    registered: float | None
    degraded: bool


def keep_labels(repo: Repo, name: str, source: Path) -> Path:
    """Check a labels file and keep it as Parquet beside the request log."""
    import pandas as pd

    if not source.is_file():
        raise UsageError("labels", f"{source}: no such file")
    frame = read_table(source)
    if frame is None:
        raise UsageError("labels", f"{source}: give a .csv or .parquet file")
    for column in ("request_id", "label"):
        if column not in frame.columns:
            raise UsageError(str(source), f"no {column!r} column (columns: request_id, row, label)")
    if "row" not in frame.columns:
        frame["row"] = 0
    frame = frame[["request_id", "row", "label"]].astype({"request_id": str, "row": "int64"})
    if frame["label"].isna().any():
        raise UsageError(str(source), f"{int(frame['label'].isna().sum())} labels are empty")
    folder = repo.gitml_dir / MONITOR_DIR / name / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{utcnow().strftime('%Y%m%dT%H%M%S%fZ')}.parquet"
    tmp = target.with_name(f".{target.name}.tmp")
    pd.DataFrame(frame).to_parquet(tmp, index=False)
    tmp.replace(target)
    return target


def windows(
    repo: Repo, name: str, *, metric: str, every: str, tolerance: float
) -> tuple[list[Window], int, int]:
    """The metric per window and version; (windows, labels joined, labels unmatched)."""
    import pandas as pd

    compute, goal = metric_function(metric)
    folder = repo.gitml_dir / MONITOR_DIR / name / "labels"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise UsageError("labels", f"model {name!r}: no labels kept yet")
    labels = pd.concat([pd.read_parquet(f) for f in files]).drop_duplicates(
        ["request_id", "row"], keep="last")  # fmt: skip
    served = read_requests(repo, name)
    joined = served.merge(labels, on=["request_id", "row"], how="inner")
    unmatched = len(labels) - len(joined)
    versions = {v["version"]: v for v in registry.load(repo, name).get("versions", [])}
    out: list[Window] = []
    if joined.empty:
        return out, 0, unmatched
    joined["window"] = joined["time"].dt.floor(every)
    for (start, version), group in joined.groupby(["window", "model_version"], sort=True):
        labels_, predicted = _comparable(group["label"], group["prediction"])
        value = float(compute(labels_, predicted))
        known = versions.get(int(version))
        registered = known.get("metrics", {}).get(metric) if known else None
        worse = registered is not None and (
            value < registered - tolerance if goal == "maximize" else value > registered + tolerance
        )
        out.append(Window(start.isoformat(), int(version), len(group), value,
                          registered, bool(worse and len(group) >= MIN_LABELS)))  # fmt: skip
    return out, len(joined), unmatched


def _comparable(labels: Any, predicted: Any) -> tuple[Any, Any]:
    """Labels and predictions of one type (a CSV's 1 and a log's "1" are the same class)."""
    if labels.dtype.kind in "OUS" or predicted.dtype.kind in "OUS" or str(labels.dtype) == "str":
        return labels.astype(str), predicted.astype(str)
    return labels, predicted


def save(repo: Repo, name: str, metric: str, rows: list[Window]) -> Path:
    """The windows as a TOML summary and a Parquet table under `.gitml/monitor/<name>/`."""
    import pandas as pd

    now = store.utcnow()
    stem = f"performance-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    folder = repo.gitml_dir / MONITOR_DIR / name
    table = folder / f"{stem}.parquet"
    pd.DataFrame([vars(w) for w in rows]).to_parquet(table, index=False)
    summary = folder / f"{stem}.toml"
    store.write_toml(summary, {
        "schema_version": 1, "created_at": now, "model": name, "metric": metric,
        "windows": len(rows), "degraded": [f"{w.start} v{w.version}" for w in rows if w.degraded],
        "detail": table.name,
    }, kind="performance")  # fmt: skip
    return summary
