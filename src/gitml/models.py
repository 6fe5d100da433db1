"""Model files: save and load scikit-learn (or any picklable) models, joblib or skops."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from gitml import store
from gitml.errors import UsageError

FORMATS = ("joblib", "skops")


def save_model(model: Any, path: Path, *, format: str = "joblib") -> None:
    """Write ``model`` to ``path`` atomically (a crash never leaves half a model file)."""
    buf = io.BytesIO()
    if format == "joblib":
        import joblib

        joblib.dump(model, buf)
    elif format == "skops":
        sio = _skops()
        buf.write(sio.dumps(model))
    else:
        raise UsageError("format", f"{format!r} is not one of {', '.join(FORMATS)}")
    store.atomic_write(path, buf.getvalue())


def load_model(path: Path, *, format: str = "joblib", trusted: list[str] | None = None) -> Any:
    """Load a model file. skops refuses types not in ``trusted``, joblib trusts the file."""
    if format == "joblib":
        import joblib

        return joblib.load(path)
    if format == "skops":
        sio = _skops()
        return sio.load(path, trusted=trusted or sio.get_untrusted_types(file=path))
    raise UsageError("format", f"{format!r} is not one of {', '.join(FORMATS)}")


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:
        raise UsageError("format", "skops is not installed: pip install skops") from exc
    return sio
