"""Step series for charts: downsampled per pixel bucket so a million steps draw at once.

A chart `buckets` pixels wide needs, per pixel, the smallest and largest value there (drawing
both keeps every spike: no aliasing, unlike keeping every n-th point) and the first and last
(so lines between buckets join where the data does). `downsample` computes exactly that with
numpy in one pass; a series with no more points than buckets is returned as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Series:
    """One metric of one run, ready to draw: x, and y or (y_min, y_max) per bucket."""

    name: str
    x: list[float] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)
    y_min: list[float | None] | None = None  # set when downsampled
    y_max: list[float | None] | None = None
    points: int = 0  # in the run, before downsampling
    x_range: tuple[float, float] | None = None  # of the whole series

    def as_json(self) -> dict[str, Any]:
        """The chart's data: plain lists, NaN and infinities as null."""
        out: dict[str, Any] = {"name": self.name, "points": self.points, "x": self.x, "y": self.y,
                               "range": self.x_range}  # fmt: skip
        if self.y_min is not None:
            out |= {"min": self.y_min, "max": self.y_max, "downsampled": True}
        return out


def downsample(
    name: str, xs: Any, ys: Any, *, buckets: int, x0: float | None = None, x1: float | None = None
) -> Series:
    """``ys`` over ``xs`` (sorted) cut to ``[x0, x1]``, reduced to at most ``buckets`` buckets.

    Each bucket keeps its true minimum and maximum and its mean x; a window with fewer points
    than buckets comes back raw, so zooming in shows the data itself.
    """
    import numpy as np

    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    series = Series(name, points=len(x))
    if len(x) == 0:
        return series
    series.x_range = (float(x[0]), float(x[-1]))
    lo = 0 if x0 is None else int(np.searchsorted(x, x0, side="left"))
    hi = len(x) if x1 is None else int(np.searchsorted(x, x1, side="right"))
    x, y = x[lo:hi], y[lo:hi]
    buckets = max(1, int(buckets))
    if len(x) <= buckets:
        series.x, series.y = x.tolist(), _nullable(y)
        return series
    edges = np.linspace(x[0], x[-1], buckets + 1)
    starts = np.unique(np.searchsorted(x, edges[:-1], side="left"))
    starts = starts[starts < len(x)]
    finite = np.where(np.isfinite(y), y, np.nan)
    with np.errstate(all="ignore"):
        low = np.fmin.reduceat(finite, starts)
        high = np.fmax.reduceat(finite, starts)
        counts = np.diff(np.append(starts, len(x)))
        mid = np.add.reduceat(x, starts) / counts
    series.x = mid.tolist()
    series.y_min, series.y_max = _nullable(low), _nullable(high)
    series.y = _nullable((low + high) / 2)
    return series


def _nullable(values: Any) -> list[float | None]:
    """Floats, with NaN and infinities as None (JSON has neither)."""
    import numpy as np

    return [float(v) if np.isfinite(v) else None for v in values]


@dataclass
class Steps:
    """A run's step metrics as numpy columns; ``codes`` index into ``names``.

    Built from Arrow tables read with the name column dictionary-encoded, without
    ``Array.to_numpy`` (whose first call imports pandas: 0.26 s and 33 MiB in a server).
    """

    names: list[str]
    codes: Any  # int32 per row
    columns: dict[str, Any]  # column -> float64 or int64 per row

    @classmethod
    def from_table(cls, table: Any) -> Steps:
        """An Arrow table whose ``name`` column is dictionary-encoded."""
        import numpy as np

        where: dict[str, int] = {}
        codes = []
        for chunk in table.column("name").chunks:  # each row group has its own dictionary
            remap = np.array([where.setdefault(n, len(where)) for n in chunk.dictionary.to_pylist()]
                             or [0], dtype=np.int32)  # fmt: skip
            codes.append(remap[_numbers(chunk.indices, np.int32)])
        columns = {c: _column(table.column(c)) for c in table.column_names if c != "name"}
        return cls(list(where), _joined(codes, np.int32), columns)

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, float, str]]) -> Steps:
        """Journal rows: (step, timestamp ms, value, name)."""
        import numpy as np

        where: dict[str, int] = {}
        codes = np.array([where.setdefault(r[3], len(where)) for r in rows], dtype=np.int32)
        columns = {"step": np.array([r[0] for r in rows], dtype=np.int64),
                   "timestamp": np.array([r[1] or 0 for r in rows], dtype=np.int64),
                   "value": np.array([r[2] for r in rows], dtype=np.float64)}  # fmt: skip
        return cls(list(where), codes, columns)

    def joined(self, other: Steps) -> Steps:
        """Both runs of rows, as one (the stored file and the live journals)."""
        import numpy as np

        where = {n: i for i, n in enumerate(self.names)}
        remap = np.array([where.setdefault(n, len(where)) for n in other.names] or [0], np.int32)
        columns = {c: np.concatenate([v, other.columns[c]]) for c, v in self.columns.items()}
        codes = np.concatenate(
            [self.codes, remap[other.codes] if len(other.codes) else other.codes]
        )
        return Steps(list(where), codes, columns)

    def counts(self) -> dict[str, int]:
        """Rows per metric name."""
        import numpy as np

        tally = np.bincount(self.codes, minlength=len(self.names))
        return {n: int(c) for n, c in zip(self.names, tally, strict=True) if c}

    def pick(self, name: str, x: str) -> tuple[Any, Any]:
        """``name``'s x column and values, sorted by x (stably: the file's order within a step)."""
        import numpy as np

        if name not in self.names:
            return np.empty(0), np.empty(0)
        mask = self.codes == self.names.index(name)
        xs, ys = self.columns[x][mask], self.columns["value"][mask]
        if len(xs) > 1 and not bool(np.all(xs[1:] >= xs[:-1])):
            order = np.argsort(xs, kind="stable")
            xs, ys = xs[order], ys[order]
        return xs, ys


def _numbers(array: Any, dtype: Any) -> Any:
    """A fixed-width Arrow array's values as numpy (nulls: 0, or NaN for floats)."""
    import numpy as np

    values = np.frombuffer(array.buffers()[1], dtype=dtype)[
        array.offset : array.offset + len(array)
    ]
    if not array.null_count:
        return values
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, bitorder="little")[array.offset : array.offset + len(array)]
    return np.where(valid.astype(bool), values, np.nan if values.dtype.kind == "f" else 0)


def _column(column: Any) -> Any:
    """A step, timestamp or value column as one numpy array."""
    import numpy as np

    dtype = np.float64 if str(column.type) == "double" else np.int64  # timestamp[ms]: int64 ms
    return _joined([_numbers(chunk, dtype) for chunk in column.chunks], dtype)


def _joined(parts: list[Any], dtype: Any) -> Any:
    import numpy as np

    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
