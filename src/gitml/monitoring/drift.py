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

from dataclasses import dataclass, field
from typing import Any

from gitml.errors import UsageError
from gitml.monitoring.drift_sources import Reference, cached_source
from gitml.monitoring.drift_stats import Profiled, Sample, compare_categorical, compare_numeric
from gitml.monitoring.profile import FeatureProfile, kind_of, profile_column, profile_frame
from gitml.repo import Repo
from gitml.serving.loading import load, predict

METHODS = ("auto", "ks", "wasserstein", "psi", "chisquare", "jensenshannon")
THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2}
P_VALUES = ("ks", "chisquare")  # drift when the p-value is below the threshold
NUMERIC_ONLY = ("ks", "wasserstein")
CATEGORICAL_ONLY = ("chisquare", "jensenshannon")
AUTO_SMALL = 1000
MISSING_THRESHOLD = 0.05
NEW_CATEGORY_THRESHOLD = 0.05
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


# -- where the two sides come from -------------------------------------------------------------


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
    ref_columns = list(reference.profiles or {}) or [str(c) for c in reference.frame.columns]
    features = list(only) or reference.features or [c for c in ref_columns if c in current]
    missing = [f for f in features if f not in current.columns]
    if missing:
        raise UsageError("--current", f"{current_label}: no column {missing[0]!r}")
    ref_profiles = reference.profiles
    if ref_profiles is None:
        ref_profiles = profile_frame(reference.frame, features)
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
        cur = Sample(current.dropna().to_numpy(dtype="float64"), cur_missing)
        ref: Any = Sample(raw.dropna(), int(raw.isna().sum())) if raw is not None else Profiled(
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

    if "prediction" not in current.columns or reference.model is None:
        return None
    raw = reference.frame if reference.frame is not None else cached_source(repo, reference)
    if raw is None:
        notes.append("prediction: skipped (the training data is not in the local DVC cache)")
        return None

    loaded = load(repo, reference.model)
    frame = loaded.inputs.frame(raw[loaded.inputs.columns].to_dict("records"), "reference")
    predicted = pd.Series(predict(loaded, frame)["predictions"])
    served = current["prediction"]
    if predicted.dtype.kind in "iub":  # class labels: compare as categories
        predicted, served = predicted.astype(str), served.astype(str)
    profile = profile_column("prediction", predicted)
    if profile is None:
        return None
    return _feature("prediction", profile, predicted, served, settings)


# -- the report --------------------------------------------------------------------------------
