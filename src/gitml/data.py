"""The DVC backend: hashing and caching data and model bytes, DVC-compatibly.

Hashing and the cache go through dvc-data (DVC's own storage library) without importing `dvc`
itself, which keeps `log_input`/`log_artifact` cheap; repository-level operations (init, config)
use DVC's Python API. This is the only module that imports dvc.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.errors import ArtifactError, GitmlError

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
    for name in ("dvc", "dvc_data", "dvc_objects"):
        logging.getLogger(name).setLevel(logging.WARNING)


def cache_dir(root: Path) -> Path:
    """The DVC cache of the repository (`.dvc/cache` unless DVC config says otherwise)."""
    configured = _configured_cache_dir(root)
    return configured if configured is not None else root / ".dvc" / "cache"


def _configured_cache_dir(root: Path) -> Path | None:
    import configparser

    for name in ("config.local", "config"):
        parser = configparser.ConfigParser()
        try:
            parser.read(root / ".dvc" / name)
        except configparser.Error:
            continue
        if parser.has_option("cache", "dir"):
            value = Path(parser.get("cache", "dir"))
            return value if value.is_absolute() else (root / ".dvc" / value).resolve()
    return None


def add_to_cache(root: Path, path: Path) -> ArtifactRef:
    """Hash a file DVC-compatibly (md5 of its bytes) and put it in the DVC cache."""
    from dvc_data.hashfile.db import get_odb
    from dvc_data.hashfile.hash import file_md5
    from dvc_objects.fs.local import LocalFileSystem

    quiet_dvc_logs()
    if path.is_dir():
        raise ArtifactError(str(path), "is a directory; log the files in it one by one")
    if not path.is_file():
        raise ArtifactError(str(path), "no such file")
    fs = LocalFileSystem()
    odb = get_odb(fs, str(cache_dir(root) / CACHE_SUBDIR))
    try:
        md5 = file_md5(str(path), fs)
        odb.add(str(path), fs, md5)
    except OSError as exc:
        raise ArtifactError(str(path), f"cannot add to the DVC cache: {exc}") from exc
    return ArtifactRef(md5=md5, size=path.stat().st_size)


def cache_path(root: Path, md5: str) -> Path:
    """Where the bytes of ``md5`` sit in the DVC cache."""
    return cache_dir(root) / CACHE_SUBDIR / md5[:2] / md5[2:]


def init_dvc(root: Path, *, remote_dir: Path) -> list[str]:
    """Initialise DVC in ``root`` if needed, quiet it, and give it a default local remote.

    Returns what changed, as short sentences for the user (empty when nothing did).
    """
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    quiet_dvc_logs()
    from dvc.config import Config
    from dvc.repo import Repo as DvcRepo

    quiet_dvc_logs()
    changed = []
    if not (root / ".dvc").is_dir():
        try:
            DvcRepo.init(str(root))
        except Exception as exc:  # dvc raises its own DvcException tree
            raise GitmlError(f"{root}: `dvc init` failed: {exc}") from exc
        changed.append("initialised DVC (.dvc/)")
    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    with config.edit("repo") as conf:
        core = conf.setdefault("core", {})
        if str(core.get("analytics", "")).lower() not in ("false", "0"):
            core["analytics"] = False
            changed.append("turned off DVC analytics for this repository")
        if str(core.get("check_update", "")).lower() not in ("false", "0"):
            core["check_update"] = False
            changed.append("turned off DVC's update check for this repository")
    if not _has_remote(config):
        remote_dir.mkdir(parents=True, exist_ok=True)
        with config.edit("repo") as conf:
            conf.setdefault("remote", {})["local"] = {"url": str(remote_dir)}
            conf["core"]["remote"] = "local"
        changed.append(f"set the default DVC remote 'local' to {remote_dir}")
    return changed


def _has_remote(config: Any) -> bool:
    merged = config.load_config_to_level(None) if hasattr(config, "load_config_to_level") else {}
    return bool(merged.get("remote")) or bool(config.get("remote"))
