"""One operation's shared handles: a command or a hook opens each repository once.

`session()` marks the extent of one operation (the command line and the hooks run each command
in one); inside it `handle(key, open_it)` opens a resource on first use and hands the same one
back after. Outside a session nothing is kept, so library calls behave as before. This module
imports nothing heavy: `gitml --help` enters a session too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_HANDLES: ContextVar[dict[str, Any] | None] = ContextVar("gitml_handles", default=None)


@contextmanager
def session() -> Iterator[None]:
    """Share handles until the block ends (a nested session shares its parent's)."""
    current = _HANDLES.get()
    token = _HANDLES.set({} if current is None else current)
    try:
        yield
    finally:
        _HANDLES.reset(token)


def handle(key: str, open_it: Callable[[], T]) -> T:
    """The handle kept under ``key`` in this session, opened now if it is the first use."""
    handles = _HANDLES.get()
    if handles is None:
        return open_it()
    if key not in handles:
        handles[key] = open_it()
    value: T = handles[key]
    return value
