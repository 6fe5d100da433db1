"""post-commit: index the new commit's runs; keep the committed summary staged."""

from __future__ import annotations

from gitml import git
from gitml.query.index import RunIndex
from gitml.repo import Repo


def run(repo: Repo, args: list[str]) -> int:
    """Index the new commit's runs: `gitml runs` and `reproduce <commit>` know where they landed.

    After `git commit -- PATHS` the summary pre-commit staged is in the commit but not in the
    real index; it is staged there too (`git.restage_as_committed`).
    """
    del args  # git passes none; `gates.post_commit` saw the commit touch .gitml/
    git.restage_as_committed(repo.root, repo.tracking_setting("summary_file"))
    index = RunIndex(repo)
    try:
        index.refresh_history()
    finally:
        index.close()
    return 0
