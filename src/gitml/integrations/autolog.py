"""`gitml.autolog()`: log scikit-learn fits and every framework below without changing code.

scikit-learn is `gitml.tracking.autolog`'s. For each framework here, the moment it is imported
(or now, if it already is), its training entry point gets the gitml callback added, unless the
caller passed one already:

- XGBoost: `xgboost.train` (its scikit-learn models train through it too);
- LightGBM: `lightgbm.train` (likewise), the booster logged when `train` returns;
- Keras 3: `keras.Model.fit`;
- Optuna: `optuna.Study.optimize`, one run per trial;
- PyTorch Lightning: a `Trainer` made without a logger gets `GitmlLogger`;
- Hugging Face `transformers`: every `Trainer` gets `GitmlCallback`.

A model the scikit-learn autolog logs (an `XGBClassifier` fit) is not logged a second time.
None of these frameworks is imported here.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gitml.integrations._common import log, run_of
from gitml.tracking import autolog as sklearn_autolog

_done: set[str] = set()


def autolog() -> None:
    """Log scikit-learn fits, and the training of each framework below, to the current run."""
    sklearn_autolog.autolog()
    for name, patch in PATCHES.items():
        if name not in _done:
            _done.add(name)
            sklearn_autolog.on_import(name, _safely(name, patch))


def _safely(name: str, patch: Callable[[ModuleType], None]) -> Callable[[ModuleType], None]:
    def apply(module: ModuleType) -> None:
        try:
            patch(module)
        except Exception as exc:  # another version of the framework: train without autolog
            log.warning("gitml autolog: cannot hook into %s: %s: %s", name, type(exc).__name__,
                        exc)  # fmt: skip

    return apply


def _with_callback(train: Callable[..., Any], make: Callable[[], Any], kind: type | None,
                   after: Callable[[Any], None] | None = None) -> Callable[..., Any]:  # fmt: skip
    """``train`` with ``make()`` appended to its ``callbacks`` (unless one of ``kind`` is)."""

    @functools.wraps(train)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        callbacks = list(kwargs.get("callbacks") or [])
        if kind is None or not any(isinstance(c, kind) for c in callbacks):
            callbacks.append(make())
        kwargs["callbacks"] = callbacks
        result = train(*args, **kwargs)
        if after is not None:
            after(result)
        return result

    wrapped._gitml_autolog = True  # type: ignore[attr-defined]
    return wrapped


def _xgboost(module: ModuleType) -> None:
    from gitml.integrations.xgboost import GitmlCallback

    train = module.training.train
    if getattr(train, "_gitml_autolog", False):
        return
    patched = _with_callback(
        train, lambda: GitmlCallback(log_model=not sklearn_autolog.inside_fit()), GitmlCallback
    )
    for owner in (module, module.training, importlib.import_module("xgboost.sklearn")):
        if getattr(owner, "train", None) is train:
            owner.train = patched  # type: ignore[attr-defined, union-attr]


def _lightgbm(module: ModuleType) -> None:
    from gitml.integrations.lightgbm import gitml_callback, log_booster

    train = module.engine.train
    if getattr(train, "_gitml_autolog", False):
        return

    def after(booster: Any) -> None:
        if not sklearn_autolog.inside_fit():
            log_booster(run_of(None), booster)

    patched = _with_callback(train, lambda: gitml_callback(log_model=False), None, after)
    for owner in (module, module.engine, importlib.import_module("lightgbm.sklearn")):
        if getattr(owner, "train", None) is train:
            owner.train = patched  # type: ignore[attr-defined, union-attr]


def _keras(module: ModuleType) -> None:
    from gitml.integrations.keras import GitmlCallback

    model = module.Model
    if not getattr(model.fit, "_gitml_autolog", False):
        model.fit = _with_callback(model.fit, GitmlCallback, GitmlCallback)


def _optuna(module: ModuleType) -> None:
    from gitml.integrations.optuna import GitmlCallback

    study = module.study.Study
    if not getattr(study.optimize, "_gitml_autolog", False):
        study.optimize = _with_callback(study.optimize, GitmlCallback, GitmlCallback)


def _lightning(module: ModuleType) -> None:
    trainer = module.Trainer
    init = trainer.__init__
    if getattr(init, "_gitml_autolog", False):
        return

    @functools.wraps(init)
    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("logger") in (None, True):
            from gitml.integrations.lightning import GitmlLogger

            kwargs["logger"] = GitmlLogger()
        init(self, *args, **kwargs)

    patched._gitml_autolog = True  # type: ignore[attr-defined]
    trainer.__init__ = patched


def _transformers(module: ModuleType) -> None:
    from gitml.integrations.transformers import GitmlCallback

    trainer = module.Trainer
    if not getattr(trainer.__init__, "_gitml_autolog", False):
        trainer.__init__ = _with_callback(trainer.__init__, GitmlCallback, GitmlCallback)


# Module to hook -> what to patch in it once imported.
PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "keras": _keras,
    "optuna": _optuna,
    "lightning.pytorch": _lightning,
    "transformers": _transformers,
}
