"""A gitml project: a git repository with a `.gitml/` folder, and `gitml init`."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from gitml import git, store
from gitml.errors import FileFormatError, NotAGitRepositoryError, NotInitializedError, UsageError

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

CONFIG_TEMPLATE = """\
# gitml project settings. Edit freely: gitml keeps your comments.
schema_version = 1

[project]
name = "{name}"
# Names this project's embedded default DVC remote, the same for every clone on a machine.
id = "{id}"

[tracking]
# Stable-path summary of the latest run; committed, so pull requests show metric changes.
summary_file = "metrics.toml"
# Logged metric steps are buffered and flushed (crash-safe) every N steps or T seconds.
flush_every = 1000
flush_seconds = 1.0
# Files a script run by `gitml run` may write its final metrics to.
capture_files = ["metrics.json", "metrics.toml"]
# Params that only pick a random seed: runs differing in nothing else are repeats of one
# experiment, and `gitml diff` shows their mean ± std and whether a change exceeds that noise.
seed_params = ["seed", "random_state", "random_seed"]

# The model registry: the metric `gitml model promote --require-better` compares.
# [registry]
# metric = "accuracy"

# Per-metric settings: which way is better, used by diffs and promotion.
# [metrics.accuracy]
# goal = "maximize"
"""

GITML_GITIGNORE = """\
# gitml: local caches and live files, never committed
/cache/
/runs/*/*.journal
/runs/*/*.lock
*.tmp
/monitor/*/requests/*.arrows
"""

GITATTRIBUTES_LINES = (
    ".gitml/**/*.parquet diff=gitml-parquet",
    ".gitml/models/*.toml merge=gitml",
    "*.dvc merge=gitml",
)


WRITTEN_FOLDERS = (GITML_DIR, f"{GITML_DIR}/runs", f"{GITML_DIR}/models", f"{GITML_DIR}/cache",
                   f"{GITML_DIR}/monitor", ".dvc", ".dvc/cache")  # fmt: skip


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

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None) -> Repo:
        """The project containing ``start`` (default: the current directory)."""
        root = git.find_root(Path(start) if start is not None else Path.cwd())
        if not (root / GITML_DIR / "config.toml").is_file():
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
        return self.gitml_dir / "cache"

    @property
    def config_path(self) -> Path:
        """`.gitml/config.toml`."""
        return self.gitml_dir / "config.toml"

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run."""
        return self.runs_dir / run_id

    @cached_property
    def config(self) -> dict[str, Any]:
        """The validated project settings."""
        return store.read_toml(self.config_path, kind="config")

    def tracking_setting(self, key: str) -> Any:
        """A `[tracking]` setting, falling back to the default."""
        return self.config.get("tracking", {}).get(key, DEFAULT_TRACKING[key])

    def relpath(self, path: Path | str) -> str:
        """``path`` relative to the project root, POSIX style."""
        return Path(os.path.abspath(path)).relative_to(self.root).as_posix()


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


def ensure_default_remote(repo: Repo) -> list[str]:
    """In a clone (no remote configured at any level), this machine's embedded default remote."""
    from gitml.data.init import ensure_remote

    pid = project_id(repo)
    if pid is None or not (repo.root / ".dvc").is_dir():
        return []
    return ensure_remote(repo.root, default_remote_dir(repo.root, pid))


def project_id(repo: Repo) -> str | None:
    """The committed `[project] id`, if the project has one."""
    value = repo.config.get("project", {}).get("id")
    return value if isinstance(value, str) and value else None


def init_project(
    path: Path, *, create_git: bool = False, remote_dir: Path | None = None
) -> tuple[Repo, list[str]]:
    """Set up gitml (and DVC) in the git repository at ``path``; safe to run again.

    Returns the project and what changed, as short sentences (empty when nothing did).
    """
    from gitml.data.init import init_dvc

    path = path.resolve()
    changed: list[str] = []
    try:
        root = git.find_root(path)
    except NotAGitRepositoryError:
        if not create_git:
            raise
        path.mkdir(parents=True, exist_ok=True)
        git.init(path)
        root = path
        changed.append(f"created a git repository in {path}")
    repo = Repo(root)
    new_id = secrets.token_hex(6)
    changed += _write_if_missing(
        repo.config_path, CONFIG_TEMPLATE.format(name=root.name, id=new_id)
    )
    changed += _write_if_missing(repo.gitml_dir / ".gitignore", GITML_GITIGNORE)
    repo.runs_dir.mkdir(parents=True, exist_ok=True)
    summary = f"/{repo.tracking_setting('summary_file')} merge=gitml"
    for line in (*GITATTRIBUTES_LINES, summary):
        changed += ensure_line(root / ".gitattributes", line)
    changed += git.ensure_config(root, git_drivers())
    store.read_toml(repo.config_path, kind="config")  # an existing, broken config is an error
    repo = Repo(root)  # the config as written
    changed += init_dvc(root, remote_dir=remote_dir or default_remote_dir(root, project_id(repo)))
    changed += _install_hooks(root)
    return repo, changed


def git_drivers() -> dict[str, str]:
    """The git config that names gitml's textconv and merge drivers (local to each clone)."""
    python = shlex.quote(sys.executable)
    return {
        "diff.gitml-parquet.textconv": "gitml textconv",
        "diff.gitml-parquet.cachetextconv": "true",
        "merge.gitml.name": "gitml: merge metrics.toml and registry files by meaning",
        "merge.gitml.driver": f"{python} -m gitml merge-driver %O %A %B %P",
    }


def _write_if_missing(path: Path, text: str) -> list[str]:
    if path.exists():
        return []
    store.atomic_write(path, text.encode())
    return [f"wrote {path.parent.name}/{path.name}"]


def ensure_line(path: Path, line: str) -> list[str]:
    """Append ``line`` to a text file unless it is there; what changed, as a sentence."""
    text = path.read_text() if path.exists() else ""
    if line in text.splitlines():
        return []
    sep = "" if not text or text.endswith("\n") else "\n"
    store.atomic_write(path, (text + sep + line + "\n").encode())
    return [f"added `{line}` to {path.name}"]


def _install_hooks(root: Path) -> list[str]:
    """Install gitml's git hooks, unless the pre-commit framework manages the hooks here."""
    from gitml.hooks.install import install

    if (root / ".pre-commit-config.yaml").is_file():
        return [
            "left git hooks to the pre-commit framework (.pre-commit-config.yaml); add gitml's:\n"
            + PRE_COMMIT_SNIPPET
        ]
    return install(root)


def _framework_hook(stage: str) -> str:
    return (
        f"      - id: gitml-{stage}\n        name: gitml {stage}\n"
        f"        entry: gitml hook {stage}\n        language: system\n"
        f"        pass_filenames: false\n        always_run: true\n"
        f"        stages: [{stage}]\n"
    )


HOOK_STAGES = ("pre-commit", "pre-push", "post-commit", "post-checkout", "post-merge")
PRE_COMMIT_SNIPPET = (
    "  - repo: local\n    hooks:\n"
    + "".join(_framework_hook(stage) for stage in HOOK_STAGES)
    + "then: pre-commit install "
    + " ".join(f"--hook-type {stage}" for stage in HOOK_STAGES)
)
