"""File formats: atomic writes, TOML records and their JSON Schema validation.

Every file gitml writes goes through `atomic_write`: a temp file in the same folder, fsync,
``os.replace``. A crash at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from gitml.errors import ArtifactError, FileFormatError, SchemaError

try:
    import fcntl
except ImportError:  # Windows: filelock's lock instead
    fcntl = None  # type: ignore[assignment]
from gitml.validators import generated

SCHEMA_VERSION = 1

# kind -> schema file in schemas/
SCHEMA_FILES = {
    "run": "run.schema.json",
    "config": "config.schema.json",
    "metrics-summary": "metrics-summary.schema.json",
    "metrics-parquet": "metrics-parquet.schema.json",
    "model": "model.schema.json",
    "drift": "drift.schema.json",
    "performance": "performance.schema.json",
    "reproduction": "reproduction.schema.json",
    "sweep": "sweep.schema.json",
}


@cache
def file_mode() -> int:
    """The mode any new file gets here (0666 & ~umask); mkstemp's files are 0600 otherwise.

    Read from /proc where it can be: setting the umask to read it back changes it, for a
    moment, for every thread of the process. Worked out on the first write, not at import.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def safe_target(root: Path, rel: str | os.PathLike[str]) -> Path:
    """``root / rel`` for writing, refused when the write could land outside ``root``.

    ``rel`` comes from a record, a DVC file or a manifest: input from a stranger. It must be
    relative, without ``..``, and no directory on the way down from ``root`` may be a symlink
    (a committed ``linkdir -> /somewhere`` would carry the write anywhere). The last part may
    be a symlink: files are written to a temporary name and renamed over it, which replaces
    the link and never follows it.
    """
    text = os.fspath(rel)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not parts or text.startswith(("/", "\\")) or ".." in parts or parts == (".",):
        raise ArtifactError(text, "is not a path inside the repository; refusing to write it")
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise ArtifactError(text, f"{PurePosixPath(*current.relative_to(root).parts)} is a "
                                      f"symlink (to {os.readlink(current)}); refusing to write "
                                      "through it")  # fmt: skip
        if current.exists() and not current.is_dir():
            raise ArtifactError(text, f"{current.relative_to(root)} is not a directory")
    target = root.joinpath(*parts)
    if not target.parent.resolve().is_relative_to(root.resolve()):
        raise ArtifactError(text, "resolves outside the repository; refusing to write it")
    return target


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(lock_file: Path, timeout: float = 30.0) -> Iterator[None]:
    """Hold an inter-process lock, kept in ``lock_file`` (put it somewhere git ignores).

    On POSIX this is `fcntl.flock` on the file, the very call filelock's `UnixFileLock` makes,
    without importing filelock (35-80 ms, most of it asyncio and typing, on every `gitml run`).
    Elsewhere it is filelock's lock.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield from _filelock(lock_file, timeout)
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FileFormatError(
                        str(lock_file), f"still locked by another process after {timeout}s"
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _filelock(lock_file: Path, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(lock_file), timeout=timeout):
            yield
    except Timeout as exc:
        raise FileFormatError(
            str(lock_file), f"still locked by another process after {timeout}s"
        ) from exc


def append_line(path: Path, line: str) -> bool:
    """Append ``line`` to a text file (made if missing) unless it holds it; whether it did."""
    text = path.read_text() if path.exists() else ""
    if line in text.splitlines():
        return False
    sep = "" if not text or text.endswith("\n") else "\n"
    atomic_write(path, (text + sep + line + "\n").encode())
    return True


def dumps_toml(data: Mapping[str, Any]) -> bytes:
    """Serialise a record as TOML, dropping None values (TOML has no null)."""
    import tomli_w

    return tomli_w.dumps(_drop_none(data)).encode()


def write_toml(path: Path, data: Mapping[str, Any], *, kind: str | None = None) -> None:
    """Validate ``data`` against the schema of ``kind`` (if given) and write it atomically."""
    atomic_write(path, toml_bytes(data, kind=kind, source=str(path)))


def toml_bytes(data: Mapping[str, Any], *, kind: str | None, source: str) -> bytes:
    """``data`` as TOML, validated against the schema of ``kind`` (if given) first."""
    clean = _drop_none(data)
    if kind is not None:
        validate(kind, clean, source=source)
    return dumps_toml(clean)


MAX_RECORD_BYTES = 16 * 1024 * 1024  # a run record is kilobytes; 16 MiB is a broken one
MAX_DEPTH = 32  # params nest a few levels; deeper is refused when logged


def parse_toml(text: bytes | str, *, source: str) -> dict[str, Any]:
    """Parse TOML text, raising one clear error naming ``source``.

    tomllib recurses once a level: a value nested a few thousand levels deep is an error
    naming the file, not a RecursionError that stops whatever was reading many records.
    """
    if len(text) > MAX_RECORD_BYTES:
        limit = MAX_RECORD_BYTES // 2**20
        raise FileFormatError(source, f"{len(text) / 2**20:.1f} MiB, over the {limit} MiB limit "
                                      "of a record")  # fmt: skip
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise FileFormatError(source, f"not UTF-8 text ({exc.reason})") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(source, f"invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise FileFormatError(source, "nested too deeply to read") from exc


def is_nan(value: Any) -> bool:
    """Whether a recorded value is NaN (a diverged loss): the one value unequal to itself."""
    return isinstance(value, float) and value != value  # noqa: PLR0124


def same_value(old: Any, new: Any) -> bool:
    """Whether two recorded values are the same (a NaN is the same NaN, though NaN != NaN)."""
    return (is_nan(old) and is_nan(new)) or bool(old == new)


def depth(value: Any) -> int:
    """How deep lists and tables nest in ``value`` (a scalar is 0), without recursing."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, level + 1) for v in item)
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
    return deepest


def read_toml(path: Path, *, kind: str | None = None) -> dict[str, Any]:
    """Read and (if ``kind`` is given) validate one TOML file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise FileFormatError(str(path), "file not found") from exc
    except OSError as exc:
        raise FileFormatError(str(path), f"cannot read: {exc.strerror}") from exc
    data = parse_toml(raw, source=str(path))
    if kind is not None:
        validate(kind, data, source=str(path))
    return data


def schema_dir() -> Path:
    """Where the JSON Schemas live: inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "schemas"
    return packaged if packaged.is_dir() else here.parents[1] / "schemas"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one file kind."""
    return json.loads((schema_dir() / SCHEMA_FILES[kind]).read_text())


@cache
def _validator(kind: str) -> Any:
    import jsonschema

    schema = load_schema(kind)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@cache
def _fast_check(kind: str) -> Any:
    # Compiled to Python code: ~50x faster than jsonschema on valid files, which is the usual
    # case when a query reads thousands of records. jsonschema explains the rare failure.
    # The code is generated ahead of time (`gitml.validators`) unless the schema changed since.

    ready = generated(kind, (schema_dir() / SCHEMA_FILES[kind]).read_bytes())
    if ready is not None:
        return ready
    import fastjsonschema

    return fastjsonschema.compile(load_schema(kind))


def validate(kind: str, data: Mapping[str, Any], *, source: str) -> None:
    """Raise `SchemaError` naming the first bad field of ``data`` (the most specific one)."""
    validate_json(kind, to_json_types(data), source=source)


def validate_json(kind: str, instance: Any, *, source: str) -> None:
    """`validate` for data already in JSON types (`to_json_types`), which it spares converting."""
    import fastjsonschema

    try:
        _fast_check(kind)(instance)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(instance))
    if error is None:
        return
    field = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and not field:
        field = _missing_property(error.message)
    elif error.validator == "additionalProperties":
        field = ".".join(filter(None, [field, _extra_property(error.message)]))
    message = error.message
    if error.validator == "pattern" and error.validator_value in PATTERN_WORDS:
        message = f"{error.instance!r} {PATTERN_WORDS[error.validator_value]}"
    raise SchemaError(source, field, _short(message))


# The schemas' patterns that a person reads better in words than as a regular expression.
PATTERN_WORDS = {
    "^(?![/\\\\~])(?![A-Za-z]:)(?!(.*[/\\\\])?\\.\\.([/\\\\]|$)).+$": (
        "is not a path inside the repository (relative, without ..)"
    ),
    "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$": "is not a plain file name",
    "^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$": "is not a run id (such as 20261130T185409Z-cef5f3)",
}


def _missing_property(message: str) -> str:
    # jsonschema says "'id' is a required property"
    return message.split("'")[1] if message.count("'") >= 2 else ""


def _extra_property(message: str) -> str:
    # "Additional properties are not allowed ('x' was unexpected)"
    return message.split("'")[1] if "(" in message and message.count("'") >= 2 else ""


def _short(message: str, limit: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def to_json_types(value: Any) -> Any:
    """TOML values as JSON values: datetimes become ISO 8601 strings."""
    # Concrete types first: an ABC isinstance check on every leaf costs more than the walk.
    kind = type(value)
    if kind is str or kind is float or kind is int or kind is bool:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): to_json_types(v) for k, v in value.items()}
    if kind is list or isinstance(value, list | tuple):
        return [to_json_types(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


def utcnow() -> dt.datetime:
    """Now, in UTC, to the microsecond (TOML keeps the offset)."""
    return dt.datetime.now(dt.UTC)
