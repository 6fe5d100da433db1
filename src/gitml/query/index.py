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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from gitml import git, logs, store
from gitml.errors import GitmlError
from gitml.query import dvc_runs
from gitml.query.parse import Parsed, Parser, decode_row, parse_record
from gitml.records import RunRecord
from gitml.repo import Repo

log = logs.get(__name__)

T = TypeVar("T")
INDEX_FORMAT = "6"
RUN_FILE = "run.toml"
BATCH = 5_000  # run versions read from git at a time
_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS commits(oid TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS blobs(
    blob TEXT PRIMARY KEY, row TEXT, error TEXT, strict INTEGER, kinds INTEGER);
CREATE TABLE IF NOT EXISTS kinds(id INTEGER PRIMARY KEY, kinds TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS versions(run_id TEXT, blob TEXT, oid TEXT, time INTEGER);
CREATE INDEX IF NOT EXISTS versions_oid ON versions(oid);
CREATE INDEX IF NOT EXISTS versions_blob ON versions(blob);
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, blob TEXT, time INTEGER, oid TEXT, landed TEXT, landed_time INTEGER);
CREATE TABLE IF NOT EXISTS workfiles(
    run_id TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, blob TEXT);
CREATE INDEX IF NOT EXISTS runs_landed ON runs(landed);
CREATE INDEX IF NOT EXISTS workfiles_blob ON workfiles(blob);
CREATE TABLE IF NOT EXISTS outputs(blob TEXT, path TEXT, md5 TEXT);
CREATE INDEX IF NOT EXISTS outputs_md5 ON outputs(md5);
CREATE INDEX IF NOT EXISTS outputs_path ON outputs(path);
"""

# Each run's shown version (the working tree's, else the newest committed), for filtered reads.
_CURRENT = """
WITH current(run_id, blob, landed, oid, local) AS (
  SELECT r.run_id, coalesce(w.blob, r.blob), r.landed, r.oid, w.blob IS NOT NULL
  FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
  UNION ALL
  SELECT w.run_id, w.blob, NULL, NULL, 1 FROM workfiles w
  WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id))
SELECT c.run_id, b.row, b.error, c.landed, c.oid, c.blob, c.local
FROM current c JOIN blobs b ON b.blob = c.blob
"""

# Unfiltered, the same as two streamed halves (the CTE would be materialized first).
_ALL = """
SELECT r.run_id, b.row, b.error, r.landed, r.oid, b.blob, w.blob IS NOT NULL
FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
JOIN blobs b ON b.blob = coalesce(w.blob, r.blob)
UNION ALL
SELECT w.run_id, b.row, b.error, NULL, NULL, b.blob, 1
FROM workfiles w JOIN blobs b ON b.blob = w.blob
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id)
"""

# Each run's shown version, filtered on its blob (`b`): `_ALL` with a condition in both halves.
_ALL_WHERE = """
SELECT r.run_id, b.row, b.error, r.landed, r.oid, b.blob, w.blob IS NOT NULL
FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
JOIN blobs b ON b.blob = coalesce(w.blob, r.blob) WHERE {0}
UNION ALL
SELECT w.run_id, b.row, b.error, NULL, NULL, b.blob, 1
FROM workfiles w JOIN blobs b ON b.blob = w.blob
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id) AND {0}
"""

# How many shown runs have each set of field kinds (a few distinct sets, whatever the history).
_KINDS = """
SELECT kinds, count(*) FROM (
  SELECT b.kinds FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
  JOIN blobs b ON b.blob = coalesce(w.blob, r.blob)
  UNION ALL
  SELECT b.kinds FROM workfiles w JOIN blobs b ON b.blob = w.blob
  WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id))
WHERE kinds IS NOT NULL GROUP BY kinds
"""

# Conditions for `RunIndex.scan` (over the columns of `_CURRENT`).
BY_ID = "c.run_id = ?"
BY_PREFIX = "c.run_id >= ? AND c.run_id < ? || char(1114111)"
LANDED_IN = "c.landed IS ?"
PRODUCED = "c.blob IN (SELECT blob FROM outputs WHERE md5 = ?)"
WROTE = "c.blob IN (SELECT blob FROM outputs WHERE path = ?)"
# A condition on the computed `c.blob` scans every run (0.4 s at 100,000): for these two the
# runs are found from the outputs table first, through its indexes, then each is read by id.
_BY_OUTPUT = {PRODUCED: "md5", WROTE: "path"}
_OUTPUT_RUNS = """
SELECT v.run_id FROM outputs o JOIN versions v ON v.blob = o.blob WHERE o.{0} = ?1
UNION SELECT w.run_id FROM outputs o JOIN workfiles w ON w.blob = o.blob WHERE o.{0} = ?1
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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._open_checked()
        except (OSError, sqlite3.OperationalError):
            # A read-only checkout: an index in memory, built for this process only.
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
                    for blob in batch:
                        self._store_version(blob)
            self._store_dvc_runs(new, experiments)
            self.db.executemany("INSERT OR IGNORE INTO commits VALUES(?)", [(c,) for c in new])
            self.db.execute("INSERT OR REPLACE INTO meta VALUES('tips', ?)", (tips,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(new)

    def _store_dvc_runs(self, new: list[str], experiments: dict[str, dvc_runs.DvcCommit]) -> None:
        """The runs of DVC's own history among ``new`` commits (see `gitml.query.dvc_runs`).

        A commit whose gitml runs already record every out of its `dvc.lock` (a
        `gitml run -- dvc repro`) is described by them: it is not read a second time.
        """
        root = self.repo.root
        found = [dvc_runs.DvcCommit(commit, time)
                 for commit, time, _ in git.file_changes(root, dvc_runs.DVC_LOCK, reversed(new))
                 if commit not in experiments]  # fmt: skip
        found += [experiments[commit] for commit in new if commit in experiments]
        for at in found:
            source = f"{at.commit[:12]}:{dvc_runs.DVC_LOCK}"
            parsed: Parsed
            try:
                record = dvc_runs.record_at(root, at)
            except GitmlError as exc:
                record, parsed = None, Parsed(None, str(exc), [])
            else:
                if record is None or self._described(at.commit, record.get("outputs", {})):
                    continue
                parsed = parse_record(record, source)
            self._insert_blobs([at.key], [parsed])
            self._store_version(
                git.RunBlob(run_id=at.run_id, blob=at.key, commit=at.commit, commit_time=at.time)
            )

    def _described(self, commit: str, outputs: dict[str, Any]) -> bool:
        made = set(self.db.execute(
            "SELECT o.path, o.md5 FROM versions v JOIN outputs o ON o.blob = v.blob"
            " WHERE v.oid = ?", (commit,)))  # fmt: skip
        wanted = {(path, ref["md5"]) for path, ref in outputs.items()}
        return bool(wanted) and wanted <= made

    def _forget(self, gone: set[str]) -> None:
        for chunk in _batches(sorted(gone), 500):
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
        for chunk in _batches(sorted(blob_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT blob FROM blobs WHERE blob IN ({marks})"
            have.update(r[0] for r in self.db.execute(query, chunk))
        return sorted(blob_ids - have)

    def _store_git_blobs(self, sources: dict[str, str], parser: Parser) -> None:
        """Parse the blobs not indexed yet; ``sources`` names each as `<commit>:<path>`."""
        missing = self._missing_blobs(set(sources))
        raws = dict(git.stream_blobs(self.repo.root, missing))
        self._insert_blobs(missing, parser.parse([(raws[oid], sources[oid]) for oid in missing]))

    def _insert_blobs(self, blob_ids: list[str], parsed: list[Parsed]) -> None:
        kind_ids = self._kind_ids({p.kinds for p in parsed if p.kinds is not None})
        self.db.executemany(
            "INSERT OR REPLACE INTO blobs VALUES(?,?,?,?,?)",
            [(oid, p.row, p.error, p.strict, kind_ids.get(p.kinds or ""))
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
        """Re-read the run.toml files of the working tree that changed; returns how many.

        The stat of every file goes into a temporary table and SQL finds what changed since the
        last refresh, so memory does not grow with the working tree (a dict of 70,000 stats
        was 40 MiB). Changed files are read in batches, and only those whose bytes no committed
        version has are parsed.
        """
        db = self.db
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seen("
            "run_id TEXT PRIMARY KEY, path TEXT, size INTEGER, mtime_ns INTEGER, ino INTEGER)"
        )
        db.execute("BEGIN")
        db.execute("DELETE FROM seen")
        db.executemany(
            "INSERT OR REPLACE INTO seen VALUES(?,?,?,?,?)",
            ((r, path, st.st_size, st.st_mtime_ns, st.st_ino)
             for r, path, st in _scan_runs(self.repo.runs_dir)),
        )  # fmt: skip
        db.execute("COMMIT")
        changed = db.execute(
            "SELECT s.run_id, s.path, s.size, s.mtime_ns, s.ino FROM seen s"
            " LEFT JOIN workfiles w ON w.run_id = s.run_id WHERE w.run_id IS NULL"
            " OR (w.size, w.mtime_ns, w.ino) IS NOT (s.size, s.mtime_ns, s.ino)"
        ).fetchall()
        gone = db.execute(
            "SELECT run_id FROM workfiles WHERE run_id NOT IN (SELECT run_id FROM seen)"
        ).fetchall()
        if not changed and not gone:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            with Parser() as parser:
                for batch in _batches(changed, BATCH):
                    self._store_files(batch, parser)
            db.executemany("DELETE FROM workfiles WHERE run_id=?", gone)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(changed)

    def _store_files(self, batch: list[tuple[str, str, int, int, int]], parser: Parser) -> None:
        files, contents = [], {}
        for run_id, path, size, mtime_ns, ino in batch:
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError:
                continue  # vanished or unreadable between scan and read: next time
            blob = git.blob_id(raw)  # a file identical to a committed version shares its id
            files.append((run_id, size, mtime_ns, ino, blob))
            contents[blob] = (raw, path)
        # A file identical to a committed version is already parsed: its blob id is known.
        missing = self._missing_blobs(set(contents))
        items = [(contents[b][0], os.path.relpath(contents[b][1])) for b in missing]
        self._insert_blobs(missing, parser.parse(items))
        self.db.executemany("INSERT OR REPLACE INTO workfiles VALUES(?,?,?,?,?)", files)

    def running_in_workdir(self) -> list[str]:
        """Ids of the working-tree runs whose record says running."""
        query = (
            "SELECT w.run_id FROM workfiles w JOIN blobs b ON b.blob = w.blob "
            'WHERE b.row LIKE \'%"status": "running"%\''
        )
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
        found: dict[str, dict[str, int]] = {}
        for kinds, count in self.db.execute(_KINDS).fetchall():
            (text,) = self.db.execute("SELECT kinds FROM kinds WHERE id = ?", (kinds,)).fetchone()
            for field, kind in json.loads(text):
                by_kind = found.setdefault(field, {})
                by_kind[kind] = by_kind.get(kind, 0) + count
        return found

    def scan_where(
        self, clause: str, args: list[Any]
    ) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
        """`scan()` of the runs whose shown record passes ``clause`` (SQL over ``b.row``)."""
        return _decoded(self.db.execute(_ALL_WHERE.format(clause), args * 2))

    def scan(
        self, condition: str = "", *args: Any
    ) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
        """`runs()` as plain tuples (run id, row, error, landed, commit, blob, in working tree).

        Streamed from one join, so a query over 100,000 runs holds one row at a time (a join in
        dicts is 0.1 s faster and 300 MiB larger): the hot path of every query. ``condition``
        (`BY_ID`, `BY_PREFIX`, `LANDED_IN`, `PRODUCED`, `WROTE`) with its ``args`` reads only
        the runs it names, through the index's B-trees.
        """
        if condition in _BY_OUTPUT:
            query = _OUTPUT_RUNS.format(_BY_OUTPUT[condition])
            for (run_id,) in sorted(self.db.execute(query, args).fetchall()):
                yield from self.scan(f"{BY_ID} AND {condition}", run_id, *args)
            return
        query = f"{_CURRENT} WHERE {condition}" if condition else _ALL
        yield from _decoded(self.db.execute(query, args))


def _decoded(
    cursor: Iterable[tuple[str, str | None, str | None, str | None, str | None, str, int]],
) -> Iterator[tuple[str, Any, str | None, str | None, str | None, str, bool]]:
    for run_id, text, error, landed, oid, blob, local in cursor:
        row = decode_row(text) if text else None
        if row is not None:
            row["commit"] = landed
        yield run_id, row, error, landed, oid, blob, bool(local)


def record_of(repo: Repo, run: IndexedRun) -> RunRecord:
    """The full, validated record of an indexed run, read from the working tree or git."""
    if run.in_workdir:
        return cast(RunRecord, store.read_toml(repo.run_dir(run.run_id) / RUN_FILE, kind="run"))
    if run.blob.startswith(dvc_runs.KEY_PREFIX):
        at = dvc_runs.commit_of(repo.root, run.blob.removeprefix(dvc_runs.KEY_PREFIX))
        record = dvc_runs.record_at(repo.root, at)
        if record is None:
            raise GitmlError(f"{at.commit[:12]}: has no {dvc_runs.DVC_LOCK}")
        store.validate("run", record, source=f"{at.commit[:12]}:{dvc_runs.DVC_LOCK}")
        return cast(RunRecord, record)
    ((_, raw),) = git.read_blobs(repo.root, [run.blob])
    source = f"{(run.commit or '')[:12]}:{repo.run_dir(run.run_id).relative_to(repo.root)}/run.toml"
    data = store.parse_toml(raw, source=source)
    store.validate("run", data, source=source)
    return cast(RunRecord, data)  # checked against its schema just above


def _scan_runs(runs_dir: Path) -> Iterator[tuple[str, str, os.stat_result]]:
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
