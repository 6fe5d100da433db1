"""Remembered hashes, kept in the git-ignored `.gitml/cache/`.

A file is hashed once and its md5 reused while its size, mtime and inode stay the same, as DVC's
own state does.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

_TABLE = (
    "CREATE TABLE IF NOT EXISTS hashes("
    "path TEXT PRIMARY KEY, ino INT, size INT, mtime_ns INT, md5 TEXT)"
)


class HashState:
    """``get``/``put`` md5s keyed by path and validated by the file's stat."""

    def __init__(self, root: Path) -> None:
        folder = root / ".gitml" / "cache"
        if not (root / ".gitml").is_dir() and (root / ".dvc").is_dir():
            folder = root / ".dvc" / "tmp" / "gitml"  # a plain DVC repository, read as it is
        folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(folder / "hashes.sqlite", timeout=30, isolation_level=None)
        self.db.execute(_TABLE)

    def get(self, path: Path, st: os.stat_result) -> str | None:
        """The remembered md5 of ``path`` if the file has not changed since."""
        row = self.db.execute(
            "SELECT ino, size, mtime_ns, md5 FROM hashes WHERE path=?", (str(path),)
        ).fetchone()
        if row is not None and tuple(row[:3]) == (st.st_ino, st.st_size, st.st_mtime_ns):
            return str(row[3])
        return None

    def put(self, path: Path, st: os.stat_result, md5: str) -> None:
        """Remember ``md5`` for the file as it is now."""
        self.db.execute(
            "INSERT OR REPLACE INTO hashes VALUES(?,?,?,?,?)",
            (str(path), st.st_ino, st.st_size, st.st_mtime_ns, md5),
        )

    def close(self) -> None:
        """Close the database."""
        self.db.close()
