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
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from gitml import git, logs
from gitml.query import dvc_runs, index_dvc, run_files
from gitml.query.index_sql import (
    ALL,
    ALL_WHERE,
    BY_ID,
    BY_OUTPUT,
    CURRENT,
    KINDS,
    NEWEST_AND_FIRST,
    OUTPUT_RUNS,
    TABLES,
)
from gitml.query.indexed import IndexedRun
from gitml.query.parse import Parsed, Parser, decode_row
from gitml.query.prefetch import Prefetch
from gitml.repo import Repo

log = logs.get(__name__)

T = TypeVar("T")
INDEX_FORMAT = "8"
BATCH = 5_000  # run versions read from git at a time


class RunIndex:
    """Open with `RunIndex(repo)`; `refresh_history()`, `refresh_workdir()`, then `runs()`."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.path = repo.cache_dir / "index.sqlite"
        self.in_memory = False
        self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._open_checked()
        except (OSError, sqlite3.OperationalError):
            # A read-only checkout: an index in memory, built for this process only.
            self.in_memory = True
            return self._open_checked(":memory:")
        except sqlite3.DatabaseError:
            # A cache: when it is broken, start again from git and the working tree.
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            return self._open_checked()

    def _open_checked(self, where: Path | str | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(where or self.path, timeout=30, isolation_level=None)
        row = None
        with contextlib.suppress(sqlite3.OperationalError):  # a new, empty file
            row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] != INDEX_FORMAT:
            tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            for (name,) in tables:
                db.execute(f'DROP TABLE IF EXISTS "{name}"')
            db.executescript(TABLES)
            db.execute("INSERT INTO meta VALUES('format', ?)", (INDEX_FORMAT,))
        return db

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- history -------------------------------------------------------------------------------
    def refresh_history(self) -> int:
        """Index the commits not read yet; returns how many were read.

        When no branch tip moved since the last refresh nothing is walked. When commits are no
        longer reachable (reset, rebase, deleted branch), their versions are dropped. Runs are
        read in batches, so memory does not grow with the history; a large batch of records not
        parsed yet is parsed on every core.
        """
        experiments = dvc_runs.experiments(self.repo.root)
        named = sorted((c, e.experiment or "") for c, e in experiments.items())
        tips = json.dumps(sorted(git.ref_tips(self.repo.root).items()) + named)
        row = self.db.execute("SELECT value FROM meta WHERE key='tips'").fetchone()
        if row is not None and row[0] == tips:
            return 0
        reachable = git.reachable_commits(self.repo.root, also=experiments)
        known = {r[0] for r in self.db.execute("SELECT oid FROM commits")}
        new = [c for c in reachable if c not in known]
        gone = known - set(reachable)
        runs_path = self.repo.runs_dir.relative_to(self.repo.root).as_posix()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if gone:
                self._forget(gone)
            # Oldest first: a later commit's version of a run replaces an earlier one.
            found = git.run_blobs(self.repo.root, runs_path, reversed(new))
            with Parser() as parser:
                for batch in _batches(found, BATCH):
                    self._store_git_blobs(
                        {b.blob: f"{b.commit[:12]}:{runs_path}/{b.run_id}/run.toml" for b in batch},
                        parser,
                    )
                    self.store_versions(batch)
            index_dvc.store_runs(self, new, experiments)
            self.settle_runs()
            self.db.execute("DELETE FROM meta WHERE key='field_kinds'")
            self.db.executemany("INSERT OR IGNORE INTO commits VALUES(?)", [(c,) for c in new])
            self.db.execute("INSERT OR REPLACE INTO meta VALUES('tips', ?)", (tips,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(new)

    def _forget(self, gone: set[str]) -> None:
        for chunk in _batches(sorted(gone), 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM commits WHERE oid IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM versions WHERE oid IN ({marks})", chunk)
        self.db.execute("DELETE FROM runs")
        self.db.execute(f"INSERT INTO runs {NEWEST_AND_FIRST.format('')}")

    def _missing_blobs(self, blob_ids: set[str]) -> list[str]:
        have: set[str] = set()
        for chunk in _batches(sorted(blob_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT blob FROM blobs WHERE blob IN ({marks})"
            have.update(r[0] for r in self.db.execute(query, chunk))
        return sorted(blob_ids - have)

    def _store_git_blobs(self, sources: dict[str, str], parser: Parser) -> None:
        """Parse the blobs not indexed yet; ``sources`` names each as `<commit>:<path>`."""
        missing = self._missing_blobs(set(sources))
        raws = dict(git.stream_blobs(self.repo.root, missing))
        self.insert_blobs(missing, parser.parse([(raws[oid], sources[oid]) for oid in missing]))

    def insert_blobs(self, blob_ids: list[str], parsed: list[Parsed]) -> None:
        """Store parsed records under their blob ids (or keys), with the outputs they name."""
        kind_ids = self._kind_ids({p.kinds for p in parsed if p.kinds is not None})
        self.db.executemany(
            "INSERT OR REPLACE INTO blobs VALUES(?,?,?,?,?,?)",
            [(oid, p.strict, kind_ids.get(p.kinds or ""), p.running, p.error, p.row)
             for oid, p in zip(blob_ids, parsed, strict=True)],
        )  # fmt: skip
        self.db.executemany(
            "INSERT INTO outputs VALUES(?,?,?)",
            [(oid, path, md5) for oid, p in zip(blob_ids, parsed, strict=True)
             for path, md5 in p.made],
        )  # fmt: skip

    def _kind_ids(self, wanted: set[str]) -> dict[str, int]:
        """The id of each set of field kinds, added when new (the sets repeat run after run)."""
        self.db.executemany("INSERT OR IGNORE INTO kinds(kinds) VALUES(?)", [(k,) for k in wanted])
        ids: dict[str, int] = {}
        for chunk in _batches(sorted(wanted), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT kinds, id FROM kinds WHERE kinds IN ({marks})"
            ids.update(self.db.execute(query, chunk).fetchall())
        return ids

    def store_versions(self, blobs: list[git.RunBlob]) -> None:
        """Record that commits hold these versions of runs; `settle_runs()` once all are in."""
        db = self.db
        db.executemany("INSERT INTO versions VALUES(?,?,?,?)",
                       [(b.run_id, b.blob, b.commit, b.commit_time) for b in blobs])  # fmt: skip
        db.execute("CREATE TEMP TABLE IF NOT EXISTS touched(run_id TEXT PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO touched VALUES(?)", [(b.run_id,) for b in blobs])

    def settle_runs(self) -> None:
        """Each run given new versions gets its newest and first, from all of its versions.

        One statement at the end of a refresh (a statement a version was 2.5 s of a cold index
        at 100,000 runs).
        """
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS touched(run_id TEXT PRIMARY KEY)")
        touched = "WHERE run_id IN (SELECT run_id FROM touched)"
        db.execute(f"INSERT OR REPLACE INTO runs {NEWEST_AND_FIRST.format(touched)}")
        db.execute("DELETE FROM touched")

    # -- working tree --------------------------------------------------------------------------
    def refresh_workdir(self) -> int:
        """Re-read the run.toml files of the working tree that changed; returns how many.

        The stat of every file goes into a temporary table and SQL finds what changed since the
        last refresh, so memory does not grow with the working tree (a dict of 70,000 stats
        was 40 MiB). Changed files are read in batches, and only those whose bytes no committed
        version has are parsed.

        First, a digest of every stat: when it is the one the last refresh saw, nothing
        changed and nothing else is done (74,000 files: 0.25 s instead of 0.75 s).
        """
        db = self.db
        digest = run_files.stat_digest(run_files.scan(self.repo.runs_dir))
        row = db.execute("SELECT value FROM meta WHERE key='workdir'").fetchone()
        if row is not None and row[0] == digest:
            return 0
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seen("
            "run_id TEXT PRIMARY KEY, path TEXT, size INTEGER, mtime_ns INTEGER, ino INTEGER)"
        )
        db.execute("BEGIN")
        db.execute("DELETE FROM seen")
        hasher = run_files.new_digest()
        scanned = run_files.digesting(run_files.scan(self.repo.runs_dir), hasher)
        db.executemany(
            "INSERT OR REPLACE INTO seen VALUES(?,?,?,?,?)",
            ((r, path, st.st_size, st.st_mtime_ns, st.st_ino) for r, path, st in scanned),
        )
        db.execute("COMMIT")
        changed = db.execute(
            "SELECT s.run_id, s.path, s.size, s.mtime_ns, s.ino FROM seen s"
            " LEFT JOIN workfiles w ON w.run_id = s.run_id WHERE w.run_id IS NULL"
            " OR (w.size, w.mtime_ns, w.ino) IS NOT (s.size, s.mtime_ns, s.ino)"
        ).fetchall()
        gone = db.execute(
            "SELECT run_id FROM workfiles WHERE run_id NOT IN (SELECT run_id FROM seen)"
        ).fetchall()
        db.execute("BEGIN IMMEDIATE")
        try:
            complete = True
            with Parser() as parser:
                for batch in _batches(changed, BATCH):
                    complete &= self._store_files(batch, parser)
            db.executemany("DELETE FROM workfiles WHERE run_id=?", gone)
            if changed or gone:
                db.execute("DELETE FROM meta WHERE key='field_kinds'")
            if complete:  # else a file left for next time: no digest, so it is looked at
                digest = hasher.hexdigest()
                db.execute("INSERT OR REPLACE INTO meta VALUES('workdir', ?)", (digest,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(changed)

    def _store_files(self, batch: list[tuple[str, str, int, int, int]], parser: Parser) -> bool:
        """Read and index ``batch``; False when a file could not be read (it is left for later)."""
        files, contents = [], {}
        complete = True
        for run_id, path, size, mtime_ns, ino in batch:
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError:
                complete = False
                continue  # vanished or unreadable between scan and read: next time
            blob = git.blob_id(raw)  # a file identical to a committed version shares its id
            files.append((run_id, size, mtime_ns, ino, blob))
            contents[blob] = (raw, path)
        # A file identical to a committed version is already parsed: its blob id is known.
        missing = self._missing_blobs(set(contents))
        items = [(contents[b][0], os.path.relpath(contents[b][1])) for b in missing]
        self.insert_blobs(missing, parser.parse(items))
        self.db.executemany(  # whether it is running: from its record, parsed now or before
            "INSERT OR REPLACE INTO workfiles"
            " SELECT ?1, ?2, ?3, ?4, ?5, (SELECT running FROM blobs WHERE blob = ?5)",
            files,
        )
        return complete

    def running_in_workdir(self) -> list[str]:
        """Ids of the working-tree runs whose record says running."""
        query = "SELECT run_id FROM workfiles WHERE running"
        return [run_id for (run_id,) in self.db.execute(query)]

    # -- reading -------------------------------------------------------------------------------
    def runs(self, condition: str = "", *args: Any) -> Iterator[IndexedRun]:
        """Every run, or those ``condition`` names (see `scan`).

        The version shown is the working tree's where there is one, else the newest committed.
        """
        for run_id, row, error, landed, oid, blob, local in self.scan(condition, *args):
            yield IndexedRun(run_id=run_id, row=row, error=error, landed=landed, commit=oid,
                             blob=blob, in_workdir=local)  # fmt: skip

    def field_kinds(self) -> dict[str, dict[str, int]]:
        """Field -> {kind of value: how many shown runs hold it} over every valid run.

        Read from the few distinct sets of field kinds, not from the rows: `--where` checks
        its field names and the kinds it compares with these, and SQL filters the rows.
        """
        cached = self.db.execute("SELECT value FROM meta WHERE key='field_kinds'").fetchone()
        if cached is not None:
            loaded: dict[str, dict[str, int]] = json.loads(cached[0])
            return loaded
        found: dict[str, dict[str, int]] = {}
        for text, count in self.db.execute(KINDS):
            for field, kind in json.loads(text):
                by_kind = found.setdefault(field, {})
                by_kind[kind] = by_kind.get(kind, 0) + count
        with contextlib.suppress(sqlite3.OperationalError):  # another writer: next time
            self.db.execute("INSERT OR REPLACE INTO meta VALUES('field_kinds', ?)",
                            (json.dumps(found),))  # fmt: skip
        return found

    def scan_where(
        self, clause: str, args: list[Any], prefetched: Prefetch | None = None
    ) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
        """`scan()` of the runs whose shown record passes ``clause`` (SQL over ``b.row``).

        ``prefetched``: the same query started before the refresh (`prefetch_where`), used
        when nothing was committed since.
        """
        rows = prefetched.rows() if prefetched is not None else None
        if rows is None:
            return _decoded(self.db.execute(ALL_WHERE.format(clause), args))
        return _decoded(rows)

    def prefetch_where(self, clause: str, args: list[Any]) -> Prefetch | None:
        """Start `scan_where`'s query in a thread, ahead of a refresh (None: an index in memory)."""
        if self.in_memory:
            return None
        return Prefetch(self.path, ALL_WHERE.format(clause), args)

    def scan(
        self, condition: str = "", *args: Any
    ) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
        """`runs()` as plain tuples (run id, row, error, landed, commit, blob, in working tree).

        Streamed from one join, so a query over 100,000 runs holds one row at a time (a join in
        dicts is 0.1 s faster and 300 MiB larger): the hot path of every query. ``condition``
        (`BY_ID`, `BY_PREFIX`, `LANDED_IN`, `PRODUCED`, `WROTE`) with its ``args`` reads only
        the runs it names, through the index's B-trees.
        """
        if condition in BY_OUTPUT:
            query = OUTPUT_RUNS.format(BY_OUTPUT[condition])
            for (run_id,) in sorted(self.db.execute(query, args).fetchall()):
                yield from self.scan(f"{BY_ID} AND {condition}", run_id, *args)
            return
        query = f"{CURRENT} WHERE {condition}" if condition else ALL
        yield from _decoded(self.db.execute(query, args))


def _decoded(
    cursor: Iterable[tuple[str, str | None, str | None, str | None, str | None, str, int]],
) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
    for run_id, text, error, landed, oid, blob, local in cursor:
        row = decode_row(text) if text else None
        if row is not None:
            row["commit"] = landed
        yield run_id, row, error, landed, oid, blob, bool(local)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def warn(message: str) -> None:
    """One warning line on stderr (a broken record does not stop a listing)."""
    log.warning("gitml: warning: %s", message)
