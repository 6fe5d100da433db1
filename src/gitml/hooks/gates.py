"""Whether a hook has anything to do, decided from git and the config alone.

A hook runs on every commit, checkout and merge, so the dispatcher asks its gate first and
imports the hook's own module (the checks, DVC, the run index) only when the gate finds work.
Each gate returns the hook's exit code when there is nothing more to do, or None to go on.
"""

from __future__ import annotations

import os

from gitml import store
from gitml.errors import GitmlError
from gitml.git import git_lines
from gitml.repo import Repo

DEFAULT_LARGE_FILE_MB = 10.0


def pre_commit(repo: Repo, args: list[str]) -> int | None:
    """Go on when a gitml or DVC file is staged, or a large file; else let the commit go."""
    del args  # git passes none
    staged = staged_paths(repo)
    return None if ours(repo, staged) or large_files(repo, staged) else 0


def post_checkout(repo: Repo, args: list[str]) -> int | None:
    """Go on after a branch checkout (not a file's) of a tree with DVC pointers."""
    # git passes (old, new, flag) to post-checkout; the pre-commit framework passes nothing
    # and sets PRE_COMMIT_CHECKOUT_TYPE instead. Flag 1 = a branch checkout, 0 = a file.
    flag = args[2] if len(args) >= 3 else os.environ.get("PRE_COMMIT_CHECKOUT_TYPE", "1")
    return post_merge(repo, args) if flag == "1" else 0


def post_merge(repo: Repo, args: list[str]) -> int | None:
    """Go on when the tree has DVC pointers to put data and models back for."""
    del args  # git passes whether it was a squash merge
    return None if git_lines(repo.root, "ls-files", "-z", "*.dvc") else 0


def post_commit(repo: Repo, args: list[str]) -> int | None:
    """Go on when the commit touched `.gitml/` (its runs are then indexed)."""
    del args  # git passes none
    touched = git_lines(repo.root, "diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "HEAD")
    return None if any(p.startswith(".gitml/") for p in touched) else 0


def staged_paths(repo: Repo) -> list[str]:
    """The paths the commit adds, copies, changes or renames."""
    return git_lines(repo.root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR")


def ours(repo: Repo, staged: list[str]) -> list[str]:
    """The staged paths gitml checks: its own files, the summary, DVC pointers."""
    summary = repo.tracking_setting("summary_file")
    return [p for p in staged if p.startswith(".gitml/") or p == summary or p.endswith(".dvc")]


def large_files(repo: Repo, staged: list[str]) -> list[str]:
    """What is wrong with each staged file over `[hooks] large_file_mb` (not gitml's own)."""
    limit = large_file_limit(repo)
    problems = []
    for path in staged:
        if path.startswith(".gitml/") or path.endswith((".dvc", ".gitignore")):
            continue
        try:
            size = (repo.root / path).stat().st_size
        except OSError:
            continue
        if size > limit * 2**20:
            problems.append(
                f"{path}: {size / 2**20:.1f} MB staged straight into git (limit {limit:g} MB, "
                f"[hooks] large_file_mb); track it with DVC instead: "
                f"`git rm --cached {path}` then `dvc add {path}` (or log it with run.log_artifact)"
            )
    return problems


def large_file_limit(repo: Repo) -> float:
    """`[hooks] large_file_mb`, in MB."""
    # Read without compiling the config's schema: this runs on every commit. A staged config
    # change is validated in full by the pre-commit hook's checks.
    try:
        raw = store.read_toml(repo.config_path)
    except GitmlError:
        return DEFAULT_LARGE_FILE_MB
    value = raw.get("hooks", {}).get("large_file_mb", DEFAULT_LARGE_FILE_MB)
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_LARGE_FILE_MB
