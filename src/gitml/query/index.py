"""The run index: every run in the working tree and in the history of every local branch.

History is read from git objects (nothing is checked out). The index is a git-ignored SQLite file
under `.gitml/cache/`. Records are parsed, validated and flattened once per git blob id, whether
they come from a commit or from the working tree (whose files are hashed as git would, and
re-read only when their size, mtime or inode change). The index remembers which commits it has
read and the branch tips it saw: when no tip moved, nothing is walked. It is a cache: deleting it
loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import git, store
from gitml.errors import GitmlError
from gitml.query.rows import flatten
from gitml.repo import Repo

INDEX_FORMAT = "2"
RUN_FILE = "run.toml"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS commits(oid TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS blobs(blob TEXT PRIMARY KEY, row TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS versions(run_id TEXT, blob TEXT, oid TEXT, time INTEGER);
CREATE INDEX IF NOT EXISTS versions_oid ON versions(oid);
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, blob TEXT, time INTEGER, oid TEXT, landed TEXT, landed_time INTEGER);
CREATE TABLE IF NOT EXISTS workfiles(
    run_id TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, blob TEXT);
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexedRun:
    """One run as the index knows it."""

    run_id: str
    row: dict[str, Any] | None  # the flat row; None when the record is invalid
    landed: str | None  # first commit holding the run, None if not committed yet
    commit: str | None  # the commit of the newest committed version
    blob: str  # git blob id of the record shown
    in_workdir: bool  # the record shown is the working tree's file
    error: str | None = None


class RunIndex:
    """Open with `RunIndex(repo)`; `refresh_history()`, `refresh_workdir()`, then `runs()`."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.path = repo.cache_dir / "index.sqlite"
        self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open_checked()
        except sqlite3.DatabaseError:
            # A cache: when it is broken, start again from git and the working tree.
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            return self._open_checked()

    def _open_checked(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        row = None
        with contextlib.suppress(sqlite3.OperationalError):  # a new, empty file
            row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] != INDEX_FORMAT:
            tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            for (name,) in tables:
                db.execute(f'DROP TABLE IF EXISTS "{name}"')
            db.executescript(_TABLES)
            db.execute("INSERT INTO meta VALUES('format', ?)", (INDEX_FORMAT,))
        return db

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- history -------------------------------------------------------------------------------
    def refresh_history(self) -> int:
        """Index the commits not read yet; returns how many were read.

        When no branch tip moved since the last refresh nothing is walked. When commits are no
        longer reachable (reset, rebase, deleted branch), their versions are dropped.
        """
        tips = json.dumps(sorted(git.ref_tips(self.repo.root).items()))
        row = self.db.execute("SELECT value FROM meta WHERE key='tips'").fetchone()
        if row is not None and row[0] == tips:
            return 0
        reachable = git.reachable_commits(self.repo.root)
        known = {r[0] for r in self.db.execute("SELECT oid FROM commits")}
        new = [c for c in reachable if c not in known]
        gone = known - set(reachable)
        runs_path = self.repo.runs_dir.relative_to(self.repo.root).as_posix()
        pending = list(git.run_blobs(self.repo.root, runs_path, new))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._store_git_blobs(
                {b.blob: f"{b.commit[:12]}:{runs_path}/{b.run_id}/run.toml" for b in pending}
            )
            if gone:
                self._forget(gone)
            # Oldest first: a later commit's version of a run replaces an earlier one.
            for blob in reversed(pending):
                self._store_version(blob)
            self.db.executemany("INSERT OR IGNORE INTO commits VALUES(?)", [(c,) for c in new])
            self.db.execute("INSERT OR REPLACE INTO meta VALUES('tips', ?)", (tips,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(new)

    def _forget(self, gone: set[str]) -> None:
        for chunk in _chunks(sorted(gone), 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM commits WHERE oid IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM versions WHERE oid IN ({marks})", chunk)
        self.db.execute("DELETE FROM runs")
        self.db.execute(
            "INSERT INTO runs SELECT run_id, blob, time, oid, landed, landed_time FROM ("
            " SELECT run_id, blob, time, oid,"
            "  row_number() OVER (PARTITION BY run_id ORDER BY time DESC, rowid DESC) AS rn,"
            "  first_value(oid) OVER (PARTITION BY run_id ORDER BY time, rowid) AS landed,"
            "  min(time) OVER (PARTITION BY run_id) AS landed_time"
            " FROM versions) WHERE rn = 1"
        )

    def _missing_blobs(self, blob_ids: set[str]) -> list[str]:
        have: set[str] = set()
        for chunk in _chunks(sorted(blob_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT blob FROM blobs WHERE blob IN ({marks})"
            have.update(r[0] for r in self.db.execute(query, chunk))
        return sorted(blob_ids - have)

    def _store_git_blobs(self, sources: dict[str, str]) -> None:
        """Parse the blobs not indexed yet; ``sources`` names each as `<commit>:<path>`."""
        missing = self._missing_blobs(set(sources))
        rows = [
            (oid, *_parse(raw, source=sources[oid]))
            for oid, raw in git.read_blobs(self.repo.root, missing)
        ]
        self.db.executemany("INSERT OR REPLACE INTO blobs VALUES(?,?,?)", rows)

    def _store_version(self, blob: git.RunBlob) -> None:
        self.db.execute(
            "INSERT INTO versions VALUES(?,?,?,?)",
            (blob.run_id, blob.blob, blob.commit, blob.commit_time),
        )
        row = self.db.execute(
            "SELECT time, landed_time FROM runs WHERE run_id=?", (blob.run_id,)
        ).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO runs VALUES(?,?,?,?,?,?)",
                (
                    blob.run_id,
                    blob.blob,
                    blob.commit_time,
                    blob.commit,
                    blob.commit,
                    blob.commit_time,
                ),
            )
            return
        if blob.commit_time >= row[0]:
            self.db.execute(
                "UPDATE runs SET blob=?, time=?, oid=? WHERE run_id=?",
                (blob.blob, blob.commit_time, blob.commit, blob.run_id),
            )
        if blob.commit_time < row[1]:
            self.db.execute(
                "UPDATE runs SET landed=?, landed_time=? WHERE run_id=?",
                (blob.commit, blob.commit_time, blob.run_id),
            )

    # -- working tree --------------------------------------------------------------------------
    def refresh_workdir(self) -> int:
        """Re-read the run.toml files of the working tree that changed; returns how many."""
        cached = {
            r[0]: r[1:]
            for r in self.db.execute("SELECT run_id, size, mtime_ns, ino FROM workfiles")
        }
        changed: list[tuple[str, int, int, int, str]] = []
        contents: dict[str, tuple[bytes, str]] = {}
        for run_id, path, st in _scan_runs(self.repo.runs_dir):
            if cached.pop(run_id, None) == (st.st_size, st.st_mtime_ns, st.st_ino):
                continue
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError:
                continue  # vanished or unreadable between scan and read: next time
            blob = _git_blob_id(raw)
            changed.append((run_id, st.st_size, st.st_mtime_ns, st.st_ino, blob))
            contents[blob] = (raw, path)
        if not changed and not cached:
            return 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            # A file identical to a committed version is already parsed: its blob id is known.
            rows = [
                (blob, *_parse(contents[blob][0], source=os.path.relpath(contents[blob][1])))
                for blob in self._missing_blobs(set(contents))
            ]
            self.db.executemany("INSERT OR REPLACE INTO blobs VALUES(?,?,?)", rows)
            self.db.executemany("INSERT OR REPLACE INTO workfiles VALUES(?,?,?,?,?)", changed)
            self.db.executemany("DELETE FROM workfiles WHERE run_id=?", [(r,) for r in cached])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(changed)

    def running_in_workdir(self) -> list[str]:
        """Ids of the working-tree runs whose record says running."""
        query = (
            "SELECT w.run_id FROM workfiles w JOIN blobs b ON b.blob = w.blob "
            'WHERE b.row LIKE \'%"status": "running"%\''
        )
        return [run_id for (run_id,) in self.db.execute(query)]

    # -- reading -------------------------------------------------------------------------------
    def runs(self) -> Iterator[IndexedRun]:
        """Every run: the working-tree version where there is one, else the newest committed."""
        for run_id, row, error, landed, oid, blob, local in self.scan():
            yield IndexedRun(run_id=run_id, row=row, error=error, landed=landed, commit=oid,
                             blob=blob, in_workdir=local)  # fmt: skip

    def scan(self) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
        """`runs()` as plain tuples (run id, row, error, landed, commit, blob, in working tree).

        Three table scans joined in dicts, and no object per run: sequential reads beat 100,000
        B-tree lookups by 3x, and this is the hot path of every query.
        """
        import orjson

        loads = orjson.loads
        parsed = {blob: (row, error) for blob, row, error in self.db.execute("SELECT * FROM blobs")}
        workdir = dict(self.db.execute("SELECT run_id, blob FROM workfiles"))
        committed = self.db.execute("SELECT run_id, blob, oid, landed FROM runs")
        for run_id, blob, oid, landed in committed:
            local = workdir.pop(run_id, None)
            text, error = parsed[local or blob]
            row = loads(text) if text else None
            if row is not None:
                row["commit"] = landed
            yield run_id, row, error, landed, oid, local or blob, local is not None
        for run_id, blob in workdir.items():
            text, error = parsed[blob]
            row = loads(text) if text else None
            if row is not None:
                row["commit"] = None
            yield run_id, row, error, None, None, blob, True


def record_of(repo: Repo, run: IndexedRun) -> dict[str, Any]:
    """The full, validated record of an indexed run, read from the working tree or git."""
    if run.in_workdir:
        return store.read_toml(repo.run_dir(run.run_id) / RUN_FILE, kind="run")
    ((_, raw),) = git.read_blobs(repo.root, [run.blob])
    source = f"{(run.commit or '')[:12]}:{repo.run_dir(run.run_id).relative_to(repo.root)}/run.toml"
    data = store.parse_toml(raw, source=source)
    store.validate("run", data, source=source)
    return data


def _git_blob_id(raw: bytes) -> str:
    # The id git gives these bytes, so a committed file and its working copy share one entry.
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()


def _scan_runs(runs_dir: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    # Plain strings and os.stat: pathlib costs ~5 us a file, which is 0.5 s for 100,000 runs.
    try:
        entries = list(os.scandir(runs_dir))
    except FileNotFoundError:
        return
    stat = os.stat
    for entry in entries:
        path = f"{entry.path}/{RUN_FILE}"
        try:
            yield entry.name, path, stat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue


def _parse(raw: bytes, *, source: str) -> tuple[str | None, str | None]:
    try:
        data = store.parse_toml(raw, source=source)
        store.validate("run", data, source=source)
    except GitmlError as exc:
        return None, str(exc)
    return json.dumps(flatten(store.to_json_types(data))), None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def warn(message: str) -> None:
    """One warning line on stderr (a broken record does not stop a listing)."""
    print(f"gitml: warning: {message}", file=sys.stderr)
