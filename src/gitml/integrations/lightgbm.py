"""LightGBM: params, each iteration's evaluation metrics, and the booster as text.

Example:
    >>> from gitml.integrations.lightgbm import gitml_callback
    >>> booster = lightgbm.train(params, train_set, 100, valid_sets=[valid],
    ...                          callbacks=[gitml_callback()])

Metrics are named ``<data>-<metric>`` (``valid_0-binary_logloss``), one step per iteration.
The booster is logged in LightGBM's own text format (no pickle) when training reaches its last
iteration; with early stopping, `log_booster` logs the booster `train` returned.

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitml.integrations._common import log_params, never_raises, number, run_of


def gitml_callback(
    run: Any = None, *, log_model: bool = True, model_path: str = "model.txt"
) -> Any:  # fmt: skip
    """A LightGBM callback logging to ``run`` (default: the current run)."""
    state: dict[str, Any] = {"run": run}

    @never_raises
    def callback(env: Any) -> None:
        if env.iteration == env.begin_iteration:
            state["run"] = run_of(state["run"])
            log_params(state["run"], {**env.params, "num_iterations": env.end_iteration})
        for item in env.evaluation_result_list or ():
            data, name, result = item[0], item[1], number(item[2])
            if result is not None:
                state["run"].log_metric(f"{data}-{name}", result, step=env.iteration)
        if log_model and env.iteration + 1 == env.end_iteration:
            log_booster(state["run"], env.model, model_path)

    callback.order = 40  # type: ignore[attr-defined]  # after LightGBM's early stopping (30)
    return callback


def log_booster(run: Any, booster: Any, model_path: str = "model.txt") -> None:
    """Save ``booster`` as LightGBM text and log it to ``run``."""
    path = Path(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    run.log_artifact(path)
