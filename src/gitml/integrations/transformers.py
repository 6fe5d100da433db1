"""Hugging Face `transformers`: a `TrainerCallback` for the `Trainer`'s params, logs and model.

Example:
    >>> from gitml.integrations.transformers import GitmlCallback
    >>> trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[GitmlCallback()])

The training arguments that are plain values and the model's config become params (``model.``
before the config's names); every ``Trainer.log`` (loss, learning rate, eval metrics) is a step
metric at the trainer's global step; with ``log_model`` the final model is saved with
`save_pretrained` (safetensors, no pickle) into ``model_dir`` and logged as one folder.

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from gitml.integrations._common import log_params, never_raises, number, run_of

_ARGS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
         "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay",
         "warmup_steps", "warmup_ratio", "lr_scheduler_type", "optim", "seed")  # fmt: skip


class GitmlCallback(TrainerCallback):  # type: ignore[misc]
    """Log a `Trainer`'s arguments, logs and final model to a gitml run."""

    def __init__(
        self, run: Any = None, *, log_model: bool = True, model_dir: str = "model"
    ) -> None:
        super().__init__()
        self.run, self.log_model, self.model_dir = run, log_model, model_dir

    @never_raises
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.run = run_of(self.run)
        params: dict[str, Any] = {k: str(v) if not isinstance(v, bool | int | float | str) else v
                  for k, v in args.to_dict().items() if k in _ARGS}  # fmt: skip
        model = kwargs.get("model")
        config = getattr(model, "config", None)
        if config is not None:
            params["model"] = {k: v for k, v in config.to_diff_dict().items()
                               if isinstance(v, bool | int | float | str)}  # fmt: skip
        log_params(self.run, params)

    @never_raises
    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        for name, value in (logs or {}).items():
            metric = number(value)
            if metric is not None and name != "epoch":
                self.run.log_metric(name, metric, step=state.global_step)

    @never_raises
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if not self.log_model or model is None or not state.is_world_process_zero:
            return
        folder = Path(self.model_dir)
        model.save_pretrained(str(folder))
        self.run.log_artifact(folder)
