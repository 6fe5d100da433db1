"""Keras 3 (any backend): params, each epoch's logs, and the model in the `.keras` format.

Example:
    >>> from gitml.integrations.keras import GitmlCallback
    >>> model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[GitmlCallback()])

Every value of Keras's epoch logs (``loss``, ``val_loss``, ``accuracy``...) is a step metric,
one step per epoch. The model is saved with `model.save` as a `.keras` file (a zip of JSON and
weights; loading it does not unpickle) and logged.

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from gitml.integrations._common import log_params, never_raises, number, run_of


class GitmlCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Log params, per-epoch metrics and the final model to a gitml run."""

    def __init__(
        self, run: Any = None, *, log_model: bool = True, model_path: str = "model.keras"
    ) -> None:  # fmt: skip
        super().__init__()
        self.run, self.log_model, self.model_path = run, log_model, model_path

    @never_raises
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.run = run_of(self.run)
        params = {k: v for k, v in (self.params or {}).items() if k in ("epochs", "steps",
                                                                        "batch_size")}  # fmt: skip
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = type(optimizer).__name__
            rate = number(keras.ops.convert_to_numpy(optimizer.learning_rate))
            if rate is not None:
                params["learning_rate"] = rate
        log_params(self.run, params)

    @never_raises
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            metric = number(value)
            if metric is not None:
                self.run.log_metric(name, metric, step=epoch)

    @never_raises
    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.log_model:
            path = Path(self.model_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.model.save(str(path))
            self.run.log_artifact(path)
