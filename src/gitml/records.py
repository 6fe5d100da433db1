"""The shapes of gitml's files, as types: run records, registry documents, the config.

`schemas/` is the authority (every file is validated against it when read or written); these
TypedDicts say the same for the type checker, and `tests/test_records.py` checks that each one
has exactly its schema's properties, with the schema's required ones required. Values that the
schema leaves open (params, nested config sections) are `Any`.
"""

from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from gitml import store
from gitml.errors import UsageError

RunStatus = Literal["running", "finished", "failed", "crashed", "interrupted"]


class Artifact(TypedDict):
    """An input or output of a run: its bytes by md5, as DVC names them."""

    md5: str
    size: int
    nfiles: NotRequired[int]
    format: NotRequired[str]
    profile: NotRequired[str]
    content_md5: NotRequired[str]
    detected: NotRequired[bool]


class Process(TypedDict):
    """The process that logged a running run (to tell a crash from a run still going)."""

    pid: int
    host: str
    start_ticks: NotRequired[int]


class CodeState(TypedDict):
    """The code a run ran: the commit, and a patch when the tree was dirty."""

    dirty: bool
    commit: NotRequired[str]
    branch: NotRequired[str]
    patch: NotRequired[str]
    untracked: NotRequired[list[str]]
    patch_sha256: NotRequired[str]


class Environment(TypedDict, total=False):
    """Where a run ran: versions, platform, packages and the environment variables recorded."""

    gitml: str
    python: str
    platform: str
    packages: dict[str, str]
    vars: dict[str, str]


class RunRecord(TypedDict):
    """`.gitml/runs/<id>/run.toml` (schemas/run.schema.json)."""

    schema_version: int
    id: str
    status: RunStatus
    start_time: datetime
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    name: NotRequired[str]
    end_time: NotRequired[datetime]
    command: NotRequired[list[str]]
    cwd: NotRequired[str]
    exit_code: NotRequired[int]
    error: NotRequired[str]
    process: NotRequired[Process]
    code: NotRequired[CodeState]
    inputs: NotRequired[dict[str, Artifact]]
    outputs: NotRequired[dict[str, Artifact]]
    env: NotRequired[Environment]


ColumnType = Literal["long", "double", "boolean", "string", "datetime"]


class InputColumn(TypedDict):
    """One input of a model's signature."""

    name: str
    type: ColumnType


class Output(TypedDict, total=False):
    """A model's output: its type and shape."""

    type: ColumnType
    shape: list[int]


class Signature(TypedDict):
    """A model's inputs (and output), read from the model file at registration."""

    inputs: list[InputColumn]
    output: NotRequired[Output]
    classes: NotRequired[list[Any]]
    source: NotRequired[str]


class VersionRecord(TypedDict):
    """One version in a registry document."""

    version: int
    run: str
    path: str
    md5: str
    size: int
    created_at: datetime
    format: NotRequired[str]
    code_commit: NotRequired[str]
    commit: NotRequired[str]
    metrics: NotRequired[dict[str, float]]
    params: NotRequired[dict[str, Any]]
    created_by: NotRequired[str]
    description: NotRequired[str]
    signature: NotRequired[Signature]


class RegistryEvent(TypedDict):
    """One change of a model's aliases, in the document's history."""

    at: datetime
    action: str
    version: int
    by: NotRequired[str]
    alias: NotRequired[str]
    previous: NotRequired[int]
    reason: NotRequired[str]
    allowed_findings: NotRequired[list[str]]


class ModelDoc(TypedDict):
    """`.gitml/models/<name>.toml` (schemas/model.schema.json)."""

    schema_version: int
    name: str
    versions: list[VersionRecord]
    aliases: dict[str, int]
    history: list[RegistryEvent]
    description: NotRequired[str]
    tags: NotRequired[dict[str, str]]


class Config(TypedDict):
    """`.gitml/config.toml` (schemas/config.schema.json); each section is a table."""

    schema_version: int
    project: NotRequired[dict[str, Any]]
    tracking: NotRequired[dict[str, Any]]
    hooks: NotRequired[dict[str, Any]]
    registry: NotRequired[dict[str, Any]]
    drift: NotRequired[dict[str, Any]]
    check: NotRequired[dict[str, Any]]
    governance: NotRequired[dict[str, Any]]
    watch: NotRequired[dict[str, Any]]
    metrics: NotRequired[dict[str, Any]]


def normalize_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Params as TOML scalars: nested mappings flatten to dotted keys, None and objects to text.

    NaN and infinities are values like any other float. Mappings nested deeper than
    `store.MAX_DEPTH` are refused: no config nests that deep, and a record that did could
    not be read back by every tool.
    """
    if not prefix and store.depth(params) > store.MAX_DEPTH:
        raise UsageError("params", f"nested more than {store.MAX_DEPTH} levels deep")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise UsageError(f"param {key!r}", "param names are non-empty strings of <= 250 chars")
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(normalize_params(value, prefix=f"{full}."))
        else:
            out[full] = _param_value(value)
    return out


def _param_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, bool | int | float | str) for v in value
    ):
        return list(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        with suppress(TypeError, ValueError):
            return _param_value(item())
    return str(value)
