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
