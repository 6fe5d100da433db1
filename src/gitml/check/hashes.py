"""The hash cache of `gitml check`: cache objects verified once are not re-read while unchanged.

A DVC cache object is named by its md5, so once its bytes are hashed and match, the result holds
until the file changes. Its size, mtime, ctime and inode are kept with the verdict; any change
to the file (a rewrite, a flipped byte, even with the mtime put back, which moves the ctime)
makes the next check read it again. Model scans are kept by md5 and scanner versions: verified
bytes do not change, so neither does what a scanner of the same version finds in them.
Kept in `.gitml/cache/check.sqlite`, which git ignores; deleting it only costs time.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from gitml.data.ingest import md5_of

_TABLES = """
CREATE TABLE IF NOT EXISTS verified (
    path TEXT PRIMARY KEY, md5 TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scans (
    md5 TEXT NOT NULL, scanner TEXT NOT NULL, issues TEXT NOT NULL, PRIMARY KEY (md5, scanner)
);
CREATE TABLE IF NOT EXISTS parsed (key TEXT PRIMARY KEY, doc BLOB, error TEXT);
"""


class HashCache:
    """md5 verdicts by file identity, and model scan results by md5."""

    def __init__(self, cache_dir: Path) -> None:
        file = cache_dir / "check.sqlite"
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._db = self._open(file)
        except sqlite3.DatabaseError:  # a damaged cache file: start again
            file.unlink(missing_ok=True)
            self._db = self._open(file)
        except (OSError, sqlite3.OperationalError):  # a read-only checkout: remember nothing
            self._db = self._open(":memory:")
        self.read = 0  # files hashed by this instance
        self.reused = 0  # verdicts taken from the cache

    @staticmethod
    def _open(file: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(file, timeout=30)
        try:
            db.executescript(_TABLES)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Write the new verdicts and close."""
        self._db.commit()
        self._db.close()

    def md5(self, path: Path) -> str:
        """The md5 of the bytes at ``path``, read only when the file changed since last time."""
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        row = self._db.execute(
            "SELECT md5, size, mtime_ns, ctime_ns, ino FROM verified WHERE path = ?", (str(path),)
        ).fetchone()
        if row is not None and tuple(row[1:]) == key:
            self.reused += 1
            return str(row[0])
        actual = md5_of(path)
        self.read += 1
        after = path.stat()
        if (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) == key:
            self._db.execute("INSERT OR REPLACE INTO verified VALUES (?, ?, ?, ?, ?, ?)",
                             (str(path), actual, *key))  # fmt: skip
        return actual

    def parsed(self, key: str) -> tuple[Any, str | None] | None:
        """A file's parsed content (JSON types) or its error, if one with ``key`` was parsed."""
        import orjson

        row = self._db.execute("SELECT doc, error FROM parsed WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return (None if row[0] is None else orjson.loads(row[0])), row[1]

    def keep_parsed(self, key: str, doc: Any, error: str | None) -> None:
        """Remember a file's parse: its content in JSON types, or the error."""
        import orjson

        blob = None if error is not None else orjson.dumps(doc)
        self._db.execute("INSERT OR REPLACE INTO parsed VALUES (?, ?, ?)", (key, blob, error))

    def scan(self, md5: str, scanner: str) -> list[Any] | None:
        """The issues a scan of ``md5`` by ``scanner`` found, if it ran before."""
        row = self._db.execute(
            "SELECT issues FROM scans WHERE md5 = ? AND scanner = ?", (md5, scanner)
        ).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def keep_scan(self, md5: str, scanner: str, issues: list[Any]) -> None:
        """Remember what the scan of ``md5`` found."""
        self._db.execute("INSERT OR REPLACE INTO scans VALUES (?, ?, ?)",
                         (md5, scanner, json.dumps(issues)))  # fmt: skip
