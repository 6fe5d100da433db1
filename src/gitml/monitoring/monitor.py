"""Request logs of served models: what came in and what the model answered, as Parquet.

`gitml serve` appends every validated request to `.gitml/monitor/<name>/requests/`. A live
segment is an Arrow IPC stream written batch by batch, so a killed server loses nothing it
answered: every batch is readable up to the last complete one. A segment is closed into one
Parquet file when it reaches ``rotate_rows``, when the model version or the columns change, and
when the server stops. `read_requests` reads both kinds; drift checks start from it.

Columns: ``time`` (UTC), ``request_id``, ``endpoint``, ``model_version``, ``row`` (the record's
place in its request), one ``input.<feature>`` per input column, and ``prediction``. Labels that
arrive later (`gitml monitor labels`) join on ``request_id`` and ``row``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from gitml.repo import Repo
from gitml.store import utcnow

MONITOR_DIR = "monitor"
LIVE_SUFFIX = ".arrows"
ROTATE_ROWS = 100_000
META_COLUMNS = ("time", "request_id", "endpoint", "model_version", "row")


def requests_dir(repo: Repo, name: str) -> Path:
    """Where the request logs of model ``name`` live."""
    return repo.gitml_dir / MONITOR_DIR / name / "requests"


class RequestLog:
    """Appends requests of one served model to Arrow stream segments, closed into Parquet.

    Thread-safe: the server's worker threads share one log.
    """

    def __init__(self, folder: Path, *, rotate_rows: int = ROTATE_ROWS) -> None:
        self.folder = folder
        self.rotate_rows = rotate_rows
        self._lock = threading.Lock()
        self._writer: Any = None
        self._schema: Any = None
        self._sink: Any = None
        self._path: Path | None = None
        self._rows = 0
        self._seq = 0

    def append(
        self, *, request_id: str, endpoint: str, version: int, frame: Any, predictions: Any
    ) -> None:
        """Log one request: its validated input rows and the predictions made for them."""
        batch = _batch(request_id, endpoint, version, frame, predictions)
        with self._lock:
            if self._writer is not None and (
                not batch.schema.equals(self._schema) or self._rows >= self.rotate_rows
            ):
                self._close_segment()
            if self._writer is None:
                self._open_segment(batch.schema)
            self._writer.write_batch(batch)
            self._rows += batch.num_rows

    def close(self) -> Path | None:
        """Close the live segment into Parquet; returns the Parquet file, if any was written."""
        with self._lock:
            return self._close_segment()

    def _open_segment(self, schema: Any) -> None:
        import pyarrow as pa

        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        self._path = self.folder / f"{stamp}-{os.getpid()}-{self._seq:04d}{LIVE_SUFFIX}"
        self._sink = pa.OSFile(str(self._path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, schema)
        self._schema = schema
        self._rows = 0

    def _close_segment(self) -> Path | None:
        if self._writer is None or self._path is None:
            return None
        self._writer.close()
        self._sink.close()
        live, self._writer, self._sink, self._path = self._path, None, None, None
        return _to_parquet(live)


def read_requests(repo: Repo, name: str) -> Any:
    """Every logged request of model ``name`` as one pandas DataFrame, oldest first.

    Live and crashed segments are read up to their last complete batch.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = requests_dir(repo, name)
    tables = []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.suffix == ".parquet":
            tables.append(pq.read_table(path))
        elif path.suffix == LIVE_SUFFIX:
            tables.append(_read_stream(path))
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return pd.DataFrame(columns=[*META_COLUMNS, "prediction"])
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas().sort_values("time", kind="stable").reset_index(drop=True)


def _batch(request_id: str, endpoint: str, version: int, frame: Any, predictions: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    rows = len(frame)
    inputs = pa.Table.from_pandas(frame, preserve_index=False)
    predictions = np.asarray(predictions)
    if predictions.ndim > 1:
        prediction = pa.array(predictions.tolist())
    elif predictions.dtype.kind in "OU":
        prediction = pa.array(predictions.astype(str))
    else:
        prediction = pa.array(predictions)
    columns = {
        "time": pa.array([utcnow()] * rows, pa.timestamp("us", tz="UTC")),
        "request_id": pa.array([request_id] * rows, pa.string()),
        "endpoint": pa.array([endpoint] * rows, pa.string()),
        "model_version": pa.array([version] * rows, pa.int64()),
        "row": pa.array(range(rows), pa.int64()),
        **{f"input.{n}": inputs.column(n) for n in inputs.column_names},
        "prediction": prediction,
    }
    return pa.Table.from_pydict(columns).combine_chunks().to_batches()[0]


def _read_stream(path: Path) -> Any:
    """The complete batches of an Arrow stream that may still be written, or was cut short."""
    import pyarrow as pa

    batches = []
    try:
        with pa.ipc.open_stream(pa.memory_map(str(path))) as reader:
            schema = reader.schema
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError):
        if not batches:
            return None
        schema = batches[0].schema
    return pa.Table.from_batches(batches, schema=schema)


def _to_parquet(live: Path) -> Path | None:
    """Turn a closed stream segment into a Parquet file next to it (written, then renamed)."""
    import pyarrow.parquet as pq

    table = _read_stream(live)
    if table is None or not table.num_rows:
        live.unlink(missing_ok=True)
        return None
    final = live.with_suffix(".parquet")
    tmp = live.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(final)
    live.unlink()
    return final
