"""Which globals a model pickle may name: an allow-list, judged before anything is unpickled.

A pickle can call any callable it can name, so a deny-list (picklescan's ratings) always misses
the gadget nobody listed yet: `code.InteractiveInterpreter.runsource` is rated below dangerous
and runs Python source. gitml inverts it: a global is allowed only when it is one of the things
a scikit-learn, numpy, scipy or pandas model really imports (measured on every estimator of
`sklearn.utils.discovery.all_estimators`, fitted and dumped with joblib), or listed by the team
in `[check] trusted_types` (committed, so reviewed). Everything else is a finding, and the
loader refuses it (`gitml.serving.models.load_model`).

No maintained allow-list covers scikit-learn pickles: picklescan's strict mode trusts only its
own `_safe_globals` (a few numpy and torch names, private and not extendable); fickling's ML
allow-list is PyTorch's; skops' trusted types judge skops files, not pickles. So the rules are
here, kept as rules rather than as a list of names so that a new scikit-learn release's classes
are judged without an update:

- an exact name from ``EXACT`` (constructors numpy, pandas and joblib pickle with, harmless
  builtins);
- a class defined in scikit-learn (not its test helpers), or a function in one of its
  computational packages (score functions, metrics, Cython unpickle helpers);
- a numpy ufunc or a numpy scalar, dtype, array or random-generator class (not `numpy.memmap`,
  which writes files);
- a sparse matrix, spline, spatial or distribution class of scipy (not `scipy.io`, which
  writes files);
- a pandas data class or unpickle helper (not `pandas.io` or `pandas.core.computation`).

scikit-learn names are judged from its source files (a class or function the named module
defines), never by importing it: that would cost `gitml check` 1.5 s and 230 MiB. Other names
are resolved by importing their module, so only modules of these packages are ever imported.
A dotted name (protocol 4 can name `A.b.c`) must be a nested class of that qualified name, so
attribute walks (`BaseEstimator.__init__.__globals__`) are refused.
"""

from __future__ import annotations

import _compat_pickle
import ast
import importlib
import importlib.machinery
import importlib.util
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

ALLOWLIST_VERSION = 2  # bump when the rules change: cached scan verdicts are then redone
PACKAGES = ("sklearn", "numpy", "scipy", "pandas", "joblib", "pyarrow")

EXACT = frozenset(
    {
        # builtins a model's attributes pickle as, and the protocol-2 helpers
        "builtins.slice", "builtins.set", "builtins.frozenset", "builtins.complex",
        "builtins.bytearray", "builtins.range", "builtins.object", "builtins.list",
        "builtins.dict", "builtins.tuple", "builtins.int", "builtins.float", "builtins.bool",
        "builtins.str", "builtins.bytes", "copyreg._reconstructor", "_codecs.encode",
        "collections.OrderedDict", "collections.defaultdict", "collections.deque",
        "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
        "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
        # numpy's own constructors
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
        "numpy.ma.core._mareconstruct", "numpy.ma.MaskedArray", "numpy.ma.core.MaskedArray",
        "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        # joblib's array wrappers (read by gitml's own wrapper, see models.py)
        "joblib.numpy_pickle.NumpyArrayWrapper",
        # pyarrow-backed pandas strings
        "pyarrow.lib._restore_array", "pyarrow.lib.py_buffer", "pyarrow.lib.type_for_alias",
    }
)  # fmt: skip

_SKLEARN_NOT = ("tests", "_testing", "_mocking", "estimator_checks", "datasets", "externals")
_SKLEARN_FUNCTIONS = ("sklearn.metrics", "sklearn.feature_selection", "sklearn.cluster",
                      "sklearn.neighbors", "sklearn._loss",
                      "sklearn.gaussian_process.kernels")  # fmt: skip
_SCIPY_CLASSES = ("scipy.sparse.", "scipy.interpolate.", "scipy.spatial.", "scipy.stats.")
_PANDAS_HELPERS = ("pandas.core.", "pandas._libs.tslibs", "pandas._libs.internals",
                   "pandas._libs.arrays", "pandas._libs.interval", "pandas._libs.sparse",
                   "pandas._libs.missing")  # fmt: skip
_PANDAS_NOT = ("pandas.core.computation", "pandas.core.config_init")
_NUMPY_FUNCTIONS = frozenset({"mean", "median", "sum", "max", "min", "std", "var", "prod",
                              "average", "amax", "amin", "ptp", "nanmean", "nanmedian",
                              "nansum", "nanmax", "nanmin", "nanstd", "nanvar",
                              "asarray"})  # fmt: skip
_HELPER_PREFIXES = ("__pyx_unpickle_", "_unpickle", "_new_", "_timedelta_unpickle", "newObj")


def untrusted(globals_: Iterable[tuple[str, str]], trusted: Iterable[str] = ()) -> list[str]:
    """The globals among ``globals_`` (module, name) that are neither allowed nor trusted."""
    extra = tuple(trusted)
    return sorted({f"{m}.{n}" for m, n in globals_ if not allowed(m, n, extra)})


def allowed(module: str, name: str, trusted: tuple[str, ...] = ()) -> bool:
    """Whether a pickle may name ``module`` / ``name``: allowed by rule, or trusted."""
    qualified = f"{module}.{name}"
    return qualified in EXACT or _trusted(qualified, trusted) or _by_rule(module, name)


def canonical(module: str, name: str, proto: int) -> tuple[str, str]:
    """The global a protocol < 3 pickle's (module, name) means in Python 3 (`__builtin__.set`)."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]  # type: ignore[no-any-return]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


def is_trusted(qualified: str, trusted: Iterable[str]) -> bool:
    """Whether the team trusts ``qualified`` in `[check] trusted_types`."""
    return _trusted(qualified, tuple(trusted))


def _trusted(qualified: str, trusted: tuple[str, ...]) -> bool:
    """``trusted`` entries are exact names, or ``prefix.*`` for everything under a prefix."""
    for entry in trusted:
        if entry == qualified or (entry.endswith(".*") and qualified.startswith(entry[:-1])):
            return True
    return False


@cache
def _by_rule(module: str, name: str) -> bool:
    top = module.partition(".")[0]
    if top not in PACKAGES or not name or "<" in name:  # "<locals>" names no real global
        return False
    if top == "sklearn":
        return _sklearn_static(module, name)
    obj = _resolve(module, name)
    if obj is None:
        return False
    home = getattr(obj, "__module__", None) or module
    if "." in name and getattr(obj, "__qualname__", None) != name:
        return False  # an attribute walk, not a nested class
    return {"numpy": _numpy, "scipy": _scipy, "pandas": _pandas}.get(top, _nothing)(obj, home, name)


def _resolve(module: str, name: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            if part.startswith("__") and part.endswith("__"):
                return None
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj


def _nothing(obj: Any, home: str, name: str) -> bool:
    return False


def _sklearn_static(module: str, name: str) -> bool:
    """A scikit-learn global judged from its source, without importing scikit-learn.

    Importing any of it costs 1.5 s and 230 MiB, which `gitml check` would pay for judging
    alone. scikit-learn's objects carry their defining module, so the name must be a class
    (nested classes by qualified name) or function defined in that module's source; in a
    compiled module, a class-like name or a Cython helper that its binary holds.
    """
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts) or any(p in _SKLEARN_NOT for p in parts):
        return False
    found = _module_file(module)
    if found is None:
        return False
    leaf = name.rsplit(".", 1)[-1]
    if found.suffix != ".py":  # an extension module: no source to read
        if not all(part.isidentifier() for part in name.split(".")) or "." in name:
            return False
        in_binary = name.encode() in _binary(found)
        return in_binary and (leaf.startswith(_HELPER_PREFIXES) or leaf[:1].isupper())
    kind = _definitions(found).get(name)
    if kind == "class":
        return True
    return kind == "function" and (leaf.startswith(_HELPER_PREFIXES)
                                   or module.startswith(_SKLEARN_FUNCTIONS))  # fmt: skip


@cache
def _module_file(module: str) -> Path | None:
    """The file of ``module``, found without importing its package (only the top is looked up)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level lookup imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    candidates = [base / "__init__.py", base.with_name(base.name + ".py")]
    candidates += [base.with_name(base.name + s) for s in importlib.machinery.EXTENSION_SUFFIXES]
    return next((c for c in candidates if c.is_file()), None)


@cache
def _definitions(source: Path) -> dict[str, str]:
    """Qualified name -> "class" or "function", for what a Python file defines at its top."""
    found: dict[str, str] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                found[prefix + node.name] = "class"
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not prefix:
                found[node.name] = "function"

    try:
        visit(ast.parse(source.read_bytes()).body, "")
    except (OSError, SyntaxError, ValueError):
        return {}
    return found


@cache
def _binary(path: Path) -> bytes:
    return path.read_bytes()


def _numpy(obj: Any, home: str, name: str) -> bool:
    import numpy

    if isinstance(obj, numpy.ufunc):
        return True
    if isinstance(obj, type):
        if issubclass(obj, numpy.memmap):
            return False
        from numpy.random import BitGenerator, Generator, RandomState, SeedSequence

        safe = (numpy.generic, numpy.dtype, numpy.ndarray, BitGenerator, Generator,
                RandomState, SeedSequence)  # fmt: skip
        return issubclass(obj, safe)
    leaf = name.rsplit(".", 1)[-1]
    if leaf.startswith("__pyx_unpickle_") and home.startswith("numpy.random"):
        return True
    # numpy names its public functions' __module__ "numpy" (np.save too): judge by identity
    return leaf in _NUMPY_FUNCTIONS and obj is getattr(numpy, leaf, None)


def _scipy(obj: Any, home: str, name: str) -> bool:
    return isinstance(obj, type) and home.startswith(_SCIPY_CLASSES) and ".io" not in home


def _pandas(obj: Any, home: str, name: str) -> bool:
    if isinstance(obj, type):  # pandas names public classes' __module__ "pandas": by kind
        return issubclass(obj, _pandas_kinds())
    if not home.startswith(_PANDAS_HELPERS) or home.startswith(_PANDAS_NOT):
        return False
    return name.rsplit(".", 1)[-1].startswith(_HELPER_PREFIXES)


@cache
def _pandas_kinds() -> tuple[type, ...]:
    import pandas as pd
    from pandas.api.extensions import ExtensionArray, ExtensionDtype
    from pandas.core.generic import NDFrame
    from pandas.core.internals.blocks import Block
    from pandas.core.internals.managers import BaseBlockManager
    from pandas.tseries.offsets import BaseOffset

    return (NDFrame, pd.Index, ExtensionArray, ExtensionDtype, BaseBlockManager, Block,
            BaseOffset, pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval,
            type(pd.NaT))  # fmt: skip
