"""Commands that read: `runs`, `show`, `export`."""

from __future__ import annotations

import os
import shutil
import sys
import webbrowser
from pathlib import Path
from typing import Any

import click

from gitml import git
from gitml.diff import diff as run_diff
from gitml.diff import render as render_diff
from gitml.errors import UsageError
from gitml.export import export_parquet, sql
from gitml.query.api import search
from gitml.query.output import Fit, parse_columns, render
from gitml.query.show import describe
from gitml.repo import Repo
from gitml.report import write_report

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


@click.command()
@click.argument("a", required=False, default="HEAD", metavar="[A]")
@click.argument("b", required=False, default="workspace", metavar="[B]")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "md", "json"]), default="table",
              show_default=True)  # fmt: skip
@click.option("--md", "markdown", is_flag=True, help="Same as --format md: ready for a PR comment.")
@click.option("--run", "run", metavar="NAME",
              help="Where a side holds several runs, compare the runs of this name.")  # fmt: skip
def diff(a: str, b: str, fmt: str, markdown: bool, run: str | None) -> None:
    """Compare params, metrics, data and code between two commits, refs or runs.

    A and B are refs or commits (the run their metrics.toml names), run ids, or `workspace`
    (the default B; A defaults to HEAD). Where a commit holds several runs, B's run is the
    one named like A's (runs pair by name), or --run NAME picks on both sides; the output
    says which runs it compares. Metrics show absolute and relative change and
    better/worse by each metric's goal ([metrics.<name>] goal in .gitml/config.toml).

    \b
    Example:
      gitml diff main feature --md
      gitml diff HEAD~1 HEAD
    """
    click.echo(
        render_diff(run_diff(Repo.find(reading=True), a, b, run=run), "md" if markdown else fmt),
        nl=False,
    )


COMMANDS.append(diff)


@click.command()
@click.option("--rev", "revs", multiple=True, metavar="REV",
              help="Runs committed in the history of REV (repeatable). Default: every branch "
                   "and the working tree.")  # fmt: skip
@click.option("--where", "where", metavar="EXPR", help="Only runs matching this filter.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file  [default: .gitml/cache/report/index.html, ignored]")  # fmt: skip
@click.option("--png-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the PNG plots and report.md  [default: <output>_files]")  # fmt: skip
@click.option("--max-runs", type=int, default=30, show_default=True,
              help="Step curves for at most this many runs (the newest).")  # fmt: skip
@click.option("--open", "open_it", is_flag=True, help="Open the report in the web browser.")
def report(  # noqa: PLR0917 - one argument per option, as click passes them
    revs: tuple[str, ...],
    where: str | None,
    output: Path | None,
    png_dir: Path | None,
    max_runs: int,
    open_it: bool,
) -> None:
    """Write a self-contained HTML report with plots, plus PNGs and Markdown.

    The page shows the final metrics across commits, step-metric curves per run and the runs
    table with the params that vary. It needs no network and no server: open it, attach it to
    a CI job, or publish it. The PNGs and report.md beside it are ready for a PR comment.

    \b
    Example:
      gitml report --open
      gitml report --rev main --rev feature -o review.html
      gitml report --where "params.model == 'rf'" --png-dir docs/plots
    """
    repo = Repo.find(reading=True)
    # Inside .gitml/cache/ (ignored) unless asked: `git add -A` must not commit a report.
    output = output or repo.cache_dir / "report" / "index.html"
    done = write_report(repo, output, revs=revs, where=where, max_runs=max_runs, png_dir=png_dir)
    click.echo(
        f"wrote {done['html']} ({done['runs']} runs, {done['commits']} commits), "
        f"{len(done['pngs'])} PNG plots and {done['markdown']}"
    )
    if open_it and not webbrowser.open(Path(done["html"]).resolve().as_uri()):
        click.echo("gitml: no web browser found; open the file above", err=True)


COMMANDS.append(report)


@click.group()
def export() -> None:
    """Hand runs and step metrics to other tools.

    \b
    Example:
      gitml export parquet runs-dataset/
    """


@export.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--where", "-w", metavar="EXPR", help="Only the runs that match.")
def parquet(folder: Path, where: str | None) -> None:
    """Write runs.parquet and a hive-partitioned steps/ dataset (DuckDB, Polars, Spark).

    DIR/runs.parquet has one row per run (run_id, status, start_time, params.*, metrics.*,
    tags.*, code.*); DIR/steps/run_id=<id>/part-0.parquet holds each run's step metrics. DIR
    is replaced whole, so exporting again gives the same dataset.

    \b
    Example:
      gitml export parquet runs-dataset/
      duckdb -c "SELECT * FROM read_parquet('runs-dataset/steps/*/*.parquet',
                 hive_partitioning=true)"
    """
    counts = export_parquet(Repo.find(reading=True), folder, where=where)
    click.echo(
        f"wrote {counts['runs']} runs, {counts['artifacts']} artifacts and "
        f"{counts['steps']} step metrics to {folder}"
    )


COMMANDS.append(export)
