"""Model files: save and load scikit-learn (or any picklable) models, joblib or skops.

Loading a pickle or joblib file runs whatever callables it names, so it is never handed to
`joblib.load` as is: gitml unpickles it with joblib's own unpickler whose ``find_class`` (the
"restricting globals" recipe of the pickle docs) refuses every global that
`gitml.check.allowlist` does not allow or the project does not trust. This holds whether or not
the file was scanned first, and for the nested pickles of object arrays too.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from gitml import store
from gitml.check.allowlist import allowed, canonical
from gitml.errors import UnsafeModelError, UsageError

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


def load_model(
    path: Path,
    *,
    format: str = "joblib",
    trusted: list[str] | None = None,
    unrestricted: bool = False,
) -> Any:
    """Load a model file, refusing any global outside the allow-list and ``trusted``.

    joblib (and pickle) files go through a restricted unpickler; skops refuses types not in
    ``trusted``. ``unrestricted`` loads whatever the file names: only for a user who said so
    (``--allow-findings``).
    """
    if format in ("joblib", "pickle", "cloudpickle"):
        if unrestricted:
            import joblib

            return joblib.load(path)
        return _restricted_load(path, tuple(trusted or ()))
    if format == "skops":
        sio = _skops()
        if unrestricted:
            return sio.load(path, trusted=sio.get_untrusted_types(file=path))
        return sio.load(path, trusted=list(trusted or ()))
    raise UsageError("format", f"{format!r} is not one of {', '.join(FORMATS)}")


def _restricted_load(path: Path, trusted: tuple[str, ...]) -> Any:
    """`joblib.load` of ``path`` (also plain pickles) with every global judged first."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    unpickler_class = _restricted_unpickler()
    with open(path, "rb") as raw, _validate_fileobject_and_memmap(raw, str(path)) as opened:
        stream, _ = opened
        if isinstance(stream, str):  # joblib < 0.10: arrays in side files np.load would open
            raise UnsafeModelError(str(path), "a joblib < 0.10 side file")
        unpickler = unpickler_class(str(path), stream, True)
        unpickler.gitml_trusted = trusted
        return unpickler.load()


def _restricted_unpickler() -> type:

    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class Wrapper(NumpyArrayWrapper):  # type: ignore[misc]
        """joblib's array wrapper; an object array's nested pickle is restricted too."""

        def read_array(self, unpickler: Any, ensure_native_byte_order: bool) -> Any:
            if not self.dtype.hasobject:
                return super().read_array(unpickler, ensure_native_byte_order)
            inner = pickle._Unpickler(unpickler.file_handle)  # type: ignore[attr-defined]
            inner.find_class = unpickler.find_class  # type: ignore[method-assign]
            return inner.load()

    class Restricted(NumpyUnpickler):  # type: ignore[misc]
        gitml_trusted: tuple[str, ...] = ()

        def find_class(self, module: str, name: str) -> Any:
            if self.fix_imports:
                module, name = canonical(module, name, self.proto)
            if not allowed(module, name, self.gitml_trusted):
                raise UnsafeModelError(self.filename, f"{module}.{name}")
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return Wrapper
            return super().find_class(module, name)

    return Restricted


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:
        raise UsageError("format", "skops is not installed: pip install skops") from exc
    return sio
