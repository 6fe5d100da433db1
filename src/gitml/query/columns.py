"""Runs held column by column, so a server can keep 100,000 of them in tens of MiB.

A dict per run costs ~2.5 KB: its hash table, a float object per metric, a string per id, time
and hash. `gitml ui` keeps every run in memory to filter and sort them at once, which at 100,000
runs was 250 MiB. Here each field is one column: numbers in an `array` (8 bytes a run), text as
codes into its few distinct values or, once it has many, in one UTF-8 buffer with offsets, and
anything else (booleans, lists, a field that is a number in one run and text in another) as
objects. A column records only the runs that have the field, so a param few runs set costs
little. A row is a `RowView`, which reads like the dict it stands for (`get`, `[]`, iteration),
so the `--where` predicates and the sorts run on it unchanged.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MAX_CODES = 1024  # distinct strings kept as codes; past that, a column's text goes to a buffer


class Column:
    """One field's values, for the rows (by number) that have it."""

    __slots__ = ("codes", "count", "ends", "kind", "rows", "texts", "values")

    def __init__(self) -> None:
        self.rows: array[int] | None = None  # row numbers with a value; None: rows 0..n-1
        self.kind = ""  # "f" float, "q" int, "c" coded text, "t" text buffer, "o" objects
        self.values: Any = None  # array('d'|'q'), array('H') codes, bytearray, or list
        self.codes: dict[str, int] = {}  # "c": text -> code
        self.texts: list[str] = []  # "c": code -> text
        self.ends = array("q")  # "t": where each value ends in the buffer
        self.count = 0

    def append(self, row: int, value: Any) -> None:
        """``value`` for row number ``row`` (rows come in ascending order)."""
        kind = _KINDS.get(type(value), "o")
        if kind == "q" and not -(2**63) <= value < 2**63:
            kind = "o"  # a 100-digit integer: Python's, not array's
        if kind != self.kind:
            if not self.kind:
                self.kind = kind
                self.values = {"f": array("d"), "q": array("q"), "c": array("H"), "o": []}[kind]
            elif self.kind != "o" and not (kind == "c" and self.kind == "t"):
                self._as_objects()
        if self.rows is not None:
            self.rows.append(row)
        elif row != self.count:  # the first gap: from now on the rows are listed
            self.rows = array("q", range(self.count))
            self.rows.append(row)
        self.count += 1
        kind = self.kind
        if kind == "c":
            code = self.codes.get(value)
            if code is None:
                code = self.codes[value] = len(self.texts)
                self.texts.append(value)
            self.values.append(code)
            if code >= MAX_CODES:
                self._as_buffer()
        elif kind == "t":
            self.values += value.encode("utf-8", "surrogatepass")
            self.ends.append(len(self.values))
        else:
            self.values.append(value)

    def at(self, position: int) -> Any:
        """The value at ``position`` among this column's values."""
        kind = self.kind
        if kind == "c":
            return self.texts[self.values[position]]
        if kind == "t":
            start = self.ends[position - 1] if position else 0
            data: bytearray = self.values
            return data[start : self.ends[position]].decode("utf-8", "surrogatepass")
        return self.values[position]

    def get(self, row: int) -> Any:
        """The value of row number ``row``, or None."""
        rows = self.rows
        if rows is None:
            return self.at(row) if row < self.count else None
        n = len(rows)
        if row < n and rows[row] == row:  # every row up to this one has it: no search
            return self.at(row)
        at = bisect_left(rows, row)
        return self.at(at) if at < n and rows[at] == row else None

    def row_numbers(self) -> Iterable[int]:
        """The rows that have a value, ascending."""
        return self.rows if self.rows is not None else range(self.count)

    def items(self) -> Iterator[tuple[int, Any]]:
        """(row number, value) for every row that has one."""
        for position, row in enumerate(self.row_numbers()):
            yield row, self.at(position)

    def _as_buffer(self) -> None:
        buffer = bytearray()
        for code in self.values:
            buffer += self.texts[code].encode("utf-8", "surrogatepass")
            self.ends.append(len(buffer))
        self.kind, self.values, self.codes, self.texts = "t", buffer, {}, []

    def _as_objects(self) -> None:
        values = [self.at(p) for p in range(self.count)]
        self.kind, self.values, self.codes, self.texts = "o", values, {}, []
        self.ends = array("q")


_KINDS = {float: "f", int: "q", str: "c"}  # exact types: a bool (an int) is an object


class ColumnTable:
    """Rows appended as dicts, kept as columns, read back as `RowView` objects."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self.columns: dict[str, Column] = {}
        self.count = 0
        for row in rows:
            self.append(row)

    def append(self, row: Mapping[str, Any]) -> None:
        """One more row; None values are absent ones."""
        number = self.count
        columns = self.columns
        for key, value in row.items():
            if value is None:
                continue
            column = columns.get(key)
            if column is None:
                column = columns[key] = Column()
            column.append(number, value)
        self.count += 1

    def value(self, key: str, row: int) -> Any:
        """The value of field ``key`` in row number ``row``, or None."""
        column = self.columns.get(key)
        return None if column is None else column.get(row)

    def views(self) -> list[RowView]:
        """Every row, as a read-only mapping."""
        return [RowView(self, i) for i in range(self.count)]

    def present(self) -> dict[str, int]:
        """Every field, with how many rows have it."""
        return {key: column.count for key, column in self.columns.items()}


class RowView(Mapping[str, Any]):
    """One row of a `ColumnTable`, read like a dict of the fields it has."""

    __slots__ = ("number", "table")

    def __init__(self, table: ColumnTable, number: int) -> None:
        self.table, self.number = table, number

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or ``default``."""
        column = self.table.columns.get(key)  # (the hot path of filters and sorts: inlined)
        value = None if column is None else column.get(self.number)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.table.value(key, self.number)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        number = self.number
        return (k for k, c in self.table.columns.items() if c.get(number) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"RowView({dict(self)!r})"
