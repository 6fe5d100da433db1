"""PyTorch Lightning: a `Logger` writing hyperparameters, logged metrics and checkpoints.

Example:
    >>> from gitml.integrations.lightning import GitmlLogger
    >>> trainer = lightning.Trainer(max_epochs=5, logger=GitmlLogger())

Whatever the module logs with ``self.log`` reaches the run as step metrics (Lightning's global
step), ``save_hyperparameters()`` becomes params, and with ``log_model`` the best checkpoint of
a `ModelCheckpoint` callback (else the last one) is logged when training ends. A `.ckpt` file
is a torch pickle: `gitml check` rates it before anyone loads it.

"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from gitml.integrations._common import log_params, never_raises, number, run_of


class GitmlLogger(Logger):  # type: ignore[misc]
    """A Lightning logger that logs to a gitml run (default: the current run)."""

    def __init__(self, run: Any = None, *, log_model: bool = True) -> None:
        super().__init__()
        self._run, self.log_model = run, log_model
        self._checkpoint: str | None = None

    @property
    def name(self) -> str:
        return "gitml"

    @property
    def version(self) -> str:
        return str(self.run.id)

    @property
    def run(self) -> Any:
        """The gitml run this logger writes to."""
        self._run = run_of(self._run)
        return self._run

    @rank_zero_only  # type: ignore[misc]
    @never_raises
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        log_params(self.run, vars(params) if isinstance(params, Namespace) else dict(params))

    @rank_zero_only  # type: ignore[misc]
    @never_raises
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for name, value in metrics.items():
            metric = number(value)
            if metric is not None and name != "epoch":
                self.run.log_metric(name, metric, step=step)

    @never_raises
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        best = getattr(checkpoint_callback, "best_model_path", "") or getattr(
            checkpoint_callback, "last_model_path", "")  # fmt: skip
        self._checkpoint = best or self._checkpoint

    @rank_zero_only  # type: ignore[misc]
    @never_raises
    def finalize(self, status: str) -> None:
        self.run.flush()
        if self.log_model and self._checkpoint and Path(self._checkpoint).is_file():
            self.run.log_artifact(self._checkpoint)
