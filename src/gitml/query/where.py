"""The `--where` expression language over run fields.

A small, safe subset of Python expression syntax, parsed with `ast` and compiled to closures
(nothing is ever evaluated by Python itself)::

    metrics.accuracy > 0.9 and params.model == "rf"
    metrics["val-loss"] < 0.3 or not tags.baseline == "yes"
    status in ("finished", "crashed") and 50 <= params.n_estimators < 200

MLflow-style spellings are accepted too: ``AND``/``OR``/``NOT`` and a single ``=``. A field that a
run lacks compares false (as SQL's NULL does), and so does a comparison between a number and text.
"""

from __future__ import annotations

import ast
import io
import operator
import tokenize
from collections.abc import Callable
from typing import Any

from gitml.errors import WhereSyntaxError
from gitml.store import is_nan

Row = dict[str, Any]
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
    if not expression.strip():
        raise WhereSyntaxError(expression, "empty expression")
    source = _normalise(expression)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if not exc.offset or exc.offset > len(source.rstrip()):
            raise WhereSyntaxError(expression, "the expression ends too early") from None
        raise WhereSyntaxError(expression, exc.msg, exc.offset) from None
    compiler = _Compiler(expression)
    return compiler.predicate(tree.body), compiler.fields


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
            return _single(ops[0], *operands)

        def check(row: Row) -> bool:
            values = [get(row) for get in operands]
            return all(_holds(op, values[i], values[i + 1]) for i, op in enumerate(ops))

        return check

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


def _normalise(expression: str) -> str:
    """MLflow/SQL spellings to Python ones: AND OR NOT, `=` for `==`, `<>` for `!=`."""
    words = {"AND": "and", "OR": "or", "NOT": "not", "IN": "in"}
    out: list[tuple[int, str]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(expression).readline):
            if tok.type == tokenize.NAME and tok.string in words:
                out.append((tok.type, words[tok.string]))
            elif tok.type == tokenize.OP and tok.string == "=":
                out.append((tok.type, "=="))
            elif tok.type == tokenize.OP and tok.string == "<>":
                out.append((tok.type, "!="))
            else:
                out.append((tok.type, tok.string))
    except (tokenize.TokenError, SyntaxError):
        return expression  # let ast.parse report it with a position
    changed = any(a != b for (_, a), b in zip(out, _token_strings(expression), strict=False))
    return tokenize.untokenize(out) if changed else expression


def _token_strings(expression: str) -> list[str]:
    return [t.string for t in tokenize.generate_tokens(io.StringIO(expression).readline)]
