"""XGBoost: params, each boosting round's evaluation metrics, and the booster as JSON.

Example:
    >>> from gitml.integrations.xgboost import GitmlCallback
    >>> booster = xgboost.train(params, dtrain, 100, evals=[(dvalid, "valid")],
    ...                         callbacks=[GitmlCallback()])

Metrics are named ``<data>-<metric>`` (``valid-logloss``), as MLflow's autolog names them, one
step per round. The booster is saved in XGBoost's own JSON format (no pickle) and logged.

"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xgboost

from gitml.integrations._common import log_params, never_raises, number, run_of

# Learner settings worth a param: the booster's training params, the objective and the metric.
_CONFIG_PARTS = (
    ("learner", "learner_train_param"),
    ("learner", "gradient_booster", "tree_train_param"),
    ("learner", "gradient_booster", "gbtree_train_param"),
)


class GitmlCallback(xgboost.callback.TrainingCallback):  # type: ignore[misc]
    """Log params, per-round metrics and the final booster to a gitml run."""

    def __init__(
        self, run: Any = None, *, params: dict[str, Any] | None = None, log_model: bool = True,
        model_path: str = "model.json",
    ) -> None:  # fmt: skip
        super().__init__()
        self.run, self.params, self.log_model, self.model_path = run, params, log_model, model_path

    @never_raises
    def before_training(self, model: Any) -> Any:
        self.run = run_of(self.run)
        log_params(self.run, self.params if self.params is not None else booster_params(model))
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        self._log_round(epoch, evals_log)
        return False  # never stop training

    @never_raises
    def _log_round(self, epoch: int, evals_log: dict[str, Any]) -> None:
        for data, metrics in evals_log.items():
            for name, values in metrics.items():
                last = values[-1]
                value = number(last[0] if isinstance(last, tuple) else last)  # cv: (mean, std)
                if value is not None:
                    self.run.log_metric(f"{data}-{name}", value, step=epoch)

    def after_training(self, model: Any) -> Any:
        if self.log_model:
            self._log_booster(model)
        return model

    @never_raises
    def _log_booster(self, model: Any) -> None:
        path = Path(self.model_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save_model(str(path))
        self.run.log_artifact(path)
        best = getattr(model, "best_iteration", None)
        if isinstance(best, int):
            self.run.log_params({"best_iteration": best})


def booster_params(booster: Any) -> dict[str, Any]:
    """The booster's main training params, read from its saved config."""
    config = json.loads(booster.save_config())
    out: dict[str, Any] = {}
    for part in _CONFIG_PARTS:
        node: Any = config
        for key in part:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        for key, text in node.items() if isinstance(node, dict) else ():
            out[key] = _typed(text)
    objective = config.get("learner", {}).get("objective", {}).get("name")
    if objective:
        out["objective"] = objective
    return out


def _typed(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
