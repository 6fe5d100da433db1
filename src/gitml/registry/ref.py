"""A model reference (`wine@production`, `wine@3`, `wine`), parsed in one place.

`ModelRef.parse` is the only parser of the `name@selector` form. `registry.resolve` turns a
reference into a `Resolved`: the version it names at that moment, read once and copied, with the
reference `pinned` to its number so that every later step of the same operation (load, drift
reference, scoring) sees that version even if the alias moves meanwhile.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from gitml.errors import UsageError
from gitml.records import ModelDoc, VersionRecord

LATEST = "latest"


@dataclass(frozen=True)
class ModelRef:
    """A registered model's name and a selector: an alias, a version number, or `latest`."""

    name: str
    selector: str = LATEST

    @classmethod
    def parse(cls, spec: str | ModelRef, *, default: str = LATEST) -> ModelRef:
        """``name@alias|N|vN|latest``; a bare name takes ``default``."""
        if isinstance(spec, ModelRef):
            return spec
        name, _, selector = spec.strip().partition("@")
        if not name or "@" in selector:
            raise UsageError("model", f"{spec!r}: give it as name@alias, name@<version> or name")
        return cls(name, selector or default)

    @property
    def number(self) -> int | None:
        """The version number the selector names (`3`, `v3`), or None for an alias/latest."""
        digits = self.selector[1:] if self.selector[:1] == "v" else self.selector
        return int(digits) if digits.isdigit() else None

    @property
    def alias(self) -> str | None:
        """The alias the selector names, or None for a number or `latest`."""
        return None if self.number is not None or self.selector == LATEST else self.selector

    def at(self, selector: str | int) -> ModelRef:
        """The same model with another selector."""
        return ModelRef(self.name, str(selector))

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


@dataclass(frozen=True)
class Resolved:
    """What a reference named when it was resolved: the registry document and the version."""

    ref: ModelRef
    doc: ModelDoc
    version: VersionRecord

    @classmethod
    def of(cls, ref: ModelRef, doc: ModelDoc, version: VersionRecord) -> Resolved:
        """A copy of what was read: a later change of the registry does not reach it."""
        return cls(ref, copy.deepcopy(doc), copy.deepcopy(version))

    @property
    def number(self) -> int:
        """The version number."""
        return int(self.version["version"])

    @property
    def pinned(self) -> ModelRef:
        """The reference by number: it names this version whatever the aliases do later."""
        return self.ref.at(self.number)

    def __str__(self) -> str:
        return f"{self.ref} (v{self.number})"
