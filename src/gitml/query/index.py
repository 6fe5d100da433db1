"""The run index: every run in the working tree and in the history of every local branch.

History is read from git objects (nothing is checked out). The index is a git-ignored SQLite file
under `.gitml/cache/`, keyed by blob id for committed records and by (size, mtime, inode) for
working-tree files, and it remembers which commits it has read: a second query reads only the
commits and files that are new since the first. It is a cache: deleting it loses nothing.
"""

from __future__ import annotations

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
from gitml.repo import Repo

INDEX_FORMAT = "1"
RUN_FILE = "run.toml"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS commits(oid TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS blobs(blob TEXT PRIMARY KEY, record TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS versions(run_id TEXT, blob TEXT, oid TEXT, time INTEGER);
CREATE INDEX IF NOT EXISTS versions_oid ON versions(oid);
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, blob TEXT, time INTEGER, oid TEXT, landed TEXT, landed_time INTEGER);
CREATE TABLE IF NOT EXISTS workfiles(
    run_id TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, record TEXT, error TEXT);
"""


@dataclass(frozen=True, kw_only=True)
class IndexedRun:
    """One run as the index knows it."""

    run_id: str
    record: dict[str, Any] | None  # JSON types (datetimes as ISO strings); None when invalid
    landed: str | None  # first commit holding the run, None if not committed yet
    commit: str | None  # the commit of the newest committed version
    source: str  # where `record` was read: the run.toml path or `<blob>` in git
    error: str | None = None


class RunIndex:
    """Open with `RunIndex(repo)`; `refresh()` then `runs()`."""

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
        db.executescript(_TABLES)
        row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] != INDEX_FORMAT:
            db.executescript(
                "DELETE FROM commits; DELETE FROM blobs; DELETE FROM runs; DELETE FROM workfiles;"
                "DELETE FROM versions; DELETE FROM meta;"
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES('format', ?)", (INDEX_FORMAT,))
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
            self._store_blobs({b.blob for b in pending})
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

    def _store_blobs(self, blob_ids: set[str]) -> None:
        have = set()
        for chunk in _chunks(sorted(blob_ids), 500):
            marks = ",".join("?" * len(chunk))
            have.update(r[0] for r in self.db.execute(
                f"SELECT blob FROM blobs WHERE blob IN ({marks})", chunk))  # fmt: skip
        missing = sorted(blob_ids - have)
        rows = []
        for oid, raw in git.read_blobs(self.repo.root, missing):
            record, error = _parse(raw, source=f"git blob {oid[:12]}")
            rows.append((oid, record, error))
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
    def refresh_workdir(self) -> dict[str, tuple[str | None, str | None]]:
        """Re-read changed run.toml files of the working tree; returns run id -> (record, error)."""
        cached = {
            r[0]: r[1:] for r in self.db.execute(
                "SELECT run_id, size, mtime_ns, ino, record, error FROM workfiles")
        }  # fmt: skip
        current: dict[str, tuple[str | None, str | None]] = {}
        changed = []
        for run_id, path, st in _scan_runs(self.repo.runs_dir):
            old = cached.pop(run_id, None)
            if old is not None and (old[0], old[1], old[2]) == (
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            ):
                current[run_id] = (old[3], old[4])
                continue
            record, error = _read_workfile(path)
            current[run_id] = (record, error)
            changed.append((run_id, st.st_size, st.st_mtime_ns, st.st_ino, record, error))
        if changed or cached:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO workfiles VALUES(?,?,?,?,?,?)", changed)
            self.db.executemany("DELETE FROM workfiles WHERE run_id=?", [(r,) for r in cached])
            self.db.execute("COMMIT")
        return current

    # -- reading -------------------------------------------------------------------------------
    def runs(self, workdir: dict[str, tuple[str | None, str | None]]) -> Iterator[IndexedRun]:
        """Every run: the working-tree version where there is one, else the newest committed."""
        rows = self.db.execute(
            "SELECT runs.run_id, runs.landed, runs.oid, runs.blob, blobs.record, blobs.error "
            "FROM runs JOIN blobs ON runs.blob = blobs.blob"
        )
        seen = set()
        for run_id, landed, oid, blob, committed, committed_error in rows:
            seen.add(run_id)
            if run_id in workdir:
                record, error = workdir[run_id]
                source = self._workfile(run_id)
            else:
                record, error, source = committed, committed_error, f"git blob {blob}"
            yield _indexed(run_id, record, error, landed=landed, commit=oid, source=source)
        for run_id, (record, error) in workdir.items():
            if run_id not in seen:
                source = self._workfile(run_id)
                yield _indexed(run_id, record, error, landed=None, commit=None, source=source)

    def _workfile(self, run_id: str) -> str:
        return os.path.relpath(self.repo.run_dir(run_id) / RUN_FILE)


def _indexed(
    run_id: str,
    record: str | None,
    error: str | None,
    *,
    landed: str | None,
    commit: str | None,
    source: str,
) -> IndexedRun:
    return IndexedRun(
        run_id=run_id,
        record=json.loads(record) if record else None,
        landed=landed,
        commit=commit,
        source=source,
        error=error,
    )


def _scan_runs(runs_dir: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    try:
        entries = list(os.scandir(runs_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        path = Path(entry.path) / RUN_FILE
        try:
            yield entry.name, path, path.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue


def _read_workfile(path: Path) -> tuple[str | None, str | None]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror}"
    return _parse(raw, source=os.path.relpath(path))


def _parse(raw: bytes, *, source: str) -> tuple[str | None, str | None]:
    try:
        data = store.parse_toml(raw, source=source)
        store.validate("run", data, source=source)
    except GitmlError as exc:
        return None, str(exc)
    return json.dumps(store.to_json_types(data)), None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def warn(message: str) -> None:
    """One warning line on stderr (a broken record does not stop a listing)."""
    print(f"gitml: warning: {message}", file=sys.stderr)
