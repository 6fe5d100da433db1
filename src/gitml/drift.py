"""`gitml drift`: checks that new data still looks like what the model was trained on.

Per feature, against a reference (a data file, a run's input, or a registered model's training
input, through its stored profile when there is one):

- numeric: PSI on the reference's deciles, Kolmogorov-Smirnov (statistic and p-value), and the
  Wasserstein distance divided by the reference's standard deviation;
- categorical: PSI over categories, chi-square test of homogeneity, Jensen-Shannon distance
  (base 2), and the share of current values in categories the reference never had;
- both: the missing-value rate on each side;
- the model's predictions, when the current data carries them (a request log) and the
  reference's can be computed.

Which figure decides, by default ("auto", Evidently's rule, and why): the p-value tests (KS,
chi-square, p < 0.05) for references of at most 1,000 rows, and distances (Wasserstein for
numbers, Jensen-Shannon for categories, > 0.1) above that. A p-value answers "are these two
samples from exactly the same distribution?", and with enough rows the answer is "no" for any
shift however small (evidently issue #50): with 100,000 rows a KS test flags a shift of 1% of a
standard deviation. A distance measures how large the shift is and does not grow with the sample.
PSI is always reported; 0.1 and 0.25 are its usual "moderate" and "major" marks. P-value
thresholds are divided by the number of features checked (Bonferroni; ``[drift] correction =
"none"`` turns it off): with 13 features at p < 0.05 each, 49% of same-distribution samples
would flag some feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.errors import UsageError
from gitml.profile import FeatureProfile
from gitml.repo import Repo

METHODS = ("auto", "ks", "wasserstein", "psi", "chisquare", "jensenshannon")
THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2}
P_VALUES = ("ks", "chisquare")  # drift when the p-value is below the threshold
NUMERIC_ONLY = ("ks", "wasserstein")
CATEGORICAL_ONLY = ("chisquare", "jensenshannon")
AUTO_SMALL = 1000
MISSING_THRESHOLD = 0.05
NEW_CATEGORY_THRESHOLD = 0.05
EPSILON = 1e-4  # empty bins, so PSI stays finite
REQUESTS = "requests"
FEW_ROWS = 100


@dataclass(frozen=True)
class Settings:
    """How drift is decided: a method and threshold, per feature where configured."""

    method: str = "auto"
    threshold: float | None = None
    missing_threshold: float = MISSING_THRESHOLD
    new_category_threshold: float = NEW_CATEGORY_THRESHOLD
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    correction: str = "bonferroni"

    @classmethod
    def from_config(cls, repo: Repo, method: str | None, threshold: float | None) -> Settings:
        """`[drift]` of the project config, overridden by the command line."""
        conf = repo.config.get("drift", {})
        return cls(
            method=method or conf.get("method", "auto"),
            threshold=threshold if threshold is not None else conf.get("threshold"),
            missing_threshold=conf.get("missing_threshold", MISSING_THRESHOLD),
            new_category_threshold=conf.get("new_category_threshold", NEW_CATEGORY_THRESHOLD),
            features=conf.get("features", {}),
            correction=conf.get("correction", "bonferroni"),
        )

    def decide(
        self, feature: str, kind: str, reference_rows: int, tests: int = 1
    ) -> tuple[str, float]:
        """The method and threshold for one feature of ``tests`` checked together.

        A p-value threshold is divided by the number of features (Bonferroni), so checking 13
        features keeps a 5% chance of any false alarm instead of 1 - 0.95**13 = 49%.
        """
        own = self.features.get(feature, {})
        method = own.get("method", self.method)
        if (
            method == "auto"
            or (kind == "numeric" and method in CATEGORICAL_ONLY)
            or (kind == "categorical" and method in NUMERIC_ONLY)
        ):
            small = reference_rows <= AUTO_SMALL
            if kind == "numeric":
                method = "ks" if small else "wasserstein"
            else:
                method = "chisquare" if small else "jensenshannon"
        threshold = own.get("threshold", self.threshold if method == self.method else None)
        value = float(threshold if threshold is not None else THRESHOLDS[method])
        if method in P_VALUES and self.correction == "bonferroni" and "threshold" not in own:
            value /= max(tests, 1)
        return method, value


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison; ``statistic`` is the deciding method's figure."""

    feature: str
    kind: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    reason: str
    psi: float
    reference_rows: int
    current_rows: int
    reference_missing: float
    current_missing: float
    ks: float | None = None
    ks_p_value: float | None = None
    wasserstein: float | None = None
    jensenshannon: float | None = None
    chisquare_p_value: float | None = None
    new_categories: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """Every feature's comparison, and where the two sides came from."""

    name: str
    reference: str
    current: str
    reference_rows: int
    current_rows: int
    features: list[FeatureDrift]
    notes: list[str]

    @property
    def drifted(self) -> list[str]:
        """The features that drifted."""
        return [f.feature for f in self.features if f.drifted]


# -- the two sides of a numeric comparison -----------------------------------------------------


class _Sample:
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
        import numpy as np

        return np.searchsorted(self.values, x, side="right") / max(self.n, 1)

    def quantile(self, probs: Any) -> Any:
        import numpy as np

        return np.quantile(self.values, probs)


class _Profiled:
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
        import numpy as np

        return np.interp(probs, self.p, self.q)


def compare_numeric(reference: Any, current: _Sample) -> dict[str, Any]:
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


# -- where the two sides come from -------------------------------------------------------------


@dataclass
class Reference:
    """The reference side: profiles, or raw data, and the model when it names one."""

    label: str
    name: str
    profiles: dict[str, FeatureProfile] | None = None
    frame: Any = None
    features: list[str] | None = None
    model: Any = None  # name@alias, for prediction drift
    source: tuple[str, dict[str, Any]] | None = None  # the profiled input: path, md5 and size


def resolve_reference(repo: Repo, spec: str) -> Reference:
    """A data file, a run id, or ``name@alias`` (its run's training input and its model)."""
    from gitml.profile import read_table

    path = Path(spec)
    if path.suffix.lower() in (".csv", ".parquet", ".pq"):
        if not path.is_file():
            raise UsageError("--reference", f"{spec}: no such file")
        return Reference(label=spec, name=path.stem, frame=read_table(path))
    if "@" in spec:
        from gitml import registry

        doc, version = registry.resolve(repo, spec)
        features = [c["name"] for c in (version.get("signature") or {}).get("inputs", [])]
        ref = _from_run(repo, version["run"], features or None)
        ref.label = f"{spec} (v{version['version']}, run {version['run']}, {ref.label})"
        ref.name = doc["name"]
        ref.model = spec
        return ref
    return _from_run(repo, spec, None)


def _from_run(repo: Repo, run_ref: str, features: list[str] | None) -> Reference:
    """A run's profiled (or else first tabular) input that holds the features."""
    from gitml.profile import profile_path, read_profile
    from gitml.query.api import resolve
    from gitml.query.index import record_of

    run = resolve(repo, run_ref)
    inputs = record_of(repo, run).get("inputs") or {}
    tabular = {p: r for p, r in inputs.items() if p.endswith((".csv", ".parquet", ".pq"))}
    if not tabular:
        raise UsageError("--reference", f"run {run.run_id} logged no CSV or Parquet input")
    for input_path, ref in tabular.items():
        if "profile" not in ref:
            continue
        file = profile_path(repo.run_dir(run.run_id), input_path)
        if file.is_file():
            profiles = read_profile(file)
        elif run.commit:
            profiles = _profile_at(repo, run.commit, file)
        else:
            continue
        if not features or set(features) <= set(profiles):
            label = f"profile of {input_path}"
            return Reference(label, run.run_id, profiles=profiles, features=features,
                             source=(input_path, ref))  # fmt: skip
    for input_path, ref in tabular.items():
        frame = _read_input(repo, input_path, ref)
        if not features or set(features) <= set(map(str, frame.columns)):
            return Reference(f"{input_path} from the DVC cache", run.run_id, frame=frame,
                             features=features)  # fmt: skip
    raise UsageError("--reference", f"run {run.run_id}: no input holds the model's features")


def _profile_at(repo: Repo, commit: str, file: Path) -> dict[str, FeatureProfile]:
    import tempfile

    from gitml import git
    from gitml.profile import read_profile

    data = git.read_file_at(repo.root, commit, file.relative_to(repo.root).as_posix())
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        tmp.write(data)
        tmp.flush()
        return read_profile(Path(tmp.name))


def load_current(repo: Repo, spec: str, reference: Reference) -> tuple[str, Any]:
    """A data file, or `requests` / `requests:<name>`: what a served model was asked."""
    from gitml.monitor import read_requests
    from gitml.profile import read_table

    if spec == REQUESTS or spec.startswith(f"{REQUESTS}:"):
        name = spec.partition(":")[2] or reference.name
        frame = read_requests(repo, name)
        if frame.empty:
            raise UsageError("--current", f"{spec}: model {name!r} has no logged requests")
        columns = {c: c.removeprefix("input.") for c in frame.columns if c.startswith("input.")}
        keep = [*columns, *(["prediction"] if "prediction" in frame.columns else [])]
        return f"{len(frame)} requests served for {name}", frame[keep].rename(columns=columns)
    path = Path(spec)
    if not path.is_file():
        raise UsageError("--current", f"{spec}: no such file (or give requests:<model>)")
    frame = read_table(path)
    if frame is None:
        raise UsageError("--current", f"{spec}: give a .csv or .parquet file, or requests")
    return spec, frame


# -- the comparison ----------------------------------------------------------------------------


def compare(
    repo: Repo,
    reference: Reference,
    current: Any,
    current_label: str,
    settings: Settings,
    *,
    only: tuple[str, ...] = (),
) -> DriftReport:
    """Compare every shared feature (the model's, when the reference names one)."""
    from gitml.profile import kind_of, profile_frame

    ref_columns = list(reference.profiles or {}) or [str(c) for c in reference.frame.columns]
    features = list(only) or reference.features or [c for c in ref_columns if c in current]
    missing = [f for f in features if f not in current.columns]
    if missing:
        raise UsageError("--current", f"{current_label}: no column {missing[0]!r}")
    ref_profiles = reference.profiles
    if ref_profiles is None:
        ref_profiles = profile_frame(reference.frame[features])
    results, notes = [], []
    for feature in features:
        if feature not in ref_profiles:
            notes.append(f"{feature}: skipped (not in the reference, or a datetime)")
            continue
        profile = ref_profiles[feature]
        kind = kind_of(current[feature].dtype)
        if kind is None or (kind != profile.kind and profile.kind == "numeric"):
            notes.append(f"{feature}: skipped (reference is {profile.kind}, current is {kind})")
            continue
        ref_side = reference.frame[feature] if reference.frame is not None else None
        results.append(
            _feature(feature, profile, ref_side, current[feature], settings, tests=len(features))
        )
    if len(current) < FEW_ROWS:
        notes.append(f"only {len(current)} current rows: PSI and the tests are unreliable "
                     f"under {FEW_ROWS}")  # fmt: skip
    prediction = _prediction_drift(repo, reference, current, settings, notes)
    if prediction is not None:
        results.append(prediction)
    rows = reference.frame.shape[0] if reference.frame is not None else max(
        (p.rows for p in ref_profiles.values()), default=0)  # fmt: skip
    return DriftReport(reference.name, reference.label, current_label, rows, len(current),
                       results, notes)  # fmt: skip


def _feature(
    feature: str, profile: FeatureProfile, raw: Any, current: Any, settings: Settings, *,
    tests: int = 1,
) -> FeatureDrift:  # fmt: skip
    cur_missing = int(current.isna().sum())
    if profile.kind == "numeric":
        cur = _Sample(current.dropna().to_numpy(dtype="float64"), cur_missing)
        ref: Any = _Sample(raw.dropna(), int(raw.isna().sum())) if raw is not None else _Profiled(
            profile)  # fmt: skip
        figures = compare_numeric(ref, cur)
        n_cur, cur_missing = cur.n, cur.missing
    else:
        counts = current.dropna().astype(str).value_counts()
        figures = compare_categorical(
            dict(zip(profile.categories, profile.counts, strict=True)), profile.other,
            {str(k): int(v) for k, v in counts.items()},
        )  # fmt: skip
        n_cur = int(counts.sum())
    method, threshold = settings.decide(feature, profile.kind, profile.rows, tests)
    statistic = figures["ks_p_value" if method == "ks" else
                        "chisquare_p_value" if method == "chisquare" else method]  # fmt: skip
    ref_missing = profile.missing / max(profile.rows, 1)
    cur_missing_rate = cur_missing / max(n_cur + cur_missing, 1)
    reasons = []
    if (statistic < threshold) if method in P_VALUES else (statistic > threshold):
        sign = "<" if method in P_VALUES else ">"
        what = f"{method} p" if method in P_VALUES else method
        reasons.append(f"{what} {statistic:.3g} {sign} {threshold:.3g}")
    if cur_missing_rate - ref_missing > settings.missing_threshold:
        reasons.append(f"missing {cur_missing_rate:.1%} (reference {ref_missing:.1%})")
    new = figures.get("new_categories")
    if new is not None and new > settings.new_category_threshold:
        reasons.append(f"new categories {new:.1%}")
    return FeatureDrift(
        feature=feature, kind=profile.kind, method=method, statistic=float(statistic),
        threshold=threshold, drifted=bool(reasons), reason="; ".join(reasons),
        psi=figures["psi"], reference_rows=profile.rows, current_rows=n_cur + cur_missing,
        reference_missing=ref_missing, current_missing=cur_missing_rate,
        ks=figures.get("ks"), ks_p_value=figures.get("ks_p_value"),
        wasserstein=figures.get("wasserstein"), jensenshannon=figures.get("jensenshannon"),
        chisquare_p_value=figures.get("chisquare_p_value"), new_categories=new,
    )  # fmt: skip


def _prediction_drift(
    repo: Repo, reference: Reference, current: Any, settings: Settings, notes: list[str]
) -> FeatureDrift | None:
    """The served predictions against the model's own on the reference data."""
    import pandas as pd

    from gitml.profile import profile_column

    if "prediction" not in current.columns or reference.model is None:
        return None
    raw = reference.frame if reference.frame is not None else _cached_source(repo, reference)
    if raw is None:
        notes.append("prediction: skipped (the training data is not in the local DVC cache)")
        return None
    from gitml.loading import load, predict

    loaded = load(repo, reference.model)
    frame = loaded.inputs.frame(raw[loaded.inputs.columns].to_dict("records"), "reference")
    predicted = pd.Series(predict(loaded, frame)["predictions"])
    if predicted.dtype.kind in "iub":  # class labels: compare as categories
        predicted = predicted.astype(str)
        current = current.assign(prediction=current["prediction"].astype(str))
    profile = profile_column("prediction", predicted)
    if profile is None:
        return None
    return _feature("prediction", profile, predicted, current["prediction"], settings)


def _cached_source(repo: Repo, reference: Reference) -> Any:
    """The profiled training data itself, when the local DVC cache has it (never fetched)."""
    from gitml.errors import GitmlError

    if reference.source is None:
        return None
    try:
        return _read_input(repo, *reference.source, fetch=False)
    except GitmlError:
        return None


def _read_input(repo: Repo, path: str, ref: dict[str, Any], *, fetch: bool = True) -> Any:
    """A run's CSV or Parquet input, read from its verified DVC cache object."""
    from gitml.data import ArtifactRef
    from gitml.data.checkout import verified_object
    from gitml.profile import read_table

    obj = verified_object(repo.root, ArtifactRef(md5=ref["md5"], size=ref["size"]), fetch=fetch)
    return read_table(obj, suffix=Path(path).suffix)


# -- the report --------------------------------------------------------------------------------


def save(repo: Repo, report: DriftReport) -> tuple[Path, Path]:
    """Write the TOML summary and the Parquet detail under `.gitml/monitor/<name>/`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gitml import store
    from gitml.monitor import MONITOR_DIR

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
