"""Alias names: the well-known ones, and a new alias refused when it looks like a misspelling."""

from __future__ import annotations

from typing import Any

from gitml.errors import PromotionRefusedError

WELL_KNOWN_ALIASES = ("production", "staging", "champion", "challenger", "canary", "shadow")


def refuse_misspelt(name: str, alias: str, aliases: dict[str, Any]) -> None:
    """Refuse a new alias two edits or fewer from an existing or well-known one."""
    for known in sorted({*aliases, *WELL_KNOWN_ALIASES}):
        if known != alias and edits(alias, known) <= 2:
            raise PromotionRefusedError(
                f"model {name}: no alias {alias!r}; did you mean {known!r}? (to create "
                f"{alias!r} anyway: --new-alias)"
            )


def edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char != other)))  # fmt: skip
        previous = current
    return previous[-1]
