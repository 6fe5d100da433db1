"""The files `gitml check` reads: which paths are gitml's, where they come from, how each parses.

One table of path -> kind serves the pre-commit hook (staged files) and `gitml check` (the
working tree, one revision, or every version in the history). Parsing a file validates it
against its schema and raises a `GitmlError` naming the file and field at fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from gitml import git, store
from gitml.data.pipeline import load_yaml, parse_lock
from gitml.errors import FileFormatError, GitmlError, SchemaError
from gitml.repo import Repo
from gitml.tracking.journal import read_parquet

TOML_KINDS = (
    "run", "model", "config", "metrics-summary", "drift", "performance", "reproduction", "sweep",
)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One version of one file: its repository path, bytes, and git blob id (None: on disk)."""

    path: str
    data: bytes
    blob: str | None = None


def kind_of(path: str, summary: str) -> str | None:
    """What kind of gitml (or DVC) file ``path`` is, or None when it is none of theirs."""
    p = PurePosixPath(path)
    parts = p.parts
    kind = None
    if path.endswith(".dvc") and not path.startswith(".dvc/") and path != KEEP_DVC:
        kind = "dvc"
    elif p.name == "dvc.lock":
        kind = "dvc-lock"
    elif path == summary:
        kind = "metrics-summary"
    elif len(parts) < 3 or parts[0] != ".gitml":
        kind = "config" if path == ".gitml/config.toml" else None
    elif parts[1] == "runs" and len(parts) == 4:
        kind = _RUN_FILES.get(p.name)
    elif parts[1] == "models" and len(parts) == 3 and p.suffix == ".toml":
        kind = "model"
    elif parts[1] == "monitor" and len(parts) == 4 and p.suffix == ".toml":
        kind = p.name.partition("-")[0]
        kind = kind if kind in ("drift", "performance") else None
    elif parts[1] == "reproductions" and len(parts) == 3 and p.suffix == ".toml":
        kind = "reproduction"
    elif parts[1] == "sweeps" and len(parts) == 4 and p.name == "sweep.toml":
        kind = "sweep"
    elif parts[1] == "monitor" and len(parts) >= 4 and p.suffix == ".parquet":
        kind = "parquet"
    return kind


# Written from the registry (`registry.keep`): its objects are checked as the registry's.
KEEP_DVC = ".gitml/keep.dvc"
_RUN_FILES = {"run.toml": "run", "metrics.parquet": "metrics-parquet", "code.patch": "patch"}


def parse(kind: str, path: str, data: bytes) -> Any:
    """The parsed, validated content of one file of ``kind``; raises `GitmlError` if broken."""
    if kind in TOML_KINDS:
        doc = store.parse_toml(data, source=path)
        store.validate(kind, doc, source=path)
        if kind == "run":
            folder = PurePosixPath(path).parent.name
            if doc["id"] != folder:
                raise SchemaError(path, "id", f"{doc['id']!r} is not its folder's name {folder!r}")
        if kind == "sweep" and doc["id"] != PurePosixPath(path).parent.name:
            raise SchemaError(path, "id", f"{doc['id']!r} is not its folder's name")
        if kind == "reproduction" and doc["run"] != PurePosixPath(path).stem:
            raise SchemaError(path, "run", f"{doc['run']!r} is not its file's name")
        if kind == "model":
            numbers = {v["version"] for v in doc["versions"]}
            for alias, number in doc.get("aliases", {}).items():
                if number not in numbers:
                    raise SchemaError(path, f"aliases.{alias}", f"v{number} is not a version")
        return doc
    if kind == "metrics-parquet":
        return read_parquet(path, data)
    if kind == "parquet":
        return _parquet_rows(path, data)
    if kind == "dvc":
        return _dvc_outs(path, data)
    if kind == "dvc-lock":
        _inputs, outs = parse_lock(data.decode(errors="replace"), path)
        return outs
    return data  # patch: checked against its run's record


def _parquet_rows(path: str, data: bytes) -> int:
    import pyarrow as pa
    from pyarrow._parquet import ParquetReader

    try:
        reader = ParquetReader()
        reader.open(pa.BufferReader(data))
        return int(reader.metadata.num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise FileFormatError(path, f"not a readable Parquet file ({exc})") from exc


def _dvc_outs(path: str, data: bytes) -> dict[str, dict[str, Any]]:
    """A `.dvc` file's outputs: path (from the repository root) -> md5, size."""
    doc = load_yaml(data.decode(errors="replace"), path)
    outs = doc.get("outs") if isinstance(doc, dict) else None
    if not isinstance(outs, list) or not outs:
        raise SchemaError(path, "outs", "a .dvc file lists its outputs under outs")
    found: dict[str, dict[str, Any]] = {}
    folder = PurePosixPath(path).parent
    for i, out in enumerate(outs):
        md5 = out.get("md5") if isinstance(out, dict) else None
        if not isinstance(out, dict) or not isinstance(out.get("path"), str):
            raise SchemaError(path, f"outs.{i}.path", "each output needs a path")
        if md5 is None:
            continue  # not yet hashed (`dvc add --no-commit`)
        if not isinstance(md5, str) or len(md5.removesuffix(".dir")) != 32:
            raise SchemaError(path, f"outs.{i}.md5", f"{md5!r} is not an md5")
        size = out.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise SchemaError(path, f"outs.{i}.size", f"{size!r} is not a size in bytes")
        ref = {"md5": md5, "size": size}
        found[(folder / out["path"]).as_posix().removeprefix("./")] = ref
    return found


# -- where the files come from ------------------------------------------------------------------


def working_tree(repo: Repo) -> Iterator[Entry]:
    """The gitml and DVC files on disk (tracked or not, unless git ignores them)."""
    summary = repo.tracking_setting("summary_file")
    seen = set()
    gitml = repo.gitml_dir
    if gitml.is_dir():
        for file in sorted(gitml.rglob("*")):
            rel = file.relative_to(repo.root).as_posix()
            if rel.startswith(".gitml/cache/") or not file.is_file():
                continue
            if kind_of(rel, summary) is not None:
                seen.add(rel)
                yield Entry(rel, file.read_bytes())
    listed = git.run_git(repo.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                         "--", "*.dvc", "dvc.lock", "*/dvc.lock", summary)  # fmt: skip
    for rel in sorted(set(filter(None, listed.split("\0")))):
        file = repo.root / rel
        if rel not in seen and kind_of(rel, summary) is not None and file.is_file():
            yield Entry(rel, file.read_bytes())


def at_revision(repo: Repo, rev: str) -> Iterator[Entry]:
    """The gitml and DVC files of one commit's tree, read from git."""
    yield from _read(repo, tree_blobs(repo, rev))


def tree_blobs(repo: Repo, rev: str) -> dict[str, str]:
    """Blob id -> path of the gitml and DVC files in one commit's tree (nothing read)."""
    commit = resolve(repo, rev)
    summary = repo.tracking_setting("summary_file")
    listing = git.run_git(repo.root, "ls-tree", "-r", "-z", "--full-tree", commit)
    wanted: dict[str, str] = {}
    for line in filter(None, listing.split("\0")):
        meta, _, path = line.partition("\t")
        _mode, kind, oid = meta.split()
        if kind == "blob" and kind_of(path, summary) is not None:
            wanted.setdefault(oid, path)
    return wanted


def in_history(repo: Repo) -> Iterator[Entry]:
    """Every version of every gitml and DVC file reachable from any ref (each blob once)."""
    summary = repo.tracking_setting("summary_file")
    listing = git.run_git(repo.root, "rev-list", "--all", "--objects",
                          "--filter=object:type=blob", "--filter-provided-objects")  # fmt: skip
    wanted: dict[str, str] = {}
    for line in listing.splitlines():
        oid, _, path = line.partition(" ")
        if path and kind_of(path, summary) is not None:
            wanted.setdefault(oid, path)
    yield from _read(repo, wanted)


def _read(repo: Repo, wanted: dict[str, str]) -> Iterator[Entry]:
    for oid, data in git.stream_blobs(repo.root, list(wanted)):
        yield Entry(wanted[oid], data, oid)


def resolve(repo: Repo, rev: str) -> str:
    """The commit ``rev`` names, or a `GitmlError` naming it."""
    try:
        out = git.run_git(repo.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        return out.strip()
    except GitmlError as exc:
        raise GitmlError(f"--rev {rev}: not a commit in this repository") from exc


def commits_adding(repo: Repo, blobs: set[str]) -> dict[str, str]:
    """For each blob id, a commit (on any ref) that wrote it: where a finding in history is."""
    found: dict[str, str] = {}
    if not blobs:
        return found
    with contextlib.closing(git.written_blobs(repo.root)) as written:
        for commit, blob in written:
            if blob in blobs and blob not in found:
                found[blob] = commit
                if len(found) == len(blobs):
                    break
    return found
