"""Helper commands: `demo`, `textconv`, and the hidden `merge-driver`."""

from __future__ import annotations

from pathlib import Path

import click

from gitml.demo import run_demo
from gitml.merge import run_driver
from gitml.query.show import steps_table, summarize_steps
from gitml.tracking.journal import read_parquet


@click.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Build the demo project here instead of a temporary folder.")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the temporary project folder afterwards.")
def demo(workdir: Path | None, keep: bool) -> None:
    """Run the end-to-end demo: a real scikit-learn model tracked in a fresh repository.

    Creates a git repository with gitml and a local DVC remote, trains a RandomForest on the
    wine dataset three times with different params (each run committed), pushes data and
    models to the remote, prints the model's lineage, reproduces the second run from its
    commit, compares it with the first (`gitml diff`), writes the HTML report, registers two
    models and promotes and rolls them back, checks the history's ML assets (`gitml check`),
    predicts in batch, serves the model over HTTP on 127.0.0.1 while promoting it, then lists
    the runs from git history, best first.

    \b
    Example:
      gitml demo
      gitml demo --dir /tmp/wine-demo
    """
    run_demo(workdir=workdir, keep=keep, echo=click.echo)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rows", "all_rows", is_flag=True, help="Print every step, not the summary.")
def textconv(path: Path, all_rows: bool) -> None:
    """Print a gitml Parquet file as text, for `git diff` (registered by `gitml init`).

    One line per metric: steps, first and last step, min, max and last value, so a diff
    shows what changed in a run's curves at a glance.

    \b
    Example:
      git log -p -- .gitml/runs
      gitml textconv .gitml/runs/<run-id>/metrics.parquet --rows
    """
    metrics = read_parquet(path)
    if all_rows:
        click.echo("name\tstep\tvalue")
        for step, _, value, name in sorted(metrics.rows, key=lambda r: (r[3], r[0])):
            click.echo(f"{name}\t{step}\t{value!r}")
        return
    click.echo(steps_table(summarize_steps(metrics.rows)))


@click.command("merge-driver", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("shown_as", default="file")
def merge_driver(base: Path, ours: Path, theirs: Path, shown_as: str) -> None:
    """Git merge driver for metrics.toml and registry files (registered by `gitml init`).

    Git runs it with the base, ours and theirs versions of a file marked `merge=gitml` in
    .gitattributes; it writes the merge over OURS, or leaves conflict markers and exits 1.

    \b
    Example:
      git config merge.gitml.driver "gitml merge-driver %O %A %B %P"
    """
    run_driver(base, ours, theirs, shown_as)


COMMANDS = [demo, textconv, merge_driver]
