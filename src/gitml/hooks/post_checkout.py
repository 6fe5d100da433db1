"""post-checkout and post-merge: put the data and model files of the new commit in place."""

from __future__ import annotations

import os
import sys

from gitml.artifacts.sync import checkout_workspace
from gitml.errors import GitmlError
from gitml.git import git_lines
from gitml.repo import Repo

_REPO_LOCATING = {
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
}


def run(repo: Repo, args: list[str]) -> int:
    """After a branch checkout or a merge (not a file checkout): restore the artifacts."""
    # git passes (old, new, flag) to post-checkout; the pre-commit framework passes nothing
    # and sets PRE_COMMIT_CHECKOUT_TYPE instead. Flag 1 = a branch checkout, 0 = a file.
    flag = args[2] if len(args) >= 3 else os.environ.get("PRE_COMMIT_CHECKOUT_TYPE", "1")
    return _restore_artifacts(repo) if flag == "1" else 0


def run_merge(repo: Repo, args: list[str]) -> int:
    """After a merge: restore the artifacts."""
    del args  # git passes whether it was a squash merge
    return _restore_artifacts(repo)


def _restore_artifacts(repo: Repo) -> int:
    """After a checkout or merge: put the matching data and model files in place."""
    if not git_lines(repo.root, "ls-files", "-z", "*.dvc"):
        return 0  # fast path: no DVC pointer in this tree

    # DVC runs git itself: the hook's GIT_DIR/GIT_INDEX_FILE would point it at the wrong place.
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k in _REPO_LOCATING}
    try:
        changed = checkout_workspace(repo.root)
    except GitmlError as exc:
        print(f"gitml: could not restore data and models: {exc}; run `gitml pull`", file=sys.stderr)
        return 0
    finally:
        os.environ.update(env_backup)
    if changed:
        print(f"gitml: restored {changed} data/model file(s) for this commit", file=sys.stderr)
    return 0
