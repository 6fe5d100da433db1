"""Setting up a gitml project: `gitml init` (config, DVC, git attributes, drivers and hooks)."""

from __future__ import annotations

import secrets
import shlex
import sys
from pathlib import Path

from gitml import git, store
from gitml.data.init import ensure_remote, init_dvc
from gitml.errors import NotAGitRepositoryError
from gitml.hook_install import install
from gitml.repo import Repo, default_remote_dir, ensure_line, project_id

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
/keep/
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


def init_project(
    path: Path, *, create_git: bool = False, remote_dir: Path | None = None
) -> tuple[Repo, list[str]]:
    """Set up gitml (and DVC) in the git repository at ``path``; safe to run again.

    Returns the project and what changed, as short sentences (empty when nothing did).
    """
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


def _install_hooks(root: Path) -> list[str]:
    """Install gitml's git hooks, unless the pre-commit framework manages the hooks here."""
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


def ensure_default_remote(repo: Repo) -> list[str]:
    """In a clone (no remote configured at any level), this machine's embedded default remote."""
    pid = project_id(repo)
    if pid is None or not (repo.root / ".dvc").is_dir():
        return []
    return ensure_remote(repo.root, default_remote_dir(repo.root, pid))
