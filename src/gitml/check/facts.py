"""What a scikit-learn model says about its inputs and outputs, read without unpickling it.

The scan's walk (`check.pickles._Walk`) runs joblib's own unpickler with every import replaced
by an inert stand-in. Asked to, the stand-ins keep the state the file gives them, and small
numeric arrays are read as plain numbers (`numpy.frombuffer`, no pickle). So a fitted
estimator's ``feature_names_in_``, ``n_features_in_`` and ``classes_`` (of a Pipeline: its first
and last steps') are known without running anything the file names: registering a model
whose training data is known infers its signature with no unpickling at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.check.pickles import Recorded, Unreadable, _decompressed, _Walk


@dataclass(frozen=True)
class ModelFacts:
    """The attributes a signature needs, as the file holds them."""

    features: list[str]  # feature_names_in_, [] when fitted on an unnamed array
    n_features: int | None
    classes: list[Any] | None  # classes_ of a classifier; None for a regressor


def model_facts(path: Path, fmt: str) -> ModelFacts | None:
    """The facts of the joblib or pickle model at ``path``; None when they cannot be told."""
    if fmt not in ("joblib", "pickle"):
        return None
    try:
        data = _decompressed(path) if fmt == "joblib" else path.read_bytes()
        walk = _Walk(data, joblib=fmt == "joblib", facts=True)
        walk.run()
    except (Unreadable, OSError):
        return None
    first, last = _step(walk.root, 0), _step(walk.root, -1)
    features = _values(_state(first).get("feature_names_in_"))
    n_features = _state(first).get("n_features_in_")
    classes = _values(_state(last).get("classes_"))
    if classes is not None and any(isinstance(c, list) for c in classes):
        return None  # multi-output: leave it to the model
    return ModelFacts(
        features=[str(f) for f in features or []],
        n_features=n_features if isinstance(n_features, int) else None,
        classes=classes,
    )


def _state(obj: Any) -> dict[str, Any]:
    state = obj.state if isinstance(obj, Recorded) else None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]  # (dict, slots) as some classes pickle it
    return state if isinstance(state, dict) else {}


def _step(obj: Any, index: int) -> Any:
    """A Pipeline's first or last step, recursively; any other estimator itself."""
    steps = _state(obj).get("steps")
    if isinstance(steps, list) and steps and isinstance(steps[index], tuple | list):
        step = steps[index]
        if len(step) == 2 and isinstance(step[1], Recorded):
            return _step(step[1], index)
    return obj


def _values(value: Any) -> list[Any] | None:
    """An array attribute's items: read numbers, or an object array's list."""
    import numpy

    if isinstance(value, numpy.ndarray):
        return [v.item() if hasattr(v, "item") else v for v in value.ravel()]
    if isinstance(value, Recorded) and value.name.endswith("._reconstruct"):
        state = value.state  # numpy's (version, shape, dtype, fortran, items) for object arrays
        if isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], list):
            return list(state[4])
    return None
