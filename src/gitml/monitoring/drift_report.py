"""A drift report kept as files: a TOML summary and a Parquet table of every figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gitml import store
from gitml.monitoring.drift import DriftReport
from gitml.monitoring.monitor import MONITOR_DIR
from gitml.repo import Repo


def save(repo: Repo, report: DriftReport) -> tuple[Path, Path]:
    """Write the TOML summary and the Parquet detail under `.gitml/monitor/<name>/`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    now = store.utcnow()
    folder = repo.gitml_dir / MONITOR_DIR / report.name
    stem = f"drift-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    summary = {
        "schema_version": 1,
        "created_at": now,
        "reference": report.reference,
        "current": report.current,
        "rows": {"reference": report.reference_rows, "current": report.current_rows},
        "drifted": report.drifted,
        "share": len(report.drifted) / max(len(report.features), 1),
        "features": [
            {"feature": f.feature, "kind": f.kind, "method": f.method,
             "statistic": _finite(f.statistic), "threshold": f.threshold, "psi": _finite(f.psi),
             "drifted": f.drifted, **({"reason": f.reason} if f.reason else {})}
            for f in report.features
        ],
        "detail": f"{stem}.parquet",
    }  # fmt: skip
    if report.notes:
        summary["notes"] = report.notes
    folder.mkdir(parents=True, exist_ok=True)
    detail = folder / f"{stem}.parquet"
    tmp = detail.with_name(f".{detail.name}.tmp")
    pq.write_table(pa.Table.from_pylist([vars(f) for f in report.features]), tmp)
    tmp.replace(detail)
    toml = folder / f"{stem}.toml"
    store.write_toml(toml, summary, kind="drift")
    return toml, detail


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 1e308


def rows(report: DriftReport) -> list[dict[str, Any]]:
    """The report as table rows."""
    return [
        {
            "feature": f.feature,
            "kind": f.kind,
            "method": f.method,
            "statistic": round(f.statistic, 4),
            "threshold": f.threshold,
            "psi": round(f.psi, 4),
            "missing": f"{f.current_missing:.1%}",
            "drift": "DRIFT" if f.drifted else "ok",
            "reason": f.reason,
        }
        for f in report.features
    ]
