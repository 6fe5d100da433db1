"""`gitml predict`: batch prediction over CSV or Parquet, streamed in chunks.

Memory stays flat whatever the input size: the input is read a chunk at a time (pyarrow's
streaming CSV reader, or Parquet row batches), each chunk is checked against the model's
signature, predicted and written, then dropped. The output is written next to its final name
and renamed at the end, so a failure never leaves half an output file.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.errors import UsageError
from gitml.repo import Repo
from gitml.serving.loading import InputError, load, predict
from gitml.serving.signature import check_frame

CHUNK_ROWS = 100_000
CSV_BLOCK_BYTES = 8 * 1024 * 1024
ARROW_TYPES = {"double": "double", "long": "int64", "boolean": "bool", "string": "string"}
SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction did."""

    rows: int
    seconds: float
    name: str
    version: int
    output: Path


def predict_file(
    repo: Repo,
    spec: str,
    source: Path,
    output: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    proba: bool = False,
    keep: tuple[str, ...] = (),
    progress: bool | None = None,
    allow_findings: bool = False,
) -> BatchResult:
    """Predict every row of ``source`` with ``spec``'s model and write ``output``.

    The model file is scanned before it is loaded, as `gitml serve` does (`loading.load`).
    """
    for path, what in ((source, "input"), (output, "--output")):
        if path.suffix.lower() not in SUFFIXES:
            raise UsageError(what, f"{path}: give a .csv or .parquet file")
    if not source.is_file():
        raise UsageError("input", f"{source}: no such file")
    if chunk_rows < 1:
        raise UsageError("--chunk-rows", f"{chunk_rows}: give a positive number of rows")
    loaded = load(repo, spec, allow_findings=allow_findings)
    model = loaded.model
    if proba and not hasattr(model, "predict_proba"):
        raise UsageError("--proba", f"{type(model).__name__} has no predict_proba")
    columns = loaded.inputs.columns
    started = time.perf_counter()
    reader = _Reader(source, columns, loaded.inputs.types, keep, chunk_rows)
    tmp = output.with_name(f".{output.name}.gitml-predict.tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    try:
        with reader, _Writer(tmp, output.suffix.lower()) as writer, _bar(reader, progress) as bar:
            for batch in reader:
                frame = batch.to_pandas()
                features = frame[columns] if columns else frame.drop(columns=list(keep))
                where = f"{source} rows {rows + 1}-{rows + len(frame)}"
                answers = _predict_chunk(loaded, features, where, proba)
                writer.write(_result(frame, keep, answers))
                rows += len(frame)
                bar.update(reader.progress() - bar.n)
            if not rows:
                writer.write(_empty(keep, reader))
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return BatchResult(rows, time.perf_counter() - started, loaded.name, loaded.number, output)


def _predict_chunk(loaded: Any, features: Any, where: str, proba: bool) -> dict[str, Any]:

    features = check_frame(loaded.inputs.signature, features, where=where)
    try:
        return predict(loaded, features, proba=proba)
    except InputError as exc:
        raise UsageError(where, exc.message) from exc


def _result(frame: Any, keep: tuple[str, ...], answers: dict[str, Any]) -> Any:
    import numpy as np
    import pyarrow as pa

    columns: dict[str, Any] = {k: pa.array(frame[k]) for k in keep}
    predictions = np.asarray(answers["predictions"])
    if predictions.ndim > 1:
        for i in range(predictions.shape[1]):
            columns[f"prediction_{i}"] = pa.array(predictions[:, i])
    else:
        columns["prediction"] = pa.array(predictions)
    if "probabilities" in answers:
        for i, label in enumerate(answers["classes"]):
            columns[f"proba_{label}"] = pa.array(answers["probabilities"][:, i])
    return pa.Table.from_pydict(columns)


def _empty(keep: tuple[str, ...], reader: _Reader) -> Any:
    import pyarrow as pa

    return pa.table({**{k: pa.array([]) for k in keep}, "prediction": pa.array([], pa.float64())})


class _Reader:
    """Row batches of a CSV or Parquet file, with only the columns prediction needs."""

    def __init__(
        self, path: Path, columns: list[str], types: dict[str, str], keep: tuple[str, ...],
        chunk_rows: int,
    ) -> None:  # fmt: skip
        import pyarrow as pa

        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        self.handle: Any = None
        self.batches: Any = None
        self.parquet: Any = None if self.csv else self._open_parquet()  # its footer, read once
        names = self._names()
        wanted = list(dict.fromkeys([*columns, *keep]))
        missing = [c for c in wanted if c not in names]
        if missing:
            what = "feature" if missing[0] in columns else "--keep column"
            raise UsageError(str(path), f"no {what} {missing[0]!r} (columns: {_short(names)})")
        self.columns = wanted or names
        self.types = {n: pa.type_for_alias(ARROW_TYPES[t]) for n, t in types.items()
                      if t in ARROW_TYPES}  # fmt: skip
        self.chunk_rows = chunk_rows
        self.total = path.stat().st_size if self.parquet is None else self.parquet.metadata.num_rows
        self.done = 0

    def _open_parquet(self) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:
            raise UsageError(str(self.path), f"not a readable Parquet file ({exc})") from exc

    def _names(self) -> list[str]:
        if not self.csv:
            return list(self.parquet.schema_arrow.names)
        import pyarrow as pa
        import pyarrow.csv as pacsv

        try:
            with pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=1 << 16)) as r:
                return list(r.schema.names)
        except pa.ArrowInvalid as exc:
            raise UsageError(str(self.path), f"not a readable CSV file ({exc})") from exc

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.batches is not None:
            self.batches.close()  # stops the CSV reader's threads before the file closes
        if self.handle is not None:
            self.handle.close()
        if self.parquet is not None:
            self.parquet.close()

    def __iter__(self) -> Any:
        self.batches = self._batches()
        return self.batches

    def _batches(self) -> Any:
        import pyarrow as pa

        try:
            yield from self._csv() if self.csv else self._parquet_batches()
        except pa.ArrowInvalid as exc:
            raise UsageError(str(self.path), f"cannot read it: {exc}") from exc

    def _csv(self) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # Arrow's own file, not a Python one: with a Python file object the reader's readahead
        # task calls back into Python, and on a header-only file it could still be alive as the
        # interpreter shut down, aborting the process after its work was done ("terminate called
        # without an active exception", 11 of 600 runs by hand; 0 of 600 with pa.OSFile).
        self.handle = pa.OSFile(str(self.path), "rb")
        typed = {n: t for n, t in self.types.items() if n in self.columns}
        # The typed columns are read as text and cast here: a conversion that fails inside the
        # streaming reader left a readahead task that aborted the process at exit (SIGABRT,
        # "terminate called without an active exception"), even with use_threads=False and
        # the reader closed. Text with Arrow's null markers ("", NA, null, nan...) is null.
        options = pacsv.ConvertOptions(
            include_columns=self.columns, strings_can_be_null=True,
            column_types={n: pa.string() if t != pa.string() else t for n, t in typed.items()},
        )  # fmt: skip
        pending = None
        rows = 0
        with pacsv.open_csv(
            self.handle,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
            convert_options=options,
        ) as reader:
            for raw in reader:
                batch = _cast(raw, typed, self.path, rows)
                rows += raw.num_rows
                self.done = self.handle.tell()
                pending = batch if pending is None else _concat(pending, batch)
                while pending.num_rows >= self.chunk_rows:
                    yield pending.slice(0, self.chunk_rows)
                    pending = pending.slice(self.chunk_rows)
        if pending is not None and pending.num_rows:
            yield pending
        self.done = self.total

    def _parquet_batches(self) -> Any:
        for batch in self.parquet.iter_batches(batch_size=self.chunk_rows, columns=self.columns):
            self.done += batch.num_rows
            yield batch

    def progress(self) -> int:
        """Bytes read (CSV) or rows read (Parquet) so far."""
        return self.done


def _cast(batch: Any, types: dict[str, Any], path: Path, before: int) -> Any:
    """``batch`` with its text columns cast to ``types``; a value that is not one is named."""
    import pyarrow as pa

    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        target = types.get(name)
        if target is None or target == column.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for at, value in enumerate(column.to_pylist()):
                try:
                    pa.array([value], pa.string()).cast(target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise UsageError(
                        str(path), f"cannot read it: row {before + at + 1}, column {name!r}: "
                                   f"{value!r} is not a {target}") from None  # fmt: skip
            raise
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _concat(first: Any, second: Any) -> Any:
    import pyarrow as pa

    table = pa.Table.from_batches([first, second]).combine_chunks()
    return table.to_batches(max_chunksize=table.num_rows)[0]


class _Writer:
    """Appends result tables to one CSV or Parquet file."""

    def __init__(self, path: Path, suffix: str) -> None:
        self.path = path
        self.suffix = suffix
        self.writer: Any = None

    def __enter__(self) -> _Writer:
        return self

    def write(self, table: Any) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.writer is None:
            open_writer = pacsv.CSVWriter if self.suffix == ".csv" else pq.ParquetWriter
            self.writer = open_writer(str(self.path), table.schema)
        self.writer.write_table(table)

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


def _bar(reader: _Reader, progress: bool | None) -> Any:
    from tqdm import tqdm

    unit = {"unit": "B", "unit_scale": True, "unit_divisor": 1024} if reader.csv else {
        "unit": " rows", "unit_scale": True}  # fmt: skip
    disable = None if progress is None else not progress
    return tqdm(total=reader.total, desc="predict", file=sys.stderr, disable=disable, **unit)


def _short(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
