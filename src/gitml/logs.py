"""Library messages go through `logging` (the ``gitml`` logger); the faces decide where they go.

Below the faces nothing prints: a module says ``log.warning(...)`` or ``log.info(...)`` on
``logging.getLogger(__name__)``. The command line and the git hooks call `configure`, which
writes each message as its bare text to the stderr of the moment (so pytest's capture and a
redirected stderr see it). A script that uses gitml as a library and configures nothing still
sees warnings, through `logging.lastResort`; it can route or silence all of gitml's messages
with ``logging.getLogger("gitml")``.
"""

from __future__ import annotations

import logging
import sys

ROOT = "gitml"


class _Stderr(logging.Handler):
    """The bare message on whatever `sys.stderr` is when it is emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure(level: int = logging.INFO) -> None:
    """Send gitml's messages at ``level`` and above to stderr, once per process."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(level)
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
    logger.propagate = False
