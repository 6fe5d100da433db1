"""The runs table of `gitml ui`: every run's row, its filtered and sorted views, paged.

The table keeps one snapshot of the index's rows (every run on every branch and in the working
tree, held as columns: `query.columns`) and refreshes it when the server says `.gitml/`
changed; a filter and sort are computed once and then served page by page, so scrolling
100,000 runs sends only the rows on screen. It also resolves run ids against that snapshot.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitml.errors import UsageError
from gitml.query import where as where_lang
from gitml.query.api import check_fields, iter_rows, parse_sort, resolve, sort_rows
from gitml.query.columns import ColumnTable, RowView
from gitml.query.indexed import IndexedRun
from gitml.query.output import default_columns
from gitml.repo import Repo

MAX_PAGE = 500  # rows per request: a screen, with room to scroll


@dataclass
class View:
    """One filter and sort of the table, computed once and then paged."""

    where: str
    sort: str
    rows: list[RowView]


@dataclass
class RunTable:
    """The index's rows, refreshed when `.gitml/` changes, and the views of them asked for."""

    repo: Repo
    generation: Callable[[], int] = lambda: 0  # the server's change counter: a new value refreshes
    _table: ColumnTable | None = None
    _rows: list[RowView] = field(default_factory=list)
    _fields: dict[str, int] = field(default_factory=dict)
    _seen: int = -1
    _views: dict[tuple[str, str], View] = field(default_factory=dict)
    _readers: dict[str, list[RowView]] | None = None  # input md5 -> the runs that read it
    _resolved: dict[str, IndexedRun] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rows(self) -> list[RowView]:
        """Every run's row, as of the last change (held as columns: `query.columns`)."""
        with self._lock:
            seen = self.generation()
            if self._table is None or self._seen != seen:
                self._table = None  # the old one can go before the new one is read
                table = ColumnTable(iter_rows(self.repo))
                self._table, self._rows, self._fields = table, table.views(), table.present()
                self._seen, self._views, self._readers, self._resolved = seen, {}, None, {}
            return self._rows

    def find(self, ids: Iterable[str]) -> dict[str, RowView]:
        """The rows of these run ids (those that exist)."""
        rows = self.rows()
        wanted = set(ids)
        column = self._table.columns.get("id") if self._table else None
        found = column.items() if column else ()
        return {value: rows[number] for number, value in found if value in wanted}

    def resolve(self, ref: str) -> IndexedRun:
        """The run ``ref`` names (an id or a unique prefix), as of the last change."""
        self.rows()  # the index is as fresh as the rows
        with self._lock:
            found = self._resolved.get(ref)
        if found is None:
            found = resolve(self.repo, ref, fresh=True)
            with self._lock:
                if len(self._resolved) > 10_000:
                    self._resolved.clear()
                self._resolved[ref] = found
        return found

    def readers(self, md5: str) -> list[RowView]:
        """The runs that read these bytes as an input."""
        rows = self.rows()
        with self._lock:
            if self._readers is None:
                readers: dict[str, list[RowView]] = {}
                columns = self._table.columns if self._table else {}
                for key, column in columns.items():
                    if key.startswith("inputs."):
                        for number, value in column.items():
                            if isinstance(value, str):
                                readers.setdefault(value, []).append(rows[number])
                self._readers = readers
            return self._readers.get(md5, [])

    def fields(self) -> dict[str, int]:
        """Every field some run has, with how many runs have it."""
        self.rows()
        return dict(self._fields)

    def view(self, where: str = "", sort: str = "") -> View:
        """The runs matching ``where`` (the `--where` language), sorted by ``sort``."""
        rows = self.rows()
        key = (where.strip(), sort.strip())
        with self._lock:
            if key in self._views:
                return self._views[key]
        compiled = where_lang.compile_checked(key[0]) if key[0] else None
        keys = parse_sort(key[1] or "-start_time")
        known = set(self.fields())
        if rows:
            check_fields("where", compiled.fields if compiled else [], known)
            check_fields("sort", [k.field for k in keys], known)
        matched = [r for r in rows if compiled.predicate(r)] if compiled else list(rows)
        for tally in compiled.tallies if compiled else ():
            problem = tally.problem()
            if problem:
                raise UsageError("where", problem)
        view = View(key[0], key[1], sort_rows(matched, keys))
        with self._lock:
            if len(self._views) > 32:
                self._views.clear()
            self._views[key] = view
        return view

    def page(
        self, *, where: str = "", sort: str = "", offset: int = 0, limit: int = 100,
        columns: Iterable[str] = (), group: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        """One page of a view: its rows (only ``columns``), the true count, and the groups."""
        view = self.view(where, sort)
        limit = max(0, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        shown = list(columns) or default_columns(view.rows[:1000]) or ["id"]
        if "id" not in shown:
            shown.insert(0, "id")
        page = [
            {c: to_json(row.get(c)) for c in shown} for row in view.rows[offset : offset + limit]
        ]
        out: dict[str, Any] = {"total": len(view.rows), "runs": len(self.rows()), "offset": offset,
                               "columns": shown, "rows": page,
                               "differ": differing(view.rows, "params.", self._fields)}  # fmt: skip
        if group:
            out["groups"] = groups(view.rows, group)
        return out


def differing(
    rows: Sequence[Mapping[str, Any]], prefix: str, names: Iterable[str] | None = None
) -> list[str]:  # fmt: skip
    """The fields under ``prefix`` whose value is not the same in every row (first 5,000 rows).

    ``names``: the fields to look at (the table's own list), else those the rows have. A field
    is looked at only until a second value (or a row without it) shows it differs.
    """
    sample = rows[:5000]
    if names is None:
        names = {key for row in sample for key in row}
    found = []
    for name in sorted(n for n in names if n.startswith(prefix)):
        first = None
        for row in sample:
            value = row.get(name)
            if value is None:  # missing (or null) in some row counts as a difference
                found.append(name)
                break
            shown = json.dumps(to_json(value), sort_keys=True)  # 1, 1.0 and true differ
            if first is None:
                first = shown
            elif shown != first:
                found.append(name)
                break
    return found


def groups(rows: Sequence[Mapping[str, Any]], field_name: str) -> list[dict[str, Any]]:
    """Runs per value of ``field_name`` (a param, `code.branch`, `commit`), largest first."""
    counts: dict[str, int] = {}
    for row in rows:
        label = json.dumps(to_json(row.get(field_name)))
        counts[label] = counts.get(label, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"value": json.loads(label), "runs": n} for label, n in ordered]


def to_json(value: Any) -> Any:
    """A value JSON can carry: NaN and infinities become strings, dates ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
