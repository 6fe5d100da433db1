"""Runs and step metrics for other tools: a Parquet dataset, and SQL through DuckDB.

`gitml export parquet DIR` writes

    DIR/runs.parquet                          one row per run: run_id, status, start_time, ...,
                                              params.<x>, metrics.<y>, tags.<z>, code.<...>
    DIR/artifacts.parquet                     one row per file a run read or wrote: run_id,
                                              kind (input/output), path, md5, size
    DIR/steps/run_id=<id>/part-0.parquet      that run's step metrics: step, timestamp, name, value

a hive-partitioned dataset that DuckDB (`read_parquet('DIR/steps/*/*.parquet',
hive_partitioning=true)`), Polars and Spark read as is. Files are a long table of their own,
so the runs' column count does not grow with the paths runs write (a real MLflow store had 76
of 114 columns as `outputs.<path>`). `gitml runs --sql` runs DuckDB over the same three
tables, `runs`, `artifacts` and `steps`, without writing anything.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
from pathlib import Path
from typing import Any

from gitml.errors import UsageError
from gitml.query.api import collect, find_runs, runs, step_metrics
from gitml.query.indexed import record_of
from gitml.repo import Repo


def runs_frame(repo: Repo, where: str | None = None) -> Any:
    """One row per matching run, `run_id` first (as `mlflow.search_runs` names it)."""
    import pandas as pd

    frame = runs(where, sort="start_time", repo=repo)
    return frame if not frame.empty else pd.DataFrame({"run_id": pd.Series(dtype="str")})


def steps_frame(repo: Repo, run_ids: set[str] | None = None) -> Any:
    """Every step metric of the runs (all when None): run_id, step, timestamp, name, value."""
    import pandas as pd

    parts = []
    for run in collect(repo):
        if run_ids is not None and run.run_id not in run_ids:
            continue
        rows = step_metrics(repo, run)
        if rows:
            part = pd.DataFrame(rows, columns=["step", "timestamp", "value", "name"])
            part.insert(0, "run_id", run.run_id)
            parts.append(part)
    if not parts:
        columns = {"run_id": "str", "step": "int64", "timestamp": "int64", "name": "str",
                   "value": "float64"}  # fmt: skip
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    frame = pd.concat(parts, ignore_index=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame[["run_id", "step", "timestamp", "name", "value"]]


FILES = {"inputs": "input", "outputs": "output"}  # in the artifacts table, not a column each
TIMES = ("start_time", "end_time")


def runs_table(rows: list[dict[str, Any]]) -> Any:
    """The runs as an Arrow table typed by what the runs hold, not by what pandas guesses.

    A column of whole numbers stays int64 when some runs lack it (pandas makes it double); a
    column no run fills is text, not Arrow's null type; numbers mixed with text are text. The
    files runs read and wrote are the artifacts table's (`artifacts_table`).
    """
    import pyarrow as pa

    keys: dict[str, None] = {"run_id": None}
    for row in rows:
        keys.update(dict.fromkeys(k for k in row if k.partition(".")[0] not in FILES))
    columns: dict[str, Any] = {}
    for key in keys:
        values = [row.get("id") if key == "run_id" else row.get(key) for row in rows]
        columns[key] = _typed_array(values, key in TIMES)
    return pa.table(columns)


def artifacts_table(repo: Repo, rows: list[dict[str, Any]]) -> Any:
    """One row per input and output of each run: run_id, kind, path, md5, size.

    Sizes are in the full records, not the index's rows: a record is read only for a run
    whose row names a file.
    """
    import pyarrow as pa

    wanted = {row["id"] for row in rows
              if any(k.partition(".")[0] in FILES for k in row)}  # fmt: skip
    out: dict[str, list[Any]] = {"run_id": [], "kind": [], "path": [], "md5": [], "size": []}
    by_id = {run.run_id: run for run in collect(repo) if run.run_id in wanted} if wanted else {}
    for row in rows:
        run = by_id.get(row["id"])
        if run is None:
            continue
        record = record_of(repo, run)
        for section, kind in FILES.items():
            files: dict[str, Any] = dict(record.get(section, {}))  # type: ignore[call-overload]
            for path, ref in sorted(files.items()):
                for key, value in (("run_id", run.run_id), ("kind", kind), ("path", path),
                                   ("md5", ref["md5"]), ("size", ref.get("size"))):  # fmt: skip
                    out[key].append(value)
    types = {"run_id": pa.string(), "kind": pa.string(), "path": pa.string(),
             "md5": pa.string(), "size": pa.int64()}  # fmt: skip
    return pa.table({k: pa.array(v, types[k]) for k, v in out.items()})


def _typed_array(values: list[Any], is_time: bool) -> Any:
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if is_time:
        return pa.array([None if v is None else str(v) for v in values], pa.string()).cast(
            pa.timestamp("us", tz="UTC"))  # fmt: skip
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else
             float if isinstance(v, float) else str for v in present}  # fmt: skip
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int} and all(-(2**63) <= v < 2**63 for v in present):
        return pa.array(values, pa.int64())
    if kinds and kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else v if isinstance(v, str) else _text(v)
                     for v in values], pa.string())  # fmt: skip


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict | bool) else str(value)


def export_parquet(repo: Repo, folder: Path, *, where: str | None = None) -> dict[str, int]:
    """Write the dataset to ``folder`` (replaced whole: written beside it, then renamed)."""
    import pyarrow.parquet as pq

    rows = find_runs(repo, where=where, sort="start_time")
    runs = runs_table(rows)
    files = artifacts_table(repo, rows)
    steps = steps_frame(repo, {row["id"] for row in rows})
    if folder.exists() and not (folder / "runs.parquet").is_file() and any(folder.iterdir()):
        raise UsageError("DIR", f"{folder} holds other files; give an empty or new folder")
    tmp = folder.with_name(f".{folder.name}.gitml-export.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        pq.write_table(runs, tmp / "runs.parquet")
        pq.write_table(files, tmp / "artifacts.parquet")
        for run_id, part in steps.groupby("run_id", sort=True):
            target = tmp / "steps" / f"run_id={run_id}"
            target.mkdir(parents=True)
            part.drop(columns="run_id").to_parquet(target / "part-0.parquet", index=False)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"runs": runs.num_rows, "artifacts": files.num_rows, "steps": len(steps)}


def _plain(value: Any) -> Any:
    """A DuckDB value as JSON and tables show it (timestamps as ISO text, decimals as floats)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def sql(repo: Repo, query: str) -> list[dict[str, Any]]:
    """Run ``query`` in DuckDB over the tables ``runs``, ``artifacts`` and ``steps``."""
    import duckdb

    con = duckdb.connect()
    try:
        rows = find_runs(repo, sort="start_time")
        con.register("runs", runs_table(rows))
        if "artifacts" in query.lower():  # read the records' files only when asked for
            con.register("artifacts", artifacts_table(repo, rows))
        if "steps" in query.lower():  # read every run's steps only when asked for
            con.register("steps", steps_frame(repo))
        try:
            result = con.execute(query)
        except duckdb.Error as exc:
            raise UsageError("--sql", str(exc).splitlines()[0]) from exc
        columns = [d[0] for d in result.description or []]
        return [{c: _plain(v) for c, v in zip(columns, row, strict=True)}
                for row in result.fetchall()]  # fmt: skip
    finally:
        con.close()
