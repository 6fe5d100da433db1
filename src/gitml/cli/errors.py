"""The one place where exceptions become a message line and an exit code."""

from __future__ import annotations

import click

from gitml.errors import GitmlError


def _click(exc: click.ClickException) -> tuple[str, str, int]:
    ctx = getattr(exc, "ctx", None)
    prefix = f"gitml {ctx.info_name}" if ctx is not None and ctx.parent is not None else "gitml"
    return prefix, exc.format_message().replace("\n", " "), 2


# Checked in order; the first matching type wins.
HANDLERS: list[tuple[type[BaseException], object]] = [
    (GitmlError, lambda e: ("gitml", str(e), e.exit_code)),
    (click.ClickException, _click),
    (click.exceptions.Abort, lambda e: ("gitml", "aborted", 130)),
    (KeyboardInterrupt, lambda e: ("gitml", "interrupted", 130)),
    (BrokenPipeError, lambda e: ("", "", 0)),
    (
        Exception,
        lambda e: (
            "gitml",
            f"internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
            2,
        ),
    ),
]


def exit_code_for(exc: BaseException) -> int | None:
    """Print the one-line message for ``exc`` and return its exit code (None: not ours)."""
    for kind, handle in HANDLERS:
        if isinstance(exc, kind):
            prefix, message, code = handle(exc)  # type: ignore[operator]
            if message:
                click.echo(f"{prefix}: error: {message}", err=True)
            return code
    return None
