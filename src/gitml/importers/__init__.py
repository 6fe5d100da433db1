"""Importers: history from other trackers becomes gitml files."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Summary:
    """What an import carried, and what it did not."""

    experiments: int = 0
    runs: int = 0
    skipped: int = 0
    steps: int = 0
    artifacts: int = 0
    models: int = 0
    versions: int = 0
    aliases: int = 0
    not_carried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # what the source would not give, and why
