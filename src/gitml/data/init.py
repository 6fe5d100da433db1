"""Set DVC up in a repository: `dvc init`, quiet, and a default local remote."""

from __future__ import annotations

import os
from pathlib import Path

from gitml.data import quiet_dvc_logs
from gitml.errors import GitmlError


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
    changed += ensure_remote(root, remote_dir)
    return changed


def ensure_remote(root: Path, remote_dir: Path) -> list[str]:
    """Give DVC the embedded default remote unless some remote is configured at any level.

    It is a path on this machine, so it goes into `.dvc/config.local`, which git ignores: the
    committed `.dvc/config` stays right for every teammate and CI job, and a team remote
    committed there is never overridden.
    """
    from dvc.config import Config

    quiet_dvc_logs()
    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    if config.get("remote"):  # every config level merged: a remote set anywhere counts
        return []
    remote_dir.mkdir(parents=True, exist_ok=True)
    with config.edit("local") as conf:
        conf.setdefault("remote", {})["local"] = {"url": str(remote_dir)}
        conf.setdefault("core", {})["remote"] = "local"
    return [f"set the default DVC remote 'local' to {remote_dir} (in .dvc/config.local)"]


def add_remote(root: Path, name: str, url: str, *, default: bool = False) -> None:
    """Add (or change) a DVC remote in the repository's `.dvc/config`; any DVC URL works."""
    from dvc.config import Config

    quiet_dvc_logs()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise GitmlError(f"remote name {name!r}: use letters, digits, - and _")
    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    with config.edit("repo") as conf:
        conf.setdefault("remote", {})[name] = {"url": url}
        if default:
            conf.setdefault("core", {})["remote"] = name
    if default:  # this machine's embedded default must not override the team's choice
        with config.edit("local") as conf:
            conf.get("core", {}).pop("remote", None)


def list_remotes(root: Path) -> tuple[dict[str, str], str | None]:
    """Remote name -> URL (every config level merged), and the default remote's name."""
    from dvc.config import Config

    quiet_dvc_logs()
    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    remotes = {name: str(conf.get("url", "")) for name, conf in config.get("remote", {}).items()}
    return remotes, config.get("core", {}).get("remote")
