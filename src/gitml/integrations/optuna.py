"""Optuna run in your own script: each finished trial becomes a gitml run.

Example:
    >>> from gitml.integrations.optuna import GitmlCallback
    >>> study.optimize(objective, n_trials=50, callbacks=[GitmlCallback("accuracy")])

Each trial's run has the trial's params, its value as the final ``metric_name`` (one name per
objective for a multi-objective study), its intermediate values as steps of the same metric,
and tags ``optuna_study``, ``optuna_trial`` and ``optuna_state`` (complete, pruned, fail). Inside
`gitml run`, the trials' runs are tagged with the wrapping run's id as ``parent``.
(`gitml sweep` is the other way round: Optuna drives, and each trial is a process.)

"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gitml.integrations._common import never_raises, scalar_params
from gitml.tracking.run import RUN_ID_ENV, start_run

_STATUS = {"COMPLETE": "finished", "PRUNED": "interrupted", "FAIL": "failed"}


class GitmlCallback:
    """A callback for `optuna.Study.optimize`: one gitml run per finished trial."""

    def __init__(self, metric_name: str | Sequence[str] = "value", *, repo: Any = None) -> None:
        names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
        self.metric_names, self.repo = names, repo

    @never_raises
    def __call__(self, study: Any, trial: Any) -> None:
        state = trial.state.name
        tags = {"optuna_study": study.study_name, "optuna_trial": str(trial.number),
                "optuna_state": state.lower()}  # fmt: skip
        parent = os.environ.get(RUN_ID_ENV)
        if parent:
            tags["parent"] = parent
        name = f"{study.study_name}-{trial.number}"
        run = start_run(name, params=scalar_params(trial.params), tags=tags, repo=self.repo,
                        join=False)  # fmt: skip
        first = self.metric_names[0]
        for step, value in sorted(trial.intermediate_values.items()):
            run.log_metric(first, float(value), step=step)
        values = trial.values or []
        names = self.metric_names if len(self.metric_names) == len(values) else [
            f"{first}_{i}" if i else first for i in range(len(values))]  # fmt: skip
        if values:
            run.log_metrics(dict(zip(names, map(float, values), strict=True)))
        run.end(_STATUS.get(state, "failed"))
