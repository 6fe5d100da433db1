"""Importers: history from other trackers becomes gitml files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gitml.repo import Repo


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


@contextmanager
def staged_run(repo: Repo, run_id: str) -> Iterator[Path]:
    """A folder to build an imported run in, renamed to its run folder whole at the end.

    The staging folder is in `.gitml/cache/` (git-ignored, on the same file system), so a
    failure, or a kill, never leaves half a run where queries and `gitml check` look; a
    leftover staging folder is cleared by the next import of the same run. A run folder
    without a run.toml (from an older gitml) is replaced.
    """
    staging = repo.cache_dir / "import" / run_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        target = repo.run_dir(run_id)
        if target.is_dir() and not (target / "run.toml").exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
