"""The DVC backend: data and model bytes in DVC's cache and remotes, DVC-compatibly.

One module per verb: `add` (hash, cache, `.dvc` pointer), `transfer` (push and fetch by hash,
to and from any DVC remote), `checkout` (restore bytes by hash, verified), `init`. Hashing and the
local cache go through dvc-data (DVC's own storage library) without importing `dvc`, which keeps
`log_input`/`log_artifact` cheap; remotes and config use DVC's Python API. This package is the
only place that imports dvc.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import logs
from gitml.errors import GitmlError

CACHE_SUBDIR = Path("files") / "md5"


@dataclass(frozen=True, kw_only=True)
class ArtifactRef:
    """Where bytes live in the DVC cache: the same md5 and size a `.dvc` file records."""

    md5: str
    size: int
    nfiles: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The TOML form recorded under `[inputs]`/`[outputs]` of run.toml."""
        out: dict[str, Any] = {"md5": self.md5, "size": self.size}
        if self.nfiles is not None:
            out["nfiles"] = self.nfiles
        return out


def quiet_dvc_logs() -> None:
    """DVC attaches stdout handlers on import; gitml speaks for itself."""
    logs.quiet("dvc", "dvc_data", "dvc_objects")


def cache_dir(root: Path) -> Path:
    """The DVC cache of the repository (`.dvc/cache` unless DVC config says otherwise)."""
    configured = _configured_cache_dir(root)
    return configured if configured is not None else root / ".dvc" / "cache"


def read_dvc_option(root: Path, section: str, option: str) -> str | None:
    """One option from `.dvc/config.local` or `.dvc/config` (no `import dvc`: a fast path)."""
    for name in ("config.local", "config"):
        parser = configparser.ConfigParser()
        try:
            parser.read(root / ".dvc" / name)
        except configparser.Error:
            continue
        if parser.has_option(section, option):
            return parser.get(section, option).strip().strip("'\"")
    return None


def _configured_cache_dir(root: Path) -> Path | None:
    value = read_dvc_option(root, "cache", "dir")
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else (root / ".dvc" / path).resolve()


def cache_path(root: Path, md5: str) -> Path:
    """Where the bytes of ``md5`` sit in the DVC cache."""
    return cache_dir(root) / CACHE_SUBDIR / md5[:2] / md5[2:]


@contextmanager
def dvc_repo(root: Path) -> Iterator[Any]:
    """DVC's `Repo` for ``root``, quiet and closed afterwards."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    quiet_dvc_logs()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo as DvcRepo

    quiet_dvc_logs()
    try:
        repo = DvcRepo(str(root))
    except DvcException as exc:
        raise GitmlError(f"{root}: DVC cannot open this repository: {exc}") from exc
    try:
        yield repo
    finally:
        repo.close()
