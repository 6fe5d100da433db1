"""A sweep's search space: parsed from `-p` options or a TOML file, checked once, kept as data.

On the command line the space is written the way DVC's `dvc exp run -S` (Hydra's sweep syntax)
writes it::

    -p 'C=choice(0.1, 1, 10)'      one of these values
    -p 'C=0.1,1,10'                the same, DVC's short form
    -p 'depth=range(2, 6)'         2, 3, 4, 5: Python's range, stop excluded (a step may follow)
    -p 'lr=interval(0.001, 0.1)'   any float in [low, high]: random or TPE search only
    -p 'lr=tag(log, interval(0.001, 0.1))'   the same, drawn on a log scale
    -p 'model=rf'                  a fixed value, passed to every trial

A space file (``--space space.toml``) names Optuna's distributions, one table a param::

    [lr]
    type = "float"          # float, int or categorical
    low = 0.0001
    high = 0.1
    log = true              # optional; `step` too, for float and int

    [model]
    choices = ["rf", "gb"]  # type categorical

Values are TOML literals (``0.1``, ``5``, ``true``, ``"text"``); a bare word is text.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.errors import FileFormatError, UsageError
from gitml.tracking.wrap import toml_literal

Value = str | int | float | bool
KINDS = ("categorical", "int", "float")
NAME = re.compile(r"^[A-Za-z_][\w.\-]{0,99}$")
# A bracket outside quotes in a value that is not a whole call: `choice(0.1, 1` or
# `choice(range(1, 3))` would otherwise become the text "choice(0.1" without a word said.
_UNQUOTED_BRACKET = re.compile(r"^[^\"']*[()]")
_CALL = re.compile(r"^\s*(choice|range|interval|tag)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Dimension:
    """One param of the space: a list of choices, or an int or float interval."""

    name: str
    kind: str  # categorical, int or float
    choices: tuple[Value, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False

    @property
    def discrete(self) -> bool:
        """Whether a grid can list it: choices, or an int or stepped float interval."""
        return self.kind == "categorical" or self.step is not None or self.kind == "int"

    def count(self) -> int:
        """How many values a discrete dimension has (counted, not listed)."""
        if self.kind == "categorical":
            return len(self.choices)
        step = self.step if self.step is not None else 1
        return math.floor((self.high - self.low) / step + 1e-9) + 1

    def values(self) -> list[Value]:
        """Every value of a discrete dimension, in order."""
        if self.kind == "categorical":
            return list(self.choices)
        step = self.step if self.step is not None else 1
        out = [self.low + i * step for i in range(self.count())]
        return [int(v) for v in out] if self.kind == "int" else [round(v, 12) for v in out]

    def to_toml(self) -> dict[str, Any]:
        """The dimension as a table of a space file (what sweep.toml keeps)."""
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high}
        if self.kind == "int":
            out["low"], out["high"] = int(self.low), int(self.high)
        if self.step is not None:
            out["step"] = int(self.step) if self.kind == "int" else self.step
        if self.log:
            out["log"] = True
        return out


@dataclass(frozen=True)
class Space:
    """The searched dimensions and the fixed params every trial gets."""

    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Value] = field(default_factory=dict)

    @property
    def discrete(self) -> bool:
        """Whether every dimension can be listed, so a grid search is possible."""
        return all(d.discrete for d in self.dimensions)

    def grid(self) -> Iterator[dict[str, Value]]:
        """Every combination, the first dimension varying slowest (as nested loops would)."""
        names = [d.name for d in self.dimensions]
        for combo in itertools.product(*(d.values() for d in self.dimensions)):
            yield dict(zip(names, combo, strict=True))

    def grid_size(self) -> int:
        """How many combinations the grid has."""
        return math.prod(d.count() for d in self.dimensions)

    def to_toml(self) -> dict[str, Any]:
        """The space as sweep.toml keeps it: ``{"dimensions": {...}, "fixed": {...}}``."""
        out: dict[str, Any] = {"dimensions": {d.name: d.to_toml() for d in self.dimensions}}
        if self.fixed:
            out["fixed"] = dict(self.fixed)
        return out


def from_options(
    items: Sequence[str], *, option: str = "--param", beside: Space | None = None
) -> Space:
    """The space `-p NAME=SPEC` options describe (the module docstring lists the forms).

    ``beside`` is a space file's: the options add to it (fixed values, more dimensions).
    """
    dims: list[Dimension] = list(beside.dimensions) if beside else []
    fixed: dict[str, Value] = dict(beside.fixed) if beside else {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        where = f"{option} {item!r}"
        if not sep or not name:
            raise UsageError(where, "expected NAME=VALUES, e.g. 'C=choice(0.1, 1, 10)'")
        _check_name(name, where)
        if name in fixed or any(d.name == name for d in dims):
            raise UsageError(where, f"{name!r} is given twice")
        parsed = _parse_spec(name, text.strip(), where)
        if isinstance(parsed, Dimension):
            dims.append(parsed)
        else:
            fixed[name] = parsed
    if not dims:
        raise UsageError(option, "nothing to search: give at least one param a choice(), "
                         "range() or interval(), e.g. -p 'C=choice(0.1, 1, 10)'")  # fmt: skip
    return Space(tuple(dims), fixed)


def from_file(path: Path) -> Space:
    """The space of a TOML file of Optuna distributions (the module docstring shows one)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FileFormatError(str(path), f"cannot read the space file: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(str(path), f"not valid TOML: {exc}") from exc
    return from_tables(doc, source=str(path))


def from_tables(doc: Mapping[str, Any], *, source: str) -> Space:
    """A space from ``{"name": {"type": ..., ...}}`` tables (a space file, or sweep.toml's)."""
    dims = []
    fixed: dict[str, Value] = {}
    for name, table in doc.items():
        where = f"{source}: [{name}]"
        _check_name(name, where)
        if not isinstance(table, dict):
            if _scalar(table):
                fixed[name] = table
                continue
            raise FileFormatError(where, "expected a table (type, low, high...) or one value")
        dims.append(_dimension_of_table(name, table, where))
    if not dims:
        raise FileFormatError(source, "nothing to search: no param has a table")
    return Space(tuple(dims), fixed)


def _dimension_of_table(name: str, table: Mapping[str, Any], where: str) -> Dimension:
    kind = table.get("type", "categorical" if "choices" in table else None)
    known = {"categorical": {"type", "choices"},
             "int": {"type", "low", "high", "step", "log"},
             "float": {"type", "low", "high", "step", "log"}}  # fmt: skip
    if kind not in known:
        raise FileFormatError(where, f"type must be one of {', '.join(KINDS)}, got {kind!r}")
    extra = sorted(set(table) - known[kind])
    if extra:
        raise FileFormatError(where, f"unknown key {extra[0]!r} for type {kind}")
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices or not all(map(_scalar, choices)):
            raise FileFormatError(where, "choices must be a non-empty list of values")
        return _categorical(name, choices, where)
    for key in ("low", "high"):
        if not _number(table.get(key)):
            raise FileFormatError(where, f"{key} must be a number")
    step, log = table.get("step"), table.get("log", False)
    if step is not None and (not _number(step) or step <= 0):
        raise FileFormatError(where, "step must be a number above 0")
    if not isinstance(log, bool):
        raise FileFormatError(where, "log must be true or false")
    return _interval(name, kind, table["low"], table["high"], step, log, where)


def _parse_spec(name: str, text: str, where: str) -> Dimension | Value:
    call = _CALL.match(text)
    if call is None and _UNQUOTED_BRACKET.search(text):
        raise UsageError(
            where,
            "unbalanced brackets, or not one of choice(), range(), "
            "interval(), tag(log, interval()); quote text that holds brackets",
        )
    if call is None:
        if "," in text and not text.startswith(("[", "{")):  # DVC's short form of choice()
            return _categorical(name, _literals(text, where), where)
        return _literal(text, where)
    func, inner = call.groups()
    if func == "choice":
        return _categorical(name, _literals(inner, where), where)
    if func == "range":
        values = _literals(inner, where)
        if len(values) not in (2, 3) or not all(map(_number, values)):
            raise UsageError(where, "range() takes start, stop and an optional step, all numbers")
        args = [float(v) if isinstance(v, float) else int(v) for v in values]  # type: ignore[arg-type]
        start, stop = args[0], args[1]
        step = args[2] if len(args) == 3 else 1
        if step <= 0 or stop <= start:
            raise UsageError(where, "range() needs start < stop and a step above 0")
        kind = "int" if all(isinstance(a, int) for a in args) else "float"
        count = math.ceil((stop - start) / step - 1e-9)  # stop excluded, as in Python
        return _interval(name, kind, start, start + (count - 1) * step, step, False, where)
    log = False
    if func == "tag":
        tag, _, rest = inner.partition(",")
        if tag.strip() != "log" or not rest.strip().startswith("interval("):
            raise UsageError(where, "tag() takes log and an interval(): tag(log, interval(a, b))")
        log, inner = True, rest.strip()[len("interval(") : -1]
    bounds = _literals(inner, where)
    if len(bounds) != 2 or not all(map(_number, bounds)):
        raise UsageError(where, "interval() takes low and high, both numbers")
    low, high = (float(b) for b in bounds)
    return _interval(name, "float", low, high, None, log, where)


def _categorical(name: str, choices: list[Any], where: str) -> Dimension:
    if len({(type(c), c) for c in choices}) != len(choices):
        raise UsageError(where, "a choice is listed twice")
    return Dimension(name, "categorical", tuple(choices))


def _interval(  # noqa: PLR0917 - the fields of a Dimension, in order
    name: str, kind: str, low: float, high: float, step: float | None, log: bool, where: str
) -> Dimension:
    if not low < high and not (low == high and step is not None):
        raise UsageError(where, f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise UsageError(where, "a log scale needs low above 0")
    if log and step is not None:
        raise UsageError(where, "a log scale cannot have a step (Optuna draws it continuously)")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise UsageError(where, "an int range needs whole numbers")
    return Dimension(name, kind, low=low, high=high, step=step, log=log)


def _literals(text: str, where: str) -> list[Value]:
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise UsageError(where, "an empty value in the list")
    return [_literal(p, where) for p in parts]


def _literal(text: str, where: str) -> Value:
    if not text:
        raise UsageError(where, "an empty value")
    if _UNQUOTED_BRACKET.search(text):
        raise UsageError(where, f"{text!r}: unbalanced brackets, or a call inside a list; "
                         "quote text that holds brackets")  # fmt: skip
    value = toml_literal(text)
    if not _scalar(value):
        raise UsageError(where, f"{text!r}: give a single value (a number, true/false or text)")
    return value  # type: ignore[no-any-return]


def _check_name(name: str, where: str) -> None:
    if not NAME.match(name):
        raise UsageError(where, f"{name!r} is not a param name (letters, digits, _ . -)")


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
