"""Static scans of model files: what loading them would import and call, without loading them.

Every global a pickle imports is judged against an allow-list (`gitml.check.allowlist`): what
scikit-learn, numpy, scipy and pandas models import, plus the team's `[check] trusted_types`;
any other global is a finding. The globals are gathered twice: by the walk below (the real
unpickler's view, every GLOBAL and STACK_GLOBAL it executes) and by picklescan's opcode
reading (the scanner Hugging Face runs on uploads), whose deny-list rating words the
message ("would import and call"), and reads PyTorch files.

picklescan, fickling and modelscan all stop at joblib files: joblib writes each numpy array's
raw bytes inline, right after the array's wrapper in the pickle stream, and a
disassembler cannot step over bytes that are not opcodes (measured: all three report a parse
error at the first array of a fitted scikit-learn model, and see nothing after it).

So a joblib file is first walked by joblib's own unpickler with every import replaced by an
inert stand-in (the "restricting globals" recipe of the pickle docs): nothing the file names is
imported or called, only `numpy.dtype` is real, to learn each array's size. That walk records
where the array bytes sit, exactly where `joblib.load` would read them; they are cut out, and
picklescan scans the remaining opcode stream (object arrays, which joblib stores as a nested
pickle, are scanned as pickles of their own). A file that cannot be walked to its end is a
finding too: what cannot be read statically cannot be called safe.

skops files list the types they would need trusted (`skops.io.get_untrusted_types`).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gitml import __version__
from gitml.check.allowlist import ALLOWLIST_VERSION, canonical, untrusted
from gitml.errors import UsageError
from gitml.serving.models import _skops

PICKLE_FORMATS = ("joblib", "pickle", "cloudpickle")  # cloudpickle writes plain pickles
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_REAL = {("numpy", "dtype"), ("numpy.core.multiarray", "dtype"),
         ("numpy._core.multiarray", "dtype")}  # fmt: skip
FACT_ARRAY_ITEMS = 100_000  # numeric arrays read for facts (classes_), not weights
_SIDE_FILES = ("NDArrayWrapper", "ZNDArrayWrapper")  # joblib < 0.10: arrays in other files


@dataclass(frozen=True)
class Issue:
    """One problem in one model file, before it is tied to the repository files naming it."""

    rule: str  # unsafe-pickle | unscannable-model | untrusted-skops-type
    detail: str  # the global or type, or why the file could not be read
    message: str  # what it means, one line


class Unreadable(Exception):
    """The stream cannot be walked statically."""


def scanner_versions() -> str:
    """What produced a scan: cached results are reused only under the same scanners."""
    from importlib import metadata

    parts = [f"gitml {__version__}", f"allowlist {ALLOWLIST_VERSION}"]
    for dist in ("picklescan", "joblib", "skops", "scikit-learn", "numpy", "scipy", "pandas"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} -")
    return "; ".join(parts)


def scan_file(path: Path, fmt: str, name: str) -> list[Issue]:
    """The issues of the model file at ``path``; ``name`` is its file name.

    ``fmt`` is how gitml loads it: joblib (which also reads plain pickles), skops, pickle; or
    "" when it was logged as a plain file, when its name decides (PyTorch files go to
    picklescan whole, which knows their zip and legacy layouts).
    """
    if fmt == "skops" or (not fmt and name.endswith(".skops")):
        return _scan_skops(path)
    if not fmt and name.endswith(TORCH_SUFFIXES):
        return _picklescan_file(path)
    return _scan_pickle(path, joblib=fmt != "pickle")


def _scan_skops(path: Path) -> list[Issue]:

    try:
        untrusted = _skops().get_untrusted_types(file=path)
    except UsageError:
        return [Issue("unscannable-model", "skops is not installed",
                      "a skops file, and skops is not installed: pip install skops")]  # fmt: skip
    except Exception as exc:
        return [Issue("unscannable-model", _one_line(exc), "not a skops file skops can read")]
    return [
        Issue("untrusted-skops-type", name,
              f"loading it needs the type {name} trusted; review it, then list it in "
              "[check] trusted_types")
        for name in sorted(untrusted)
    ]  # fmt: skip


def _picklescan_file(path: Path) -> list[Issue]:
    from picklescan.scanner import scan_file_path

    result = scan_file_path(str(path))
    if result.scan_err:
        return [Issue("unscannable-model", "picklescan could not parse it",
                      "picklescan could not read it to the end")]  # fmt: skip
    return _judged({(g.module, g.name) for g in result.globals}, _dangerous(result))


def _scan_pickle(path: Path, *, joblib: bool) -> list[Issue]:
    try:
        data = _decompressed(path) if joblib else path.read_bytes()
        walk = _Walk(data, joblib=joblib)
        streams = walk.opcode_streams()
    except Unreadable as exc:
        return [Issue("unscannable-model", str(exc), f"not a pickle that can be read statically: "
                                                     f"{exc}")]  # fmt: skip
    from picklescan.scanner import scan_pickle_bytes

    # The walk is the unpickler itself, so its globals are exactly what loading imports;
    # picklescan's opcode reading is a second opinion that words the message. Its own
    # global names are not judged: its memo emulation names some "None.dtype".
    named, dangerous = set(walk.globals), set()
    for stream in streams:
        result = scan_pickle_bytes(io.BytesIO(stream), str(path), multiple_pickles=False)
        if result.scan_err:
            return [Issue("unscannable-model", "picklescan could not parse its opcodes",
                          "picklescan could not read its pickle opcodes to the end")]  # fmt: skip
        dangerous |= _dangerous(result)
    issues = _judged(named, dangerous)
    if joblib and len(streams[0]) < len(data):
        # Read as `pickle.load` would, array bytes are opcodes: a file can be harmless to
        # joblib and still call something for whoever unpickles it.
        plain = _as_plain_pickle(data)
        known = {i.detail for i in issues}
        issues += [Issue(i.rule, i.detail, f"{i.message} when read with pickle.load (its "
                                           "array bytes are pickle opcodes)")
                   for i in _judged(plain, dangerous) if i.detail not in known]  # fmt: skip
    return sorted(set(issues), key=lambda i: i.detail)


def _as_plain_pickle(data: bytes) -> set[tuple[str, str]]:
    """The globals `pickle.load` would import from ``data`` before it stops."""
    walk = _Walk(data, joblib=False)
    with contextlib.suppress(Unreadable):
        walk.run()
    # Past the first array the bytes are arbitrary: a "global" whose names are no Python
    # identifiers cannot be imported, so pickle.load would fail there instead of calling it.
    return {(m, n) for m, n in walk.globals if _importable_name(m) and _importable_name(n)}


def _importable_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _judged(named: set[tuple[str, str]], dangerous: set[str]) -> list[Issue]:
    """An issue for each global neither allowed by `gitml.check.allowlist` nor known harmless.

    The team's `[check] trusted_types` are applied later: the issues are cached per file.
    """
    issues = []
    for name in untrusted(named):
        if name in dangerous:
            message = f"loading it would import and call {name}"
        else:
            message = (f"loading it would import {name}, which is not on the allow-list of what "
                       "scikit-learn, numpy, scipy and pandas models import; review it, then "
                       "list it in [check] trusted_types")  # fmt: skip
        issues.append(Issue("unsafe-pickle", name, message))
    return issues


def _dangerous(result: Any) -> set[str]:
    from picklescan.scanner import SafetyLevel

    return {f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous}


def _decompressed(path: Path) -> bytes:
    """The pickle stream of a plain or joblib-compressed (zlib, gzip, bz2, lzma, xz) file."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    try:
        with open(path, "rb") as raw, _validate_fileobject_and_memmap(raw, str(path)) as opened:
            stream, _ = opened
            if isinstance(stream, str):
                raise Unreadable("a joblib < 0.10 file, which keeps arrays in side files")
            return bytes(stream.read())
    except Unreadable:
        raise
    except Exception as exc:
        raise Unreadable(f"cannot decompress it ({_one_line(exc)})") from exc


class _Walk:
    """joblib's unpickler over ``data`` with every import stubbed, recording the array bytes."""

    def __init__(self, data: bytes, *, joblib: bool, facts: bool = False) -> None:
        self.data = data
        self.joblib = joblib
        self.cuts: list[tuple[int, int, bool]] = []  # (start, end, is a nested pickle)
        self.end = 0
        self.globals: set[tuple[str, str]] = set()  # every (module, name) the stream imports
        # With ``facts``, stand-ins remember what they were built from (`gitml.check.facts`)
        # and small numeric arrays are read: the model's attributes, without loading it.
        self.facts = facts
        self.root: Any = None
        self._recorders: dict[str, type] = {}

    def opcode_streams(self) -> list[bytes]:
        """The pickle opcode streams of the data, as `joblib.load` (or `pickle.load`) reads it.

        First the main one with array bytes cut out, then each nested pickle (an object
        array's) on its own. Without ``joblib`` there are no inline arrays.
        """
        self.run()
        data, main, pos = self.data, [], 0
        for start, end, _nested in sorted(self.cuts):
            if start < pos:
                continue  # inside a nested pickle already cut
            main.append(data[pos:start])
            pos = end
        main.append(data[pos : self.end])
        return [b"".join(main)] + [data[s:e] for s, e, nested in sorted(self.cuts) if nested]

    def run(self) -> None:
        handle = io.BytesIO(self.data)
        unpickler = self._unpickler(handle, arrays=self.joblib)
        try:
            root = unpickler.load()
        except Unreadable:
            raise
        except RecursionError as exc:
            raise Unreadable("nested too deeply") from exc
        except Exception as exc:
            raise Unreadable(_one_line(exc)) from exc
        self.end = handle.tell()
        if self.data[self.end :].strip(b"\0"):
            raise Unreadable(f"{len(self.data) - self.end} bytes follow the end of the pickle")
        if self.facts:
            self.root = root

    def _unpickler(self, handle: io.BytesIO, *, arrays: bool) -> Any:
        """An unpickler that imports nothing.

        With ``arrays`` it is joblib's, which reads an array's bytes after its wrapper, else
        plain pickle's (as joblib reads its nested pickles).
        """
        from joblib.numpy_pickle import NumpyUnpickler

        skipper = _skipper_class()

        def find_class(module: str, name: str) -> Any:
            if not isinstance(module, str) or not isinstance(name, str):
                raise Unreadable("a global named by something other than text")
            module, name = canonical(module, name, getattr(unpickler_of(), "proto", 0))
            self.globals.add((module, name))
            if module == "joblib.numpy_pickle_compat" or name in _SIDE_FILES:
                # joblib.load would open the file these name, with pickles allowed
                raise Unreadable(f"{module}.{name}: a joblib < 0.10 array kept in another file")
            if (module, name) in _REAL:
                import numpy

                return numpy.dtype
            if arrays and (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return skipper
            return self._recorder(f"{module}.{name}") if self.facts else _Stub

        def persistent_load(pid: Any) -> Any:
            raise Unreadable("it refers to persistent ids outside the file")

        if arrays:
            unpickler = NumpyUnpickler("", handle, ensure_native_byte_order=False)
        else:
            unpickler = pickle._Unpickler(handle)  # type: ignore[attr-defined]
        # A weak reference: the closure must not hold the unpickler (and through it the file's
        # bytes) in a reference cycle that lives until the garbage collector runs.
        unpickler_of = weakref.ref(unpickler)
        unpickler.find_class = find_class
        unpickler.persistent_load = persistent_load
        unpickler.gitml_walk = self  # no class or closure holds the walk: freed on return
        return unpickler

    def _recorder(self, qualified: str) -> type:
        if qualified not in self._recorders:
            self._recorders[qualified] = type("Recorded", (Recorded,), {"name": qualified})
        return self._recorders[qualified]

    def skip_array(self, wrapper: Any, handle: io.BytesIO) -> Any:
        """Step over an array's bytes; its value when gathering facts (small numeric ones)."""
        import numpy

        dtype = getattr(wrapper, "dtype", None)
        shape = getattr(wrapper, "shape", None)
        if (
            not isinstance(dtype, numpy.dtype)
            or not isinstance(shape, tuple)
            or not all(isinstance(n, int) and n >= 0 for n in shape)
        ):
            raise Unreadable("an array wrapper without a valid dtype and shape")
        start = handle.tell()
        if dtype.hasobject:  # joblib stores these as a pickle of their own
            nested = self._unpickler(handle, arrays=False)  # as joblib reads them
            try:
                value = nested.load()
            except Unreadable:
                raise
            except Exception as exc:
                raise Unreadable(f"object array: {_one_line(exc)}") from exc
            self.cuts.append((start, handle.tell(), True))
            return value if self.facts else None
        if getattr(wrapper, "numpy_array_alignment_bytes", None) is not None:
            padding = handle.read(1)
            handle.seek(int.from_bytes(padding or b"\0", "little"), io.SEEK_CUR)
        count = 1
        for n in shape:
            count *= n
        end = handle.tell() + count * dtype.itemsize
        if end > len(self.data):
            raise Unreadable(f"an array of {count * dtype.itemsize} bytes runs past the file's end")
        begin = handle.tell()
        handle.seek(end)
        self.cuts.append((start, end, False))
        if self.facts and count <= FACT_ARRAY_ITEMS and not dtype.fields:
            return numpy.frombuffer(self.data, dtype, count, offset=begin).reshape(shape)
        return None


@cache
def _skipper_class() -> type:
    from joblib.numpy_pickle import NumpyArrayWrapper

    class Skipper(NumpyArrayWrapper):  # type: ignore[misc]
        """Takes an array's place: steps over its bytes instead of reading them."""

        def read(self, unpickler: Any, ensure_native_byte_order: bool) -> Any:
            value = unpickler.gitml_walk.skip_array(self, unpickler.file_handle)
            return _Stub() if value is None else value

    return Skipper


class _Stub:
    """Stands in for every class or function a pickle names: accepts anything, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        """For APPEND opcodes."""

    def extend(self, values: Any) -> None:
        """For APPENDS opcodes."""


class Recorded(_Stub):
    """A stand-in that keeps the global it stands for (``name``) and the state it was given."""

    name = ""
    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if not isinstance(exc, pickle.UnpicklingError | Unreadable) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:200]
