"""A `--where` expression as an SQL pre-filter over the index's JSON rows.

SQLite reads each row's fields with `json_extract`, in C, so a warm query over 100,000 runs
decodes only the rows that can match instead of all 150 MB of them. The pre-filter is a
*superset*: every run the Python predicate (`gitml.query.where`) accepts passes it, and the
predicate then decides. So only what SQL answers the same way or more loosely is pushed:

- `field <op> literal` for ==, <, <=, >, >= with a number or a string (either way round).
  Where SQL and Python differ, SQL says yes more often: it orders every number before every
  text, where Python refuses the comparison, and reads a JSON `true` as 1, as Python does.
- `field in (literal, ...)`.
- `and` of any parts (an unpushable part is left to Python), `or` of pushable parts.

`!=`, `not`, chained comparisons, `null` and anything else are left to Python. A row that is
not strict JSON (a NaN loss) or not a valid record always passes, so the predicate still sees
it and a broken record still gets its warning.
"""

from __future__ import annotations

import ast
from typing import Any

from gitml.errors import WhereSyntaxError
from gitml.query.where import field_name, literal, normalised

_PUSHED = {ast.Eq: "=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FLIPPED = {ast.Eq: ast.Eq, ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
_INT64 = 1 << 63
Clause = tuple[str, list[Any]]


def prefilter(expression: str) -> Clause | None:
    """An SQL condition over ``b.row``/``b.strict`` and its parameters; None filters nothing.

    ``expression`` has compiled already (`where.compile_checked`), so it parses.
    """
    tree = ast.parse(normalised(expression), mode="eval")
    pushed = _clause(tree.body, expression)
    if pushed is None:
        return None
    sql, args = pushed
    return f"(b.row IS NULL OR b.strict = 0 OR ({sql}))", args


def _clause(node: ast.AST, expression: str) -> Clause | None:
    if isinstance(node, ast.BoolOp):
        parts = [_clause(v, expression) for v in node.values]
        if isinstance(node.op, ast.Or) and None in parts:
            return None  # one part SQL cannot judge: the whole `or` may hold
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        joiner = " AND " if isinstance(node.op, ast.And) else " OR "
        return joiner.join(f"({sql})" for sql, _ in kept), [a for _, args in kept for a in args]
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return _compare(node.left, node.ops[0], node.comparators[0], expression)
    return None


def _compare(left: ast.AST, op: ast.cmpop, right: ast.AST, expression: str) -> Clause | None:
    if isinstance(op, ast.In):
        path = _path(left, expression)
        values = _literals(right)
        if path is None or values is None or not values:
            return None
        marks = ",".join("?" * len(values))
        return f"json_extract(b.row, ?) IN ({marks})", [path, *values]
    if type(op) not in _PUSHED:
        return None
    path, value = _path(left, expression), _scalar(right)
    if path is None or value is None:  # the literal first: `0.9 < metrics.accuracy`
        path, value = _path(right, expression), _scalar(left)
        op = _FLIPPED[type(op)]()
    if path is None or value is None:
        return None
    return f"json_extract(b.row, ?) {_PUSHED[type(op)]} ?", [path, value]


def _path(node: ast.AST, expression: str) -> str | None:
    """The JSON path of a field in the flat row; None for what SQL cannot name."""
    try:
        name = field_name(node, expression)
    except WhereSyntaxError:  # the predicate reports it
        return None
    if name is None or name == "commit" or '"' in name or "\\" in name:
        return None  # `commit` is added to the row after it is read, not stored in it
    return f'$."{name}"'


def _scalar(node: ast.AST) -> str | int | float | None:
    """A literal as the predicate reads it (`where.literal`), if SQLite can hold it."""
    value = literal(node)
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return None  # beyond SQLite's integers
    return value


def _literals(node: ast.AST) -> list[Any] | None:
    if not isinstance(node, ast.Tuple | ast.List):
        return None
    values = [_scalar(e) for e in node.elts]
    return None if any(v is None for v in values) else values
