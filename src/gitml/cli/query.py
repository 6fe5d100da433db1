"""Commands that read: `runs` and `show` (`diff`, `report`, `export`: cli/compare.py)."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import click

from gitml import git
from gitml.errors import UsageError
from gitml.export import sql
from gitml.query.api import search
from gitml.query.output import Fit, parse_columns, render
from gitml.query.show import describe
from gitml.repo import Repo

FORMATS = click.Choice(["table", "json", "csv"])


@click.command()
@click.option(
    "--where",
    "-w",
    metavar="EXPR",
    help="""Filter, e.g. "metrics.accuracy > 0.9 and params.model == 'rf'".""",
)
@click.option(
    "--sort",
    "-s",
    metavar="KEYS",
    help="Comma-separated fields, '-' for descending (default: -start_time).",
)
@click.option("--limit", "-l", type=click.IntRange(min=0), help="Show at most this many runs.")
@click.option("--format", "-f", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--columns", "-c", metavar="COLS", help="Comma-separated columns for table/csv.")
@click.option("--wide", is_flag=True, help="Every column, uncut, however wide the terminal.")
@click.option("--sql", "query", metavar="QUERY",
              help='DuckDB SQL over the tables runs and steps, e.g. \'SELECT name, '
                   '"metrics.accuracy" FROM runs\'.')  # fmt: skip
def runs(
    *, where: str | None, sort: str | None, limit: int | None, fmt: str, columns: str | None,
    wide: bool, query: str | None,
) -> None:  # fmt: skip
    """List every run: the working tree's and those in the history of all local branches.

    The table fits the terminal: the params that differ between the listed runs, cut to fit,
    with the best value of each metric that has a goal in colour (not with NO_COLOR, or when
    the output is not a terminal). --wide or --columns show exactly what is asked.

    History is read from git objects, nothing is checked out, and an index under
    .gitml/cache/ makes the next query read only what changed. Fields: id, name, status,
    start_time, end_time, duration, commit, params.<name>, metrics.<name>, tags.<name>,
    code.commit, code.branch, code.dirty.

    \b
    With --sql, DuckDB answers a query over two tables: runs (one row per run, run_id first,
    columns such as "params.lr" and "metrics.accuracy", quoted because of the dot) and steps
    (run_id, step, timestamp, name, value).

    \b
    Example:
      gitml runs --where "metrics.accuracy > 0.9" --sort -metrics.accuracy --limit 5
      gitml runs --format csv > runs.csv
      gitml runs --sql 'SELECT run_id, max(value) FROM steps WHERE name = $$loss$$ GROUP BY 1'
    """
    if query is not None:
        if where or sort or limit is not None:
            raise UsageError("--sql", "filter, sort and limit inside the query, not with -w/-s/-l")
        rows = sql(Repo.find(reading=True), query)
        chosen = parse_columns(columns, rows) if columns else list(rows[0]) if rows else []
        click.echo(render(rows, fmt=fmt, columns=chosen, full=rows), nl=False)
        return
    repo = Repo.find(reading=True)
    named = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
    rows, _ = search(repo, where=where, sort=sort, limit=limit, columns=named)
    if git.is_shallow(repo.root):
        click.echo("gitml: warning: this clone is shallow: runs recorded in the history it lacks "
                   "are not listed; `git fetch --unshallow` for all of them", err=True)  # fmt: skip
    full = [_nested(row) for row in rows] if fmt == "json" else []
    fit = terminal_fit(repo) if fmt == "table" and not wide and not columns else Fit()
    click.echo(
        render(rows, fmt=fmt, columns=parse_columns(columns, rows), full=full, fit=fit), nl=False
    )


def terminal_fit(repo: Any) -> Any:
    """The terminal's width (COLUMNS, else the terminal's own) and whether colour is wanted."""
    tty = sys.stdout.isatty()
    if not tty and not os.environ.get("COLUMNS"):
        return Fit()  # a pipe or a file: everything, for the program reading it
    colour = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    goals = {name: conf.get("goal") for name, conf in repo.config.get("metrics", {}).items()}
    width = shutil.get_terminal_size().columns
    return Fit(width=max(width, 40), colour=colour, goals={k: v for k, v in goals.items() if v})


def _nested(row: dict) -> dict:
    out: dict = {}
    for key, value in row.items():
        head, dot, rest = key.partition(".")
        if dot:
            out.setdefault(head, {})[rest] = value
        else:
            out[key] = value
    return out


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def show(run_ref: str, fmt: str) -> None:
    """Print one run in full: its record and a summary of its step metrics.

    RUN is a run id or a unique prefix of one.

    \b
    Example:
      gitml show 20261123T0850
    """
    click.echo(describe(Repo.find(reading=True), run_ref, fmt=fmt), nl=False)


COMMANDS = [runs, show]
