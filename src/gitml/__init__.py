"""gitml: a Git-native, file-based experiment and model tracker.

The public API is small and imported lazily, so `import gitml` stays cheap::

    import gitml

    with gitml.start_run("baseline", params={"n_estimators": 100}) as run:
        run.log_metric("accuracy", 0.93)

    df = gitml.runs(where="metrics.accuracy > 0.9", sort="-metrics.accuracy")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "GitmlError",
    "Repo",
    "Run",
    "__version__",
    "autolog",
    "get_run",
    "init",
    "params",
    "runs",
    "start_run",
]

_LAZY = {
    "autolog": ("gitml.integrations.autolog", "autolog"),
    "GitmlError": ("gitml.errors", "GitmlError"),
    "Repo": ("gitml.repo", "Repo"),
    "Run": ("gitml.tracking.run", "Run"),
    "start_run": ("gitml.tracking.run", "start_run"),
    "params": ("gitml.tracking.wrap", "params"),
    "runs": ("gitml.query.api", "runs"),
    "get_run": ("gitml.query.api", "get_run"),
    "init": ("gitml.project", "init_project"),
}

if TYPE_CHECKING:
    from gitml.errors import GitmlError
    from gitml.integrations.autolog import autolog
    from gitml.project import init_project as init
    from gitml.query.api import get_run, runs
    from gitml.repo import Repo
    from gitml.tracking.run import Run, start_run
    from gitml.tracking.wrap import params


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gitml' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
