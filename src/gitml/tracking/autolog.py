"""`gitml.autolog()`: record scikit-learn fits without changing the training code.

Like MLflow's `mlflow.sklearn.autolog()`: every outermost `fit` of a scikit-learn estimator logs
the estimator's params, its training score (``training_accuracy``, ``training_r2``...), its
per-iteration curves where it keeps them (``loss_curve_``, ``train_score_``,
``validation_scores_``) as step metrics, and the fitted model (``models/<class>.pkl``) to the
current run, started on the first fit (or the run of `gitml run`, which `gitml run --autolog`
turns this on for). A fit inside another fit (a pipeline's steps, a search's candidates) is not
logged on its own.

scikit-learn is never imported here: if it is not loaded yet, the patch is applied the moment
`sklearn.base` is, through an import hook.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import threading
from contextlib import suppress
from types import ModuleType
from typing import Any

from gitml import logs
from gitml.errors import GitmlError
from gitml.tracking.run import start_run
from gitml.tracking.sklearn import estimator_params, score_name

log = logs.get(__name__)


class _State(threading.local):
    depth = 0


_state = _State()
# The process-wide autolog switch and the run fits log to (started on the first fit).
_active: dict[str, Any] = {"enabled": False, "run": None}
CURVES = {"loss_curve_": "training_loss", "train_score_": "training_deviance",
          "validation_scores_": "validation_score"}  # fmt: skip


def autolog() -> None:
    """Log every scikit-learn fit from now on to the current run (see the module docstring)."""
    if _active["enabled"]:
        return
    _active["enabled"] = True
    on_import("sklearn.base", _patch)


def on_import(name: str, then: Any) -> None:
    """Call ``then(module)`` once module ``name`` is imported: now if it is already."""
    module = sys.modules.get(name)
    if module is not None:
        then(module)
    else:
        sys.meta_path.insert(0, _AfterImport(name, then))


def inside_fit() -> bool:
    """Whether a scikit-learn fit logged by autolog is running (it logs the model itself)."""
    return _state.depth > 0


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once ``name`` has been imported, before anyone else uses it."""

    def __init__(self, name: str, then: Any) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader, then = spec.loader, self.then
        original = loader.exec_module  # type: ignore[union-attr]

        def exec_module(module: ModuleType) -> None:
            original(module)
            then(module)

        loader.exec_module = exec_module  # type: ignore[union-attr, method-assign]
        return spec


def _patch(base: ModuleType) -> None:
    estimator = base.BaseEstimator
    for cls in _subclasses(estimator):
        _wrap_fit(cls)
    previous = estimator.__dict__.get("__init_subclass__")

    def init_subclass(cls: type, **kwargs: Any) -> None:
        if previous is not None:
            previous.__func__(cls, **kwargs)
        else:
            super(estimator, cls).__init_subclass__(**kwargs)
        _wrap_fit(cls)

    estimator.__init_subclass__ = classmethod(init_subclass)


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    stack = [cls]
    while stack:
        subs: list[type] = type.__subclasses__(stack.pop())
        out += subs
        stack += subs
    return out


def _wrap_fit(cls: type) -> None:
    fit = cls.__dict__.get("fit")
    if fit is None or getattr(fit, "_gitml_autolog", False):
        return

    @functools.wraps(fit)
    def logged_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = _state.depth
        _state.depth = depth + 1
        try:
            result = fit(self, *args, **kwargs)
        finally:
            _state.depth = depth
        if depth == 0:
            _log_fit(self, args, kwargs)
        return result

    logged_fit._gitml_autolog = True  # type: ignore[attr-defined]
    cls.fit = logged_fit  # type: ignore[attr-defined]


def _log_fit(estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Log one finished fit; a logging failure is reported, never raised into training."""
    try:
        run = current_run()
        with suppress(GitmlError):  # a later fit with other params: the first fit's stand
            run.log_params(estimator_params(estimator))
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if X is not None and y is not None and hasattr(estimator, "score"):
            run.log_metric(f"training_{score_name(estimator)}", float(estimator.score(X, y)))
        for attr, metric in CURVES.items():
            values = getattr(estimator, attr, None)
            if values is not None:
                for step, value in enumerate(values):
                    run.log_metric(metric, float(value), step=step)
        run.log_model(estimator, f"models/{type(estimator).__name__.lower()}.pkl")
    except Exception as exc:  # autologging must never break the user's training
        log.warning("gitml autolog: %s: %s", type(exc).__name__, exc)


def current_run() -> Any:
    """The run autologging logs to: the open one of this process, else a new (or joined) one."""
    run = _active["run"]
    if run is None or run._ended:
        run = _active["run"] = start_run()
    return run
