"""The figures `gitml drift` computes for one feature.

PSI, KS, Wasserstein, chi-square and Jensen-Shannon, from a raw sample or from a stored profile
(quantiles, category counts).
"""

from __future__ import annotations

import math
from typing import Any

from gitml.monitoring.profile import FeatureProfile

EPSILON = 1e-4  # empty bins, so PSI stays finite


class Sample:
    """Raw numeric values: exact empirical CDF and quantiles."""

    def __init__(self, values: Any, missing: int) -> None:
        import numpy as np

        data = np.asarray(values, dtype="float64")
        finite = data[np.isfinite(data)]
        self.values = np.sort(finite)
        self.n = len(self.values)
        self.missing = missing + len(data) - len(finite)
        self.std = float(self.values.std()) if self.n else 0.0

    def cdf(self, x: Any) -> Any:
        """The share of values at or below each of ``x``."""
        import numpy as np

        return np.searchsorted(self.values, x, side="right") / max(self.n, 1)

    def quantile(self, probs: Any) -> Any:
        """The values at the quantiles ``probs``."""
        import numpy as np

        return np.quantile(self.values, probs)


class Profiled:
    """A numeric profile: the CDF rebuilt from 201 quantiles, linear in between."""

    def __init__(self, profile: FeatureProfile) -> None:
        import numpy as np

        self.q = np.asarray(profile.quantiles, dtype="float64")
        self.p = np.linspace(0, 1, len(self.q))
        self.n = profile.count
        self.missing = profile.missing
        self.std = float(profile.std or 0.0)
        self.values = None

    def cdf(self, x: Any) -> Any:
        """The share of values at or below each of ``x``."""
        import numpy as np

        x = np.asarray(x, dtype="float64")
        i = np.searchsorted(self.q, x, side="right")
        inside = (i > 0) & (i < len(self.q))
        lo = np.clip(i - 1, 0, len(self.q) - 1)
        hi = np.clip(i, 0, len(self.q) - 1)
        width = np.where(inside, self.q[hi] - self.q[lo], 1.0)
        share = np.where(inside, (x - self.q[lo]) / np.where(width > 0, width, 1.0), 0.0)
        out = np.where(inside, self.p[lo] + share * (self.p[hi] - self.p[lo]), 0.0)
        return np.where(i >= len(self.q), 1.0, out)

    def quantile(self, probs: Any) -> Any:
        """The values at the quantiles ``probs``."""
        import numpy as np

        return np.interp(probs, self.p, self.q)


def compare_numeric(reference: Any, current: Sample) -> dict[str, Any]:
    """PSI, KS, normalised Wasserstein and Jensen-Shannon of two numeric sides."""
    import numpy as np

    edges = np.unique(reference.quantile(np.linspace(0.1, 0.9, 9)))
    ref = _bins(reference.cdf(edges))
    cur = _bins(current.cdf(edges))
    out: dict[str, Any] = {"psi": psi(ref, cur), "jensenshannon": jensen_shannon(ref, cur)}
    if reference.values is not None:
        from scipy import stats

        ks = stats.ks_2samp(reference.values, current.values)
        out["ks"], out["ks_p_value"] = float(ks.statistic), float(ks.pvalue)
        distance = float(stats.wasserstein_distance(reference.values, current.values))
    else:
        from scipy.special import kolmogorov

        points = np.concatenate([current.values, reference.q])
        d = float(np.max(np.abs(reference.cdf(points) - current.cdf(points))))
        n, m = reference.n, current.n
        out["ks"], out["ks_p_value"] = d, float(kolmogorov(math.sqrt(n * m / (n + m)) * d))
        grid = np.linspace(0, 1, 2001)
        distance = float(np.mean(np.abs(reference.quantile(grid) - current.quantile(grid))))
    out["wasserstein"] = distance / reference.std if reference.std > 0 else distance
    return out


def _bins(cdf_at_edges: Any) -> Any:
    import numpy as np

    return np.diff(np.concatenate([[0.0], cdf_at_edges, [1.0]]))


def psi(reference: Any, current: Any) -> float:
    """Population stability index of two binned distributions (empty bins at 1e-4)."""
    import numpy as np

    r = np.clip(np.asarray(reference, dtype="float64"), EPSILON, None)
    c = np.clip(np.asarray(current, dtype="float64"), EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (base 2, so 0..1) of two binned distributions."""
    import numpy as np

    r = np.asarray(reference, dtype="float64")
    c = np.asarray(current, dtype="float64")
    r, c = r / r.sum(), c / c.sum()
    m = (r + c) / 2

    def kl(a: Any) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return math.sqrt(max((kl(r) + kl(c)) / 2, 0.0))


def compare_categorical(reference: dict[str, int], other: int, current: dict[str, int]) -> dict:
    """PSI, chi-square p-value, Jensen-Shannon and new-category share of two count tables."""
    import numpy as np
    from scipy.stats import chi2_contingency

    categories = sorted(set(reference) | set(current))
    ref = np.array([reference.get(c, 0) for c in categories] + [other], dtype="float64")
    cur = np.array([current.get(c, 0) for c in categories] + [0], dtype="float64")
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    table = np.vstack([ref, cur])
    p_value = 1.0 if table.shape[1] < 2 else float(chi2_contingency(table).pvalue)
    total = max(sum(current.values()), 1)
    new = sum(v for c, v in current.items() if c not in reference) / total
    return {
        "psi": psi(ref / ref.sum(), cur / max(cur.sum(), 1)),
        "chisquare_p_value": p_value,
        "jensenshannon": jensen_shannon(ref, cur) if cur.sum() else 1.0,
        "new_categories": new,
    }
