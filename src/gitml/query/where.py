"""The `--where` expression language over run fields.

A small, safe subset of Python expression syntax, parsed with `ast` and compiled to closures
(nothing is ever evaluated by Python itself)::

    metrics.accuracy > 0.9 and params.model == "rf"
    metrics["val-loss"] < 0.3 or not tags.baseline == "yes"
    status in ("finished", "crashed") and 50 <= params.n_estimators < 200

MLflow-style spellings are accepted too: ``AND``/``OR``/``NOT`` and a single ``=``. A field that a
run lacks compares false (as SQL's NULL does), and so does a comparison between a number and text;
but when a field never holds the literal's kind in any run (``params.depth == "5"`` where every
depth is a number), the query is an error saying so (`Tally`), not an empty answer.
"""

from __future__ import annotations

import ast
import io
import operator
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from gitml.errors import WhereSyntaxError
from gitml.store import is_nan

Row = Mapping[str, Any]  # a run's flat row: a dict, or a `columns.RowView`
Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]

NAMESPACES = ("params", "metrics", "tags", "code", "inputs", "outputs", "env")
TOP_FIELDS = (
    "id", "name", "status", "start_time", "end_time", "duration", "commit", "command", "error",
)  # fmt: skip

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "none": None}


def compile_where(expression: str) -> Predicate:
    """Compile an expression into a predicate over flat run rows."""
    return compile_with_fields(expression)[0]


def compile_with_fields(expression: str) -> tuple[Predicate, list[str]]:
    """The predicate, and the fields the expression names (to check that some run has them)."""
    compiled = compile_checked(expression)
    return compiled.predicate, compiled.fields


@dataclass
class Tally:
    """How one `field <op> literal` comparison went: values of the literal's kind, or not."""

    field: str
    literal: Any
    field_left: bool = True
    comparable: int = 0
    mismatched: dict[str, int] = dc_field(default_factory=dict)

    def see(self, value: Any) -> None:
        """Count one run's value of the field."""
        self._count(kind_of(value), 1)

    def see_counts(self, counts: Mapping[str, int]) -> None:
        """Count the runs holding each kind of value (`RunIndex.field_kinds`) at once."""
        for kind, count in counts.items():
            if kind != "null":  # a missing value compares false whatever the literal
                self._count(kind, count)

    def _count(self, kind: str, runs: int) -> None:
        if kind == kind_of(self.literal):
            self.comparable += runs
        else:
            self.mismatched[kind] = self.mismatched.get(kind, 0) + runs

    def problem(self) -> str | None:
        """A type mismatch that made the comparison match nothing, as a sentence."""
        if self.comparable or not self.mismatched:
            return None
        kinds = " and ".join(sorted(self.mismatched))
        fix = "remove the quotes" if isinstance(self.literal, str) else "quote the value"
        return (
            f"{self.field} holds {kinds} but is compared with the {kind_of(self.literal)} "
            f"{self.literal!r}, so nothing can match; {fix}"
        )


def kind_of(value: Any) -> str:
    """number, text, a boolean or a list: the kinds a comparison needs to agree on."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "a list"


@dataclass
class Compiled:
    """A compiled expression: its predicate, the fields it names, its type tallies."""

    predicate: Predicate
    fields: list[str]
    tallies: list[Tally]


def compile_checked(expression: str) -> Compiled:
    """Compile; the tallies tell afterwards whether a comparison could ever hold."""
    if not expression.strip():
        raise WhereSyntaxError(expression, "empty expression")
    source = normalised(expression)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if not exc.offset or exc.offset > len(source.rstrip()):
            raise WhereSyntaxError(expression, "the expression ends too early") from None
        raise WhereSyntaxError(expression, exc.msg, exc.offset) from None
    compiler = _Compiler(expression)
    return Compiled(compiler.predicate(tree.body), compiler.fields, compiler.tallies)


def field_name(node: ast.AST, expression: str) -> str | None:
    """The dotted field a node names (``metrics.accuracy``), or None if it is not a field."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if not isinstance(node.slice.value, str):
                raise WhereSyntaxError(expression, "field names in [...] must be quoted strings")
            parts.append(node.slice.value)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        else:
            return None
    return ".".join(reversed(parts))


class _Compiler:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.fields: list[str] = []
        self.tallies: list[Tally] = []

    def error(self, problem: str, node: ast.AST | None = None) -> WhereSyntaxError:
        column = getattr(node, "col_offset", None)
        return WhereSyntaxError(self.expression, problem, None if column is None else column + 1)

    def predicate(self, node: ast.AST) -> Predicate:
        if isinstance(node, ast.BoolOp):
            parts = [self.predicate(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda row: all(p(row) for p in parts)
            return lambda row: any(p(row) for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.predicate(node.operand)
            return lambda row: not inner(row)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            value = node.value
            return lambda row: value
        raise self.error("expected a comparison such as `metrics.accuracy > 0.9`", node)

    def compare(self, node: ast.Compare) -> Predicate:
        operands = [self.value(node.left), *(self.value(c) for c in node.comparators)]
        ops = [_COMPARE[type(op)] for op in node.ops]
        if len(ops) == 1:  # the common case, kept lean: it runs once per run in the history
            tally = self.tally(node)
            if tally is None:
                return _single(ops[0], *operands)
            return _tallied(ops[0], operands[0], operands[1], tally)

        def check(row: Row) -> bool:
            values = [get(row) for get in operands]
            return all(_holds(op, values[i], values[i + 1]) for i, op in enumerate(ops))

        return check

    def tally(self, node: ast.Compare) -> Tally | None:
        """A tally for `field <op> literal` (either way round) with an ordering or equality."""
        if not isinstance(node.ops[0], ast.Eq | ast.NotEq | ast.Lt | ast.LtE | ast.Gt | ast.GtE):
            return None
        left, right = node.left, node.comparators[0]
        field_left = literal(left) is None
        if not field_left:
            left, right = right, left
        constant = literal(right)
        name = field_name(left, self.expression)
        if constant is None or name is None:
            return None
        if name.startswith("metrics.") and isinstance(constant, str):
            raise self.error(f"{name} is a number; compare it with a number, not {constant!r}")
        tally = Tally(name, constant, field_left)
        self.tallies.append(tally)
        return tally

    def value(self, node: ast.AST) -> Getter:
        if isinstance(node, ast.Constant):
            const = node.value
            if not isinstance(const, str | int | float | bool | type(None)):
                raise self.error(f"unsupported literal {const!r}", node)
            return lambda row: const
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = node.operand
            if isinstance(inner, ast.Constant) and isinstance(inner.value, int | float):
                const = -inner.value if isinstance(node.op, ast.USub) else inner.value
                return lambda row: const
        if isinstance(node, ast.Tuple | ast.List):
            items = [self.value(e) for e in node.elts]
            return lambda row: tuple(get(row) for get in items)
        if isinstance(node, ast.Name) and node.id.lower() in _CONSTANT_NAMES:
            const = _CONSTANT_NAMES[node.id.lower()]
            return lambda row: const
        name = field_name(node, self.expression)
        if name is None:
            raise self.error("expected a field, a number, a quoted string or a list", node)
        self.check_field(name, node)
        return lambda row: row.get(name)

    def check_field(self, name: str, node: ast.AST) -> None:
        self.fields.append(name)
        root, _, rest = name.partition(".")
        if root in NAMESPACES and rest:
            return
        if root in TOP_FIELDS and not rest:
            return
        known = ", ".join(f"{n}.<name>" for n in NAMESPACES[:3]) + ", " + ", ".join(TOP_FIELDS)
        raise self.error(f"unknown field {name!r}; use one of {known}", node)


def _holds(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    """One comparison; a missing value or mismatched types compare false (except == / !=).

    NaN (a diverged loss) compares false with everything, `!=` included, as NULL does in
    SQL: `metrics.loss < 0.1` and `metrics.loss != 0.1` both leave a NaN run out.
    """
    if (left is None or right is None) and op not in (operator.eq, operator.ne):
        return False
    if is_nan(left) or is_nan(right):
        return False
    try:
        return bool(op(left, right))
    except TypeError:
        return False


def _single(op: Callable[[Any, Any], bool], left: Getter, right: Getter) -> Predicate:
    return lambda row: _holds(op, left(row), right(row))


def literal(node: ast.AST) -> Any:
    """The value of a string or number literal node (a negative number too), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = literal(node.operand)
        return -inner if isinstance(inner, int | float) else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float):
        return node.value
    return None


def _tallied(
    op: Callable[[Any, Any], bool], left: Getter, right: Getter, tally: Tally
) -> Predicate:
    def check(row: Row) -> bool:
        a, b = left(row), right(row)
        if a is not None and b is not None:
            tally.see(a if tally.field_left else b)
        return _holds(op, a, b)

    return check


def normalised(expression: str) -> str:
    """MLflow/SQL spellings to Python ones: AND OR NOT, `=` for `==`, `<>` for `!=`."""
    words = {"AND": "and", "OR": "or", "NOT": "not", "IN": "in"}
    out: list[tuple[int, str]] = []
    previous = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(expression).readline):
            if tok.type == tokenize.NAME and tok.string in words:
                out.append((tok.type, words[tok.string]))
            elif tok.type == tokenize.OP and tok.string == "=":
                out.append((tok.type, "=="))
            elif (
                tok.string == ">"
                and previous
                and previous.string == "<"
                and (previous.end == tok.start)
            ):
                out[-1] = (tok.type, "!=")  # Python's tokenizer reads `<>` as `<` then `>`
            else:
                out.append((tok.type, tok.string))
            previous = tok
    except (tokenize.TokenError, SyntaxError):
        return expression  # let ast.parse report it with a position
    return tokenize.untokenize(out) if out != _tokens(expression) else expression


def _tokens(expression: str) -> list[tuple[int, str]]:
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(expression).readline)]
