"""post-commit: index the new commit's runs."""

from __future__ import annotations

from gitml.git import git_lines
from gitml.query.index import RunIndex
from gitml.repo import Repo


def run(repo: Repo, args: list[str]) -> int:
    """Index the new commit's runs: `gitml runs` and `reproduce <commit>` know where they landed."""
    del args  # git passes none
    touched = git_lines(repo.root, "diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "HEAD")
    if not any(p.startswith(".gitml/") for p in touched):
        return 0

    index = RunIndex(repo)
    try:
        index.refresh_history()
    finally:
        index.close()
    return 0
