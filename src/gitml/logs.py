"""Library messages go through `logging` (the ``gitml`` logger); the faces decide where they go.

Below the faces nothing prints: a module keeps ``log = logs.get(__name__)`` and says
``log.warning(...)`` or ``log.info(...)``. The command line and the git hooks call `configure`,
which writes each message as its bare text to the stderr of the moment (so pytest's capture and
a redirected stderr see it). A script that uses gitml as a library and configures nothing still
sees warnings, through `logging.lastResort`; it can route or silence all of gitml's messages
with ``logging.getLogger("gitml")``.

This module is the only one that imports `logging`, and only when a message is sent or the
output is configured: the import costs 4-7 ms (traceback, threading, string), which a git hook
that has nothing to do should not pay.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

ROOT = "gitml"


class Logger:
    """`logging.getLogger(name)`, looked up when the first message is sent."""

    def __init__(self, name: str) -> None:
        self.name = name

    def info(self, message: str, *args: Any) -> None:
        """Log ``message % args`` at INFO."""
        _logger(self.name).info(message, *args)

    def warning(self, message: str, *args: Any) -> None:
        """Log ``message % args`` at WARNING."""
        _logger(self.name).warning(message, *args)

    def __call__(self, message: str) -> None:
        """An ``echo`` callback: the message at INFO."""
        self.info("%s", message)


def get(name: str) -> Logger:
    """The logger of module ``name`` (a child of ``gitml``)."""
    return Logger(name)


def configure(level: int = 20) -> None:
    """Send gitml's messages at ``level`` (default INFO) and above to stderr, once per process."""
    import logging

    class _Stderr(logging.Handler):
        """The bare message on whatever `sys.stderr` is when it is emitted."""

        def emit(self, record: logging.LogRecord) -> None:
            try:
                sys.stderr.write(self.format(record) + "\n")
                sys.stderr.flush()
            except Exception:
                self.handleError(record)

    logger = logging.getLogger(ROOT)
    logger.setLevel(level)
    if not any(type(h).__name__ == "_Stderr" for h in logger.handlers):
        logger.addHandler(_Stderr())
    logger.propagate = False


def quiet(*names: str, level: int = 40) -> None:
    """Raise the level of other libraries' loggers (DVC's, MLflow's): default ERROR."""
    import logging

    for name in names:
        logging.getLogger(name).setLevel(level)


def _logger(name: str) -> logging.Logger:
    import logging

    return logging.getLogger(name)
