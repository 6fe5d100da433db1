"""A gitml project: a git repository with a `.gitml/` folder, and `gitml init`."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from gitml import git, store
from gitml.errors import FileFormatError, NotInitializedError, UsageError

if TYPE_CHECKING:
    from gitml.records import Config

GITML_DIR = ".gitml"
# Paths gitml writes itself: never part of a run's code patch or dirty flag.
OWN_PATHS = (".gitml/",)

DEFAULT_TRACKING = {
    "summary_file": "metrics.toml",
    "flush_every": 1000,
    "flush_seconds": 1.0,
    "capture_files": ["metrics.json", "metrics.toml"],
    "seed_params": ["seed", "random_state", "random_seed"],
    "allow_params": [],
    "detect": True,
    "inputs": [],
    "env_vars": [],
    "summary_run": "",
}


WRITTEN_FOLDERS = (GITML_DIR, f"{GITML_DIR}/runs", f"{GITML_DIR}/models", f"{GITML_DIR}/cache",
                   f"{GITML_DIR}/monitor", f"{GITML_DIR}/keep", ".dvc", ".dvc/cache", ".dvc/tmp",
                   ".dvc/tmp/gitml")  # fmt: skip


def _no_linked_folders(root: Path) -> None:
    """Refuse a project whose own folders are symlinks.

    A branch that commits `.gitml/runs -> /somewhere` would have every later write land there.
    """
    for folder in WRITTEN_FOLDERS:
        if (root / folder).is_symlink():
            raise FileFormatError(
                folder, f"is a symlink (to {os.readlink(root / folder)}); gitml writes only into "
                        "real folders of the repository: remove the link"
            )  # fmt: skip


@dataclass(frozen=True)
class Repo:
    """A gitml project rooted at the top of a git working tree."""

    root: Path
    dvc_only: bool = False  # a plain DVC repository read as it is: no `.gitml/` of its own

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None, *, reading: bool = False) -> Repo:
        """The project containing ``start`` (default: the current directory).

        ``reading``: a command that only reads also accepts a plain DVC repository (a `.dvc/`
        folder, no `gitml init`): its history is read as runs (`gitml.query.dvc_runs`), on the
        default settings, with the index cached in `.dvc/tmp/gitml/`, which DVC ignores.
        """
        root = git.find_root(Path(start) if start is not None else Path.cwd())
        if not (root / GITML_DIR / "config.toml").is_file():
            if reading and (root / ".dvc").is_dir() and not (root / ".dvc").is_symlink():
                _no_linked_folders(root)
                return cls(root, dvc_only=True)
            raise NotInitializedError(str(root))
        _no_linked_folders(root)
        return cls(root)

    @property
    def gitml_dir(self) -> Path:
        """`.gitml/` of the project."""
        return self.root / GITML_DIR

    @property
    def runs_dir(self) -> Path:
        """Where run folders live."""
        return self.gitml_dir / "runs"

    @property
    def cache_dir(self) -> Path:
        """Gitml's local, git-ignored cache (the query index)."""
        if self.dvc_only:
            return self.root / ".dvc" / "tmp" / "gitml"
        return self.gitml_dir / "cache"

    @property
    def config_path(self) -> Path:
        """`.gitml/config.toml`."""
        return self.gitml_dir / "config.toml"

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run."""
        return self.runs_dir / run_id

    @cached_property
    def config(self) -> Config:
        """The validated project settings (the defaults, in a plain DVC repository)."""
        if self.dvc_only:
            return cast("Config", {})
        return cast("Config", store.read_toml(self.config_path, kind="config"))

    def tracking_setting(self, key: str) -> Any:
        """A `[tracking]` setting, falling back to the default."""
        return self.config.get("tracking", {}).get(key, DEFAULT_TRACKING[key])

    def relpath(self, path: Path | str) -> str:
        """``path`` relative to the project root, POSIX style."""
        return Path(os.path.abspath(path)).relative_to(self.root).as_posix()


# Names that say which way a metric is better, when [metrics.<name>] goal does not.
MAXIMIZE_HINTS = ("acc", "f1", "auc", "precision", "recall", "r2", "score", "map", "ndcg")
MINIMIZE_HINTS = ("loss", "error", "mse", "mae", "rmse", "perplexity", "latency")


def metric_goal(repo: Repo, metric: str) -> str | None:
    """maximize/minimize from `[metrics.<name>] goal` in config, else guessed from the name."""
    configured = repo.config.get("metrics", {}).get(metric, {}).get("goal")
    if configured:
        return str(configured)
    lowered = metric.lower()
    if any(h in lowered for h in MINIMIZE_HINTS):
        return "minimize"
    if any(h in lowered for h in MAXIMIZE_HINTS):
        return "maximize"
    return None


@dataclass(frozen=True)
class SummaryRule:
    """Which of two finished runs metrics.toml shows: the better one by ``metric``'s goal."""

    metric: str
    goal: str  # maximize or minimize

    def prefers(self, new: Any, old: Any) -> bool:
        """Whether a run with ``new`` as the metric's value beats one with ``old``."""
        return bool(new > old if self.goal == "maximize" else new < old)


def summary_rule(repo: Repo) -> SummaryRule | None:
    """The `[registry] metric` rule for metrics.toml, or None: then the newer run is shown.

    None with `[tracking] summary_run` or without a registry metric. A metric's goal is
    `metric_goal`'s, maximize when neither the config nor its name says.
    """
    metric = repo.config.get("registry", {}).get("metric")
    if repo.tracking_setting("summary_run") or not metric:
        return None
    return SummaryRule(metric, metric_goal(repo, metric) or "maximize")


# The model registry's files: one TOML per model name under .gitml/models/.
MODELS_DIR = "models"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def registry_path(repo: Repo, name: str) -> Path:
    """Where model ``name``'s registry file lives."""
    if not NAME_RE.match(name):
        raise UsageError(
            "name",
            f"{name!r}: use letters, digits, '_', '.' and '-' (starting with one of the first two)",
        )
    return repo.gitml_dir / MODELS_DIR / f"{name}.toml"


def default_remote_dir(root: Path, project_id: str | None = None) -> Path:
    """The embedded default DVC remote: a local folder per project under the user's data dir.

    It is named by the project's committed `[project] id`, so every clone on this machine finds
    the same folder (a project set up before ids existed falls back to its path).
    """
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    if project_id:
        return base / "gitml" / "remotes" / project_id
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return base / "gitml" / "remotes" / f"{root.name}-{tag}"


def project_id(repo: Repo) -> str | None:
    """The committed `[project] id`, if the project has one."""
    value = repo.config.get("project", {}).get("id")
    return value if isinstance(value, str) and value else None


def ensure_line(path: Path, line: str) -> list[str]:
    """Append ``line`` to a text file unless it is there; what changed, as a sentence."""
    return [f"added `{line}` to {path.name}"] if store.append_line(path, line) else []
