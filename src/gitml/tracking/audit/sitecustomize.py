"""Put first on a wrapped command's `PYTHONPATH` by `gitml run`: note the files it reads.

An audit hook (PEP 578) sees every `open` a Python program makes, through `open()`, `io`,
`os.open` and the libraries built on them (pandas, numpy, joblib, csv...). The paths opened
for reading only are written, NUL-separated, to the file named by ``GITML_READS_FILE`` when
the program ends; `gitml run` keeps those inside the repository as the run's inputs.

Then the environment's own `sitecustomize`, if there is one, is imported as if this module
were not there. Nothing here imports gitml: it must cost the wrapped program next to nothing.
"""

import atexit
import contextlib
import importlib.machinery
import os
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _install(target: str) -> None:
    seen: set[str] = set()

    def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
        if event != "open":
            return
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        if mode is not None:
            if "w" in mode or "a" in mode or "x" in mode or "+" in mode:
                return
        elif flags and flags & _WRITE_FLAGS:
            return
        with contextlib.suppress(TypeError, ValueError):
            seen.add(os.path.abspath(os.fsdecode(path)))

    def save() -> None:
        if not seen:
            return
        data = ("\0".join(sorted(seen)) + "\0").encode("utf-8", "surrogateescape")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    sys.addaudithook(hook)
    atexit.register(save)
    sys.meta_path.insert(0, _ArrowReaders(seen))


# pyarrow opens files in C++, unseen by the audit hook: its readers' path arguments are noted
# instead, once the module that defines them is imported (pandas' read_parquet goes through them).
ARROW_READERS = {
    "pyarrow.parquet": ("read_table", "ParquetFile", "ParquetDataset", "read_metadata"),
    "pyarrow.feather": ("read_table", "read_feather"),
    "pyarrow.dataset": ("dataset",),
    "pyarrow.csv": ("read_csv", "open_csv"),
    "pyarrow.json": ("read_json",),
    "pyarrow.orc": ("read_table", "ORCFile"),
}


class _ArrowReaders:
    """A meta path finder that wraps pyarrow's readers as their modules are loaded."""

    def __init__(self, seen: set) -> None:  # type: ignore[type-arg]
        self.seen = seen

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname not in ARROW_READERS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        original, seen = spec.loader.exec_module, self.seen

        def exec_module(module):  # type: ignore[no-untyped-def]
            original(module)
            for name in ARROW_READERS[fullname]:
                if hasattr(module, name):
                    setattr(module, name, _noting(getattr(module, name), seen))

        spec.loader.exec_module = exec_module
        return spec


def _noting(reader, seen):  # type: ignore[no-untyped-def]
    def note(source) -> None:  # type: ignore[no-untyped-def]
        for item in source if isinstance(source, list) else [source]:
            if isinstance(item, (str, os.PathLike)):
                with contextlib.suppress(TypeError, ValueError):
                    seen.add(os.path.abspath(os.fsdecode(item)))

    if isinstance(reader, type):  # a class: note the source given to its constructor
        init = reader.__init__

        def noted_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            note(_source(args, kwargs))
            init(self, *args, **kwargs)

        reader.__init__ = noted_init
        return reader

    def noted(*args, **kwargs):  # type: ignore[no-untyped-def]
        note(_source(args, kwargs))
        return reader(*args, **kwargs)

    return noted


def _source(args, kwargs):  # type: ignore[no-untyped-def]
    """The first argument, however it was passed: the file a reader reads."""
    if args:
        return args[0]
    for name in ("source", "input_file", "path_or_paths", "where", "path"):
        if name in kwargs:
            return kwargs[name]
    return None


def _chain() -> None:
    # The environment's own sitecustomize (a venv's, a distribution's) still runs.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    me = sys.modules.pop(__name__)
    try:
        import sitecustomize  # noqa: F401, PLC0415 - chains to the environment's own one
    except ImportError:
        sys.modules[__name__] = me  # the import system hands back what it finds here


if os.environ.get("GITML_READS_FILE"):
    _install(os.environ["GITML_READS_FILE"])
if os.environ.get("GITML_AUTOLOG"):
    from gitml.integrations.autolog import autolog

    autolog()
_chain()
