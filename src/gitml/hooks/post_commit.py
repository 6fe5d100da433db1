"""post-commit: index the new commit's runs."""

from __future__ import annotations

from gitml.query.index import RunIndex
from gitml.repo import Repo


def run(repo: Repo, args: list[str]) -> int:
    """Index the new commit's runs: `gitml runs` and `reproduce <commit>` know where they landed."""
    del args  # git passes none; `gates.post_commit` saw the commit touch .gitml/
    index = RunIndex(repo)
    try:
        index.refresh_history()
    finally:
        index.close()
    return 0
