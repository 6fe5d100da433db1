"""Entry point of `gitml` / `git ml`: the command group and the one place errors become exits.

Exit codes mean the same everywhere: 0 done; 1 a check ran and found a difference; 2 it could not
be done (bad input, missing data). Errors print one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import click

from gitml import __version__
from gitml.cli import check, hooks, interop, lineage, model, monitor, query, serve, tools, track

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


for module in (track, query, lineage, model, serve, monitor, check, interop, hooks, tools):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and an exit code."""
    from gitml.cli.errors import exit_code_for

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("GITML_DEBUG") == "1"
    try:
        result = cli.main(args=args, prog_name="gitml", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BaseException as exc:
        if debug and isinstance(exc, Exception):
            raise
        code = exit_code_for(exc)
        if code is None:
            raise  # SystemExit and friends pass through
        return code
    return result if isinstance(result, int) else 0
