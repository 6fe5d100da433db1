"""Entry point of `gitml` / `git ml`: the command group and the one place errors become exits.

Exit codes mean the same everywhere: 0 done; 1 a check ran and found a difference; 2 it could not
be done (bad input, missing data). Errors print one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import click

from gitml import __version__
from gitml.cli import query, tools, track

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="gitml", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """gitml: Git-native experiment and model tracking.

    Every run, param, metric and lineage link is a TOML or Parquet file in your repository;
    data and model bytes go through DVC. Lineage, review and rollback are plain git.

    \b
    Example:
      gitml init
      gitml run --param n_estimators=200 -- python train.py
      gitml runs --where "metrics.accuracy > 0.9" --sort -metrics.accuracy
    """


for module in (track, query, tools):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map every failure to one line and an exit code."""
    from gitml.errors import GitmlError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("GITML_DEBUG") == "1"
    try:
        result = cli.main(args=args, prog_name="gitml", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _error("aborted")
        return 130
    except click.ClickException as exc:
        if debug:
            raise
        prefix = f"gitml {exc.ctx.info_name}" if getattr(exc, "ctx", None) and exc.ctx.parent else "gitml"
        _error(exc.format_message().replace("\n", " "), prefix=prefix)
        return 2
    except GitmlError as exc:
        if debug:
            raise
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: no user ever sees a traceback
        if debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return 2
    return result if isinstance(result, int) else 0


def _error(message: str, *, prefix: str = "gitml") -> None:
    click.echo(f"{prefix}: error: {message}", err=True)
