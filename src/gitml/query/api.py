"""Querying runs: `find_runs` (rows), `runs` (a pandas DataFrame) and `get_run` (one record)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeVar

from gitml import git, store
from gitml.errors import (
    AmbiguousRunError,
    GitError,
    GitmlError,
    RunNotFoundError,
    UsageError,
    WhereSyntaxError,
)
from gitml.query import where as where_lang
from gitml.query import where_sql
from gitml.query.index import RunIndex, warn
from gitml.query.index_sql import BY_PREFIX
from gitml.query.indexed import IndexedRun, record_of
from gitml.repo import Repo
from gitml.tracking import journal, record
from gitml.tracking.env import process_gone

R = TypeVar("R", bound=Mapping[str, Any])  # a row: a dict, or a `columns.RowView`

Row = dict[str, Any]
Rows = Callable[..., list[Row]]  # (condition, *args) -> the valid rows of the runs it names


@dataclass(frozen=True)
class SortKey:
    """One `--sort` key: a field, descending when written with a leading minus."""

    field: str
    descending: bool


def _refreshed(repo: Repo, *, repair: bool = True) -> RunIndex:
    """The index, brought up to date; ``repair`` also closes runs whose process died.

    Checks pass ``repair=False``: a check never writes a record (`gitml model promote`'s guard
    runs on read-only checkouts too).
    """
    index = RunIndex(repo)
    try:
        _refresh(index, repair=repair)
    except BaseException:
        index.close()
        raise
    return index


def _refresh(index: RunIndex, *, repair: bool = True) -> None:
    index.refresh_history()
    index.refresh_workdir()
    if repair and _repair_crashed(index.repo, index.running_in_workdir()):
        index.refresh_workdir()


def collect(repo: Repo, condition: str = "", *args: Any, repair: bool = True) -> list[IndexedRun]:
    """Every run of the working tree and of all local branches' history, crashes detected.

    With a ``condition`` (see `RunIndex.scan`), only the runs it names. ``repair=False``
    leaves records alone: crashed runs are reported as they are, not closed.
    """
    with indexed(repo, repair=repair) as index:
        found = list(index.runs(condition, *args))
    for run in found:
        if run.error:
            warn(f"skipping run {run.run_id}: {run.error}")
    return [r for r in found if r.row is not None]


def iter_rows(repo: Repo) -> Iterator[Row]:
    """The flat rows of `collect`, streamed: the query hot path, in memory one row at a time."""
    with indexed(repo) as index:
        yield from rows_of(index)


@contextlib.contextmanager
def indexed(repo: Repo, *, repair: bool = True, fresh: bool = False) -> Iterator[RunIndex]:
    """The refreshed run index, closed on exit; read it with `rows_of`.

    ``fresh``: the caller has just refreshed it (`gitml ui`, once per change on disk), so it is
    opened as it is instead of rescanning every run folder.
    """
    index = RunIndex(repo) if fresh else _refreshed(repo, repair=repair)
    try:
        yield index
    finally:
        index.close()


@contextlib.contextmanager
def row_lookup(repo: Repo, *, fresh: bool = False) -> Iterator[Rows]:
    """Rows by a `RunIndex.scan` condition (`BY_ID`, `PRODUCED`, ...) on the refreshed index.

    For commands that need a few runs of a large history (`diff`, `lineage`): each lookup
    reads only the runs it names.
    """
    with indexed(repo, fresh=fresh) as index:
        yield lambda condition, *args: list(rows_of(index, condition, *args))


def rows_of(index: RunIndex, condition: str = "", *args: Any) -> Iterator[Row]:
    """The valid flat rows of the runs ``condition`` names (all without one); warns of others."""
    return _valid(index.scan(condition, *args))


def _valid(scanned: Iterable[tuple[str, Any, str | None, Any, Any, Any, Any]]) -> Iterator[Row]:
    for run_id, row, error, *_ in scanned:
        if row is None:
            warn(f"skipping run {run_id}: {error}")
        else:
            yield row


def _repair_crashed(repo: Repo, running: list[str]) -> bool:

    repaired = False
    for run_id in running:
        try:
            rec = record.read(repo, run_id)
        except GitmlError:
            continue  # changed under our feet; the listing will say what it finds
        if rec["status"] == "running" and process_gone(rec.get("process", {})):
            record.mark_crashed(repo, run_id)
            repaired = True
    return repaired


def parse_sort(text: str | None) -> list[SortKey]:
    """``"-metrics.accuracy,start_time"`` -> sort keys; field names are checked."""
    if not text:
        return [SortKey("start_time", descending=True)]
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise UsageError(f"--sort {text!r}", "empty sort key")
        descending = part.startswith("-")
        field = part.lstrip("+-").strip()
        try:
            where_lang.compile_where(f"{_quote_field(field)} == 0")
        except WhereSyntaxError as exc:
            raise UsageError(f"--sort {text!r}", f"unknown field {field!r}") from exc
        keys.append(SortKey(field, descending))
    return keys


def _quote_field(field: str) -> str:
    root, dot, rest = field.partition(".")
    return f"{root}[{rest!r}]" if dot else root


def sort_rows(rows: list[R], keys: Iterable[SortKey]) -> list[R]:
    """Sort by several keys; rows missing a key, or whose value is NaN, always come last."""
    for key in reversed(list(keys)):
        present = [r for r in rows if _ordered(r.get(key.field))]
        missing = [r for r in rows if not _ordered(r.get(key.field))]
        present.sort(key=_sort_key(key.field), reverse=key.descending)
        rows = present + missing
    return rows


def _ordered(value: Any) -> bool:
    """A value with a place in an order: not missing, not NaN (infinities sort as numbers)."""
    return value is not None and not store.is_nan(value)


def _sort_key(field: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    return lambda row: _sortable(row[field])


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def find_runs(
    repo: Repo | None = None,
    *,
    where: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> list[Row]:
    """Flat rows of every matching run, sorted, at most ``limit``.

    A field that ``where`` or ``sort`` names and no run in the history has (a typo such as
    `metrics.acuracy`) is an error with the nearest existing names, not an empty answer.
    """
    return search(repo, where=where, sort=sort, limit=limit)[0]


def search(
    repo: Repo | None = None,
    *,
    where: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    columns: Iterable[str] = (),
) -> tuple[list[Row], set[str]]:
    """`find_runs`, and every field some run has; ``columns`` are checked like ``where``."""
    compiled = where_lang.compile_checked(where) if where else None
    predicate, named = (compiled.predicate, compiled.fields) if compiled else (None, [])
    keys = parse_sort(sort)
    if limit is not None and limit < 0:
        raise UsageError("--limit", f"{limit} is negative")
    project = repo or Repo.find(reading=True)
    pushed = where_sql.prefilter(where) if where else None
    index = RunIndex(project)
    try:  # the filtered query starts now, on its own connection, while the index refreshes
        prefetched = index.prefetch_where(*pushed) if pushed else None
        _refresh(index)
        kinds = index.field_kinds()
        known = set(kinds)
        found = index.scan_where(*pushed, prefetched) if pushed else index.scan()
        rows = [row for row in _valid(found) if predicate is None or predicate(row)]
    finally:
        index.close()
    if known:
        check_fields("--where", named, known)
        check_fields("--sort", [k.field for k in keys], known)
        check_fields("--columns", list(columns), known)
    for tally in compiled.tallies if compiled else ():
        tally.see_counts(kinds.get(tally.field, {}))
        problem = tally.problem()
        if problem:
            raise UsageError("--where", problem)
    rows = sort_rows(rows, keys)
    return (rows[:limit] if limit is not None else rows), known


def check_fields(option: str, fields: list[str], known: set[str]) -> None:
    """Every field in ``fields`` is one some run has; else the nearest ones, as an error."""
    for field in fields:
        if field in known or field.partition(".")[0] not in where_lang.NAMESPACES:
            continue  # top-level fields exist for every run
        close = get_close_matches(field, sorted(known), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        hint = hint or "; `gitml show <run>` lists a run's fields"
        raise UsageError(option, f"no run has the field {field!r}{hint}")


def runs(
    where: str | None = None,
    *,
    sort: str | None = None,
    limit: int | None = None,
    repo: Repo | str | os.PathLike[str] | None = None,
) -> Any:
    """Matching runs as a pandas DataFrame shaped like ``mlflow.search_runs``'s.

    One row per run: ``run_id``, ``status``, ``start_time``, ``end_time``, ``params.<x>``,
    ``metrics.<y>``, ``tags.<z>``, plus gitml's ``code.*`` and ``commit``; ``where`` takes the
    same filter strings as `gitml runs --where`.

    Example:
        >>> df = gitml.runs("metrics.accuracy > 0.9", sort="-metrics.accuracy")

    """
    import pandas as pd

    project = repo if isinstance(repo, Repo) else Repo.find(repo, reading=True)
    rows = find_runs(project, where=where, sort=sort, limit=limit)
    frame = pd.DataFrame(rows)
    for column in ("start_time", "end_time"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    if "id" in frame:
        frame.insert(0, "run_id", frame["id"])  # as mlflow.search_runs names it
    return frame


def resolve(repo: Repo, ref: str, *, fresh: bool = False) -> IndexedRun:
    """The one run whose id is ``ref`` or starts with it (read through the index's B-tree).

    ``fresh``: the caller has just brought the index up to date (`gitml ui` does once per
    change on disk), so it is read as it is instead of rescanning every run folder.
    """
    if not ref:
        raise UsageError("run", "empty run id")
    if fresh:
        with indexed(repo, fresh=True) as index:
            candidates = [r for r in index.runs(BY_PREFIX, ref, ref) if r.row is not None]
    else:
        candidates = collect(repo, BY_PREFIX, ref, ref)
    exact = [r for r in candidates if r.run_id == ref]
    if exact:
        return exact[0]
    matches = sorted(r.run_id for r in candidates)
    if not matches:
        raise RunNotFoundError(ref)
    if len(matches) > 1:
        raise AmbiguousRunError(ref, matches)
    return candidates[0]


def get_run(ref: str, *, repo: Repo | str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The full record of one run (by id or unique prefix), from the working tree or git."""
    project = repo if isinstance(repo, Repo) else Repo.find(repo, reading=True)
    run = resolve(project, ref)
    return {**store.to_json_types(record_of(project, run)), "commit": run.landed}


def step_metrics(repo: Repo, run: IndexedRun) -> list[tuple[int, int, float, str]]:
    """The step metrics of a run: from its Parquet file, its live journals, or git."""
    stored = stored_steps(repo, run)
    rows: list[tuple[int, int, float, str]] = journal.read_parquet(*stored).rows if stored else []
    for path in journal.journals(repo.run_dir(run.run_id)):
        rows += journal.read_journal(path)
    return rows


def stored_steps(repo: Repo, run: IndexedRun) -> tuple[Path | str, bytes | None] | None:
    """Where a run's metrics.parquet is: the working-tree file, or its bytes in git; None if not.

    The answer is what `journal.read_parquet` and `journal.read_table` take.
    """
    parquet = repo.run_dir(run.run_id) / journal.PARQUET_NAME
    if parquet.exists():
        return parquet, None
    if run.commit is None:
        return None
    rel = Path(os.path.relpath(parquet, repo.root)).as_posix()
    try:
        data = git.read_file_at(repo.root, run.commit, rel)
    except GitError:
        return None
    return (f"{run.commit[:8]}:{rel}", data) if data is not None else None
