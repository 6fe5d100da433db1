"""Commands over lineage: `reproduce`."""

from __future__ import annotations

import click

from gitml.artifacts.restore import checkout_run
from gitml.lineage import build as build_lineage
from gitml.lineage import render as render_lineage
from gitml.repo import Repo
from gitml.reproduce import exit_code
from gitml.reproduce import render as render_results
from gitml.reproduce import reproduce as run_reproduce
from gitml.tracking.comparison import Tolerance


@click.command()
@click.argument("ref", metavar="COMMIT|RUN")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-9, show_default=True,
              help="Relative tolerance for metrics.")  # fmt: skip
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Absolute tolerance for metrics.")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the temporary worktree to look at.")
def reproduce(ref: str, rtol: float, atol: float, keep: bool) -> int:
    """Re-run the run(s) recorded at a commit (or one run) and compare the results.

    Checks out the recorded code commit in a temporary worktree, applies the recorded patch,
    restores the inputs by hash (from the DVC cache or remote), re-runs the recorded command
    with the recorded params, and compares metrics and output hashes. Exit 0 reproduced,
    1 a metric or output differs, 2 it could not run (missing data, patch, command failed).

    \b
    Example:
      gitml reproduce HEAD~3
      gitml reproduce 20261123T0850 --rtol 1e-6
    """
    results = run_reproduce(
        Repo.find(), ref, tolerance=Tolerance(rtol=rtol, atol=atol), keep=keep,
        echo=lambda line: click.echo(line, err=True),
    )  # fmt: skip
    click.echo(render_results(results), nl=False)
    return exit_code(results)


@click.command()
@click.argument("target", metavar="PATH|RUN|MODEL@ALIAS")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json", "dot", "mermaid"]),
              default="text", show_default=True)  # fmt: skip
def lineage(target: str, fmt: str) -> None:
    """Show where an artifact or a run came from: runs, code commits, data, back to raw data.

    For a file: the run that produced its current bytes, that run's code commit (and patch),
    its inputs, and for each input the run that produced it, back to raw data. For a run: its
    code and inputs likewise. For a registered model (wine@production, wine@3): that version's
    file and the run behind it. `--format mermaid` pastes into a PR comment.

    \b
    Example:
      gitml lineage model.pkl
      gitml lineage model.pkl --format mermaid
      gitml lineage wine@production
      gitml lineage 20261123T0850 --format json
    """
    click.echo(render_lineage(build_lineage(Repo.find(reading=True), target), fmt), nl=False)


COMMANDS = [reproduce, lineage]


@click.command()
@click.argument("ref", metavar="RUN|COMMIT")
@click.option("--outputs-only", is_flag=True, help="Restore what the run produced, not its inputs.")
def checkout(ref: str, outputs_only: bool) -> None:
    """Restore a run's data and model files into the working tree, without moving HEAD.

    RUN is a run id or prefix; a COMMIT means the runs recorded in it. Bytes come from the DVC
    cache, or the remote when the cache lacks them, and are verified against their md5.

    \b
    Example:
      gitml checkout 20261123T0850
      gitml checkout v1.0 --outputs-only
    """
    for path in checkout_run(Repo.find(), ref, inputs=not outputs_only):
        click.echo(f"restored {path}")


COMMANDS.append(checkout)
