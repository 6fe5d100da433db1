"""Step metrics: a crash-safe journal while the run is live, one Parquet file when it ends.

Parquet cannot be appended to, and an unclosed Parquet file cannot be read. So a live run appends
buffered batches of tab-separated lines (``step, timestamp_ms, value, name``) to
``metrics.<pid>.journal`` beside run.toml: each batch is one ``write`` plus an ``fsync``, a torn
last line is ignored on read, and a SIGKILL loses at most the steps logged since the last flush.
When the run ends (or is found crashed), the journals become ``metrics.parquet``.
"""

from __future__ import annotations

import array
import io
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import store
from gitml.errors import FileFormatError, SchemaError, UsageError

JOURNAL_GLOB = "metrics.*.journal"
PARQUET_NAME = "metrics.parquet"
METRIC_NAME = re.compile(r"^[\w\-. /:]{1,250}$")

Row = tuple[int, int, float, str]  # step, timestamp in ms since the epoch (UTC), value, name


def check_metric_name(name: Any) -> str:
    """Metric names are short, printable and tab/newline free (they key the journal lines)."""
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        raise UsageError(
            f"metric name {name!r}",
            "use 1-250 letters, digits, spaces or _ - . / :",
        )
    return name


def check_metric_value(name: str, value: Any) -> float:
    """A metric value as a float; numbers only (NaN and infinities are kept as such)."""
    if isinstance(value, bool | str | bytes):
        raise UsageError(f"metric {name!r}", f"value {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"metric {name!r}", f"value {value!r} is not a number") from exc


class MetricJournal:
    """An append-only, batch-flushed journal of one process's metric steps."""

    def __init__(self, path: Path, *, flush_every: int, flush_seconds: float) -> None:
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the run
        self._buffer: list[Row] = []
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="gitml-flush", daemon=True)
        self._flusher.start()

    def append(self, step: int, name: str, value: float) -> None:
        """Buffer one step; write the batch once it is full."""
        row = (step, int(time.time() * 1000), value, name)
        with self._lock:
            self._buffer.append(row)
            if len(self._buffer) < self._flush_every:
                return
            batch, self._buffer = self._buffer, []
            self._write(batch)

    def flush(self) -> None:
        """Write and fsync whatever is buffered."""
        with self._lock:
            batch, self._buffer = self._buffer, []
            if batch:
                self._write(batch)

    def close(self) -> None:
        """Flush, stop the timer thread and close the file."""
        self._stop.set()
        self._flusher.join()
        self.flush()
        self._file.close()

    def _flush_loop(self) -> None:
        # A step logged just before a long pause must not wait for the next log call.
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def _write(self, batch: list[Row]) -> None:
        text = "".join(f"{s}\t{t}\t{v!r}\t{n}\n" for s, t, v, n in batch)
        self._file.write(text.encode())
        self._file.flush()
        os.fsync(self._file.fileno())


def read_journal(path: Path) -> list[Row]:
    """Every complete line of a journal; a torn last line (crash mid-write) is dropped."""
    rows: list[Row] = []
    data = path.read_bytes()
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is torn or empty
        try:
            step, ts, value, name = line.decode().split("\t", 3)
            rows.append((int(step), int(ts), float(value), name))
        except ValueError:
            continue
    return rows


def journals(run_dir: Path) -> list[Path]:
    """The live journals of a run (one per process that logged to it)."""
    return sorted(run_dir.glob(JOURNAL_GLOB))


def latest_values(rows: Iterable[Row]) -> dict[str, float]:
    """The value with the highest (step, timestamp) for each metric name."""
    best: dict[str, tuple[int, int, float]] = {}
    for step, ts, value, name in rows:
        current = best.get(name)
        if current is None or (step, ts) >= current[:2]:
            best[name] = (step, ts, value)
    return {name: v for name, (_, _, v) in sorted(best.items())}


@dataclass(frozen=True)
class StepMetrics:
    """The step metrics of a run, as rows, with their source file."""

    source: str
    rows: list[Row]


def write_parquet(path: Path, rows: list[Row], *, run_id: str) -> None:
    """Write the rows as metrics.parquet (long format), atomically."""
    import pyarrow.parquet as pq

    table = rows_table(rows).replace_schema_metadata(
        {"gitml.schema_version": str(store.SCHEMA_VERSION), "gitml.run_id": run_id}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    store.atomic_write(path, buf.getvalue())


def rows_table(rows: list[Row]) -> Any:
    """Step rows as the Arrow table metrics.parquet holds, sorted by name, step and time.

    The columns are built from raw buffers: `pa.array` of a Python list imports pandas (0.37 s,
    at every run's end) to look for pandas types in it.
    """
    import pyarrow as pa

    rows = sorted(rows, key=lambda r: (r[3], r[0], r[1]))
    return pa.table(
        {
            "step": _fixed(pa.int64(), "q", [r[0] for r in rows]),
            "timestamp": _fixed(pa.timestamp("ms", tz="UTC"), "q", [r[1] for r in rows]),
            "name": _strings([r[3] for r in rows]),
            "value": _fixed(pa.float64(), "d", [r[2] for r in rows]),
        }
    )


def _fixed(kind: Any, code: str, values: list[Any]) -> Any:
    """An Arrow array of 64-bit numbers, from the bytes of a Python `array`."""
    import pyarrow as pa

    data = pa.py_buffer(array.array(code, values).tobytes())
    return pa.Array.from_buffers(kind, len(values), [None, data])


def _strings(values: list[str]) -> Any:
    """An Arrow string array from UTF-8 bytes and their offsets."""
    import pyarrow as pa

    encoded = [v.encode() for v in values]
    offsets = array.array("q", [0])
    for item in encoded:
        offsets.append(offsets[-1] + len(item))
    if offsets[-1] >= 2**31:  # over int32 offsets: Arrow's own conversion
        return pa.array(values, pa.string())
    small = array.array("i", offsets)
    buffers = [None, pa.py_buffer(small.tobytes()), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def expected_arrow_types() -> dict[str, str]:
    """Column -> Arrow type, from schemas/metrics-parquet.schema.json."""
    props = store.load_schema("metrics-parquet")["properties"]
    return {name: spec["x-arrow-type"] for name, spec in props.items()}


def read_parquet(path: Path | str, data: bytes | None = None) -> StepMetrics:
    """Read and validate a metrics.parquet file (or its bytes)."""
    import pyarrow as pa

    source = str(path)
    table = read_table(path, data)
    try:
        # Timestamps as int64 ms: converting tz-aware values to datetimes would import pandas.
        # (fill_null(0) would too: converting a Python scalar goes through pyarrow's pandas shim.)
        stamps = [t or 0 for t in table.column("timestamp").cast(pa.int64()).to_pylist()]
        cols = [table.column(c).to_pylist() for c in ("step", "value", "name")]
    except (UnicodeDecodeError, ValueError, pa.ArrowException) as exc:  # bytes that lie
        raise FileFormatError(source, f"not a readable Parquet file ({exc})") from exc
    rows = list(zip(cols[0], stamps, cols[1], cols[2], strict=True))
    return StepMetrics(source=source, rows=rows)


def read_table(
    path: Path | str, data: bytes | None = None, columns: Sequence[str] | None = None, *,
    names_encoded: bool = False,
) -> Any:  # fmt: skip
    """A metrics.parquet file (or its bytes) as an Arrow table, checked against its schema.

    ``columns`` reads only those (a chart needs two of the four); ``names_encoded`` gives the
    name column dictionary-encoded, as integer codes into the distinct names, which is what
    counting and picking one metric of a million steps wants.
    """
    import pyarrow as pa

    source = str(path)
    try:
        table = _read_table(pa.BufferReader(data) if data is not None else pa.OSFile(source),
                            source, columns, names_encoded)  # fmt: skip
    except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException) as exc:
        raise FileFormatError(source, f"not a readable Parquet file ({exc})") from exc
    for column in ("step", "name"):
        if column in table.column_names and table.column(column).null_count:
            raise SchemaError(source, column, "column has null values")
    return table


def _read_table(
    stream: Any, source: str, columns: Sequence[str] | None, names_encoded: bool
) -> Any:  # fmt: skip
    # pyarrow.parquet imports pyarrow.dataset and pandas (~0.4 s); the reader underneath it does
    # not, which keeps the pre-commit hook and `gitml textconv` quick. Public API as a fallback.
    encoded = ["name"] if names_encoded else None
    try:
        from pyarrow._parquet import ParquetReader
    except ImportError:
        import pyarrow.parquet as pq

        file = pq.ParquetFile(stream, read_dictionary=encoded)
        _check_schema(source, file.schema_arrow, names_encoded)
        return file.read(columns=list(columns) if columns is not None else None)
    reader = ParquetReader()
    reader.open(stream, read_dictionary=encoded)
    _check_schema(source, reader.schema_arrow, names_encoded)
    if columns is None:
        return reader.read_all()
    return reader.read_all(column_indices=[reader.column_name_idx(c) for c in columns])


def _check_schema(source: str, schema: Any, names_encoded: bool) -> None:
    expected = expected_arrow_types()
    actual = {f.name: str(f.type) for f in schema}
    if names_encoded and "name" in actual:  # asked for as codes: the values' type is checked
        actual["name"] = str(schema.field("name").type.value_type)
    for name, type_ in expected.items():
        if name not in actual:
            raise SchemaError(source, name, "column is missing")
        if actual[name] != type_:
            raise SchemaError(source, name, f"column has type {actual[name]}, expected {type_}")
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise SchemaError(source, extra[0], "unexpected column")
    meta = {
        k.decode(errors="replace"): v.decode(errors="replace")
        for k, v in (schema.metadata or {}).items()
    }
    version = meta.get("gitml.schema_version")
    if version != str(store.SCHEMA_VERSION):
        raise SchemaError(source, "gitml.schema_version", f"metadata is {version!r}, expected '1'")
