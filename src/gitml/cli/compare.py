"""Commands that compare runs and hand them on: `diff`, `report`, `export`.

Apart from `runs` and `show` (cli/query.py), so that listing runs does not import the diff
and report machinery (~30 ms).
"""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from gitml.diff import diff as run_diff
from gitml.diff_render import render as render_diff
from gitml.export import export_parquet
from gitml.repo import Repo
from gitml.report import write_report


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


COMMANDS = [diff]


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
    sweeps = f", {done['sweeps']} sweep(s)" if done["sweeps"] else ""
    click.echo(
        f"wrote {done['html']} ({done['runs']} runs, {done['commits']} commits{sweeps}), "
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
