"""`gitml hook <name>`: run one installed hook; each hook is its own module, imported alone.

A hook starts on every git operation, so its gate (`gates.py`: git and the config only) first
says whether there is anything to do; only then is the hook's own module imported. A plain
commit loads no check, no DVC and no run index.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from gitml import logs
from gitml.errors import GitmlError
from gitml.git import HOOKS
from gitml.hooks import gates
from gitml.repo import Repo

# hook name: (its gate, or None: always work; the module under gitml.hooks that does the work)
ENTRY_POINTS: dict[str, tuple[Callable[[Repo, list[str]], int | None] | None, str]] = {
    "pre-commit": (gates.pre_commit, "pre_commit"),
    "pre-push": (None, "pre_push"),
    "post-checkout": (gates.post_checkout, "post_checkout"),
    "post-merge": (gates.post_merge, "post_checkout"),
    "post-commit": (gates.post_commit, "post_commit"),
}


def run_hook(name: str, args: list[str]) -> int:
    """Run one hook; its exit code blocks the git operation for pre-* hooks."""
    if name not in ENTRY_POINTS:
        raise GitmlError(f"hook {name!r}: unknown; gitml has {', '.join(HOOKS)}")
    gate, module = ENTRY_POINTS[name]
    repo = Repo.find()
    done = gate(repo, args) if gate is not None else None
    if done is not None:
        return done  # nothing to do: the hook's module is never imported
    logs.configure()
    code: int = importlib.import_module(f"gitml.hooks.{module}").run(repo, args)
    return code
