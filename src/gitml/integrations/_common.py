"""What the framework callbacks share: the run to log to, and logging that never raises."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitml import logs
from gitml.tracking.autolog import current_run

log = logs.get("gitml.integrations")
F = TypeVar("F", bound=Callable[..., Any])


def run_of(run: Any) -> Any:
    """``run`` itself, or the process's current run (`gitml.tracking.autolog.current_run`)."""
    return run if run is not None else current_run()


def never_raises(fn: F) -> F:
    """Run a logging hook; a failure is a warning, so training goes on."""

    @functools.wraps(fn)
    def safe(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # logging must never break the user's training
            log.warning("gitml: %s could not log: %s: %s", fn.__qualname__, type(exc).__name__, exc)
            return None

    return safe  # type: ignore[return-value]


def scalar_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The params a run can hold: numbers, text and booleans (nested tables flattened)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalar_params(value, f"{name}."))
        elif isinstance(value, bool | int | str) or (
            isinstance(value, float) and math.isfinite(value)
        ):
            out[name] = value
        elif value is not None and hasattr(value, "item"):  # a numpy scalar
            out[name] = value.item()
    return out


def number(value: Any) -> float | None:
    """``value`` as a float metric, None when it is not one (a list, a tensor of many)."""
    if hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def log_params(run: Any, params: Mapping[str, Any]) -> None:
    """Log params, leaving out those the run has with another value (first one stands)."""
    have = run.record.get("params", {})
    run.log_params({k: v for k, v in scalar_params(params).items() if k not in have})
