"""scikit-learn integration: log an estimator's params, scores and fitted model in one call.

Example:
    >>> with gitml.start_run("rf") as run:
    ...     model = RandomForestClassifier(n_estimators=200).fit(X_train, y_train)
    ...     gitml.sklearn.log_estimator(run, model, X_train, y_train, X_val, y_val)

"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from gitml.errors import UsageError

if TYPE_CHECKING:
    from gitml.tracking.run import Run


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` as loggable values; nested estimators become their class name."""
    try:
        raw = estimator.get_params(deep=True)
    except AttributeError as exc:
        raise UsageError("estimator", f"{type(estimator).__name__} has no get_params()") from exc
    out: dict[str, Any] = {"estimator": type(estimator).__name__}
    for key, value in sorted(raw.items()):
        out[key] = _loggable(value)
    return out


def _loggable(value: Any) -> Any:
    if hasattr(value, "get_params"):
        return type(value).__name__
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value


def score_name(estimator: Any) -> str:
    """What `estimator.score` measures: accuracy for classifiers, r2 for regressors."""
    kind = getattr(estimator, "_estimator_type", None)
    if kind is None:
        tags = getattr(estimator, "__sklearn_tags__", None)
        kind = getattr(tags(), "estimator_type", None) if callable(tags) else None
    return {"classifier": "accuracy", "regressor": "r2"}.get(str(kind), "score")


def log_estimator(  # noqa: PLR0917 - mirrors scikit-learn's (X, y) call style
    run: Run,
    estimator: Any,
    X_train: Any = None,
    y_train: Any = None,
    X_val: Any = None,
    y_val: Any = None,
    *,
    artifact: str | os.PathLike[str] | None = "model.pkl",
) -> dict[str, float]:
    """Log a fitted estimator: params, training/validation scores, and the model as an artifact.

    Scores are `estimator.score` on each set, logged as ``training_<score>`` and
    ``validation_<score>`` (e.g. ``validation_accuracy``). The model is saved with joblib to
    ``artifact`` (None to skip), hashed and added to the DVC cache. Returns the scores.
    """
    run.log_params(estimator_params(estimator))
    name = score_name(estimator)
    scores: dict[str, float] = {}
    if X_train is not None and y_train is not None:
        scores[f"training_{name}"] = float(estimator.score(X_train, y_train))
    if X_val is not None and y_val is not None:
        scores[f"validation_{name}"] = float(estimator.score(X_val, y_val))
    if scores:
        run.log_metrics(scores)
    if artifact is not None:
        run.log_model(estimator, artifact)
    return scores
