"""post-checkout and post-merge: put the data and model files of the new commit in place.

Run when `gates.post_checkout` / `gates.post_merge` found DVC pointers in the tree.
"""

from __future__ import annotations

import os
import sys

from gitml.artifacts.sync import checkout_workspace
from gitml.errors import GitmlError
from gitml.repo import Repo

_REPO_LOCATING = {
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
}


def run(repo: Repo, args: list[str]) -> int:
    """After a branch checkout or a merge (its gate saw DVC pointers): restore the artifacts."""
    del args  # the gate read them

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
