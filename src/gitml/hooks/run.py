"""`gitml hook <name>`: run one installed hook; each hook is its own module, imported alone.

A hook starts on every git operation, so only the module of the hook that runs is imported:
a plain commit loads what pre-commit needs and nothing of push, checkout or the index.
"""

from __future__ import annotations

import importlib

from gitml.errors import GitmlError
from gitml.git import HOOKS
from gitml.repo import Repo

# hook name: (module under gitml.hooks, its entry point)
ENTRY_POINTS = {
    "pre-commit": ("pre_commit", "run"),
    "pre-push": ("pre_push", "run"),
    "post-checkout": ("post_checkout", "run"),
    "post-merge": ("post_checkout", "run_merge"),
    "post-commit": ("post_commit", "run"),
}


def run_hook(name: str, args: list[str]) -> int:
    """Run one hook; its exit code blocks the git operation for pre-* hooks."""
    if name not in ENTRY_POINTS:
        raise GitmlError(f"hook {name!r}: unknown; gitml has {', '.join(HOOKS)}")
    module, function = ENTRY_POINTS[name]
    entry = getattr(importlib.import_module(f"gitml.hooks.{module}"), function)
    code: int = entry(Repo.find(), args)
    return code
