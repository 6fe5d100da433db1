"""The run.toml files of the working tree, stat'ed fast: what the index re-reads when changed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

RUN_FILE = "run.toml"


Stat = tuple[str, str, os.stat_result]  # run id, path of its run.toml, its stat


def scan(runs_dir: Path) -> Iterator[Stat]:
    """Each run folder's run.toml and its stat (a folder without one is skipped)."""
    # Plain strings and os.stat: pathlib costs ~5 us a file, which is 0.5 s for 100,000 runs.
    try:
        entries = os.scandir(runs_dir)
    except FileNotFoundError:
        return
    stat = os.stat
    with entries:
        for entry in entries:
            path = f"{entry.path}/{RUN_FILE}"
            try:
                yield entry.name, path, stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue


def digesting(stats: Iterable[Stat], hasher: Any) -> Iterator[Stat]:
    """``stats``, passed through, each added to ``hasher`` on the way."""
    for run_id, path, st in stats:
        hasher.update(f"{run_id}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
        yield run_id, path, st


def new_digest() -> Any:
    """The hasher `digesting` feeds; `stat_digest` and the index must use the same one."""
    return hashlib.blake2b(digest_size=16)


def stat_digest(stats: Iterable[Stat]) -> str:
    """One digest of every stat: equal digests, nothing changed (size, mtime, inode)."""
    hasher = new_digest()
    for _ in digesting(stats, hasher):
        pass
    return hasher.hexdigest()
