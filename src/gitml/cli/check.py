"""`gitml check`: static analysis, integrity and dependency checks of ML assets, for CI."""

from __future__ import annotations

from pathlib import Path

import click

from gitml.check.core import check as run_check
from gitml.check.environment import read_freeze
from gitml.check.output import render, summary
from gitml.errors import UsageError
from gitml.repo import Repo
from gitml.store import atomic_write

CHECK_NAMES = ("schema", "artifacts", "models", "environment", "secrets")


def _only(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if not value:
        return CHECK_NAMES
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in CHECK_NAMES]
    if unknown or not names:
        raise click.BadParameter(f"{', '.join(unknown) or value!r}: choose from "
                                 f"{', '.join(CHECK_NAMES)}")  # fmt: skip
    return names


@click.command()
@click.option("--rev", metavar="REV", help="Check this commit's files  [default: the working tree]")
@click.option("--all-history", is_flag=True,
              help="Check every version of every file on any branch or tag.")  # fmt: skip
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "sarif"]),
              default="table", show_default=True)  # fmt: skip
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file; the summary line goes to stderr.")  # fmt: skip
@click.option("--only", callback=_only, metavar="CHECKS",
              help=f"Comma-separated checks to run, of: {', '.join(CHECK_NAMES)}")  # fmt: skip
@click.option("--remote", "-r", help="The DVC remote to look in for objects not cached here.")
@click.option("--serving-env", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A pip freeze file of the serving environment  [default: [check] "
                   "serving_env, else this Python's packages]")  # fmt: skip
@click.option("--no-fetch", is_flag=True, help="Do not download model files to scan them.")
def check(
    *, rev: str | None, all_history: bool, fmt: str, output: Path | None, only: tuple[str, ...],
    remote: str | None, serving_env: Path | None, no_fetch: bool,
) -> int:  # fmt: skip
    """Check the repository's ML assets as CI would: exit 0 clean, 1 findings, 2 could not run.

    \b
    - schema: runs, step metrics, registry, config, metrics summary, monitor
      reports and .dvc pointers parse and match their JSON Schemas
    - artifacts: every object they reference is in the DVC cache or remote,
      and cached bytes hash to their md5 (unchanged files are not re-read)
    - models: pickle/joblib files scanned for dangerous imports (picklescan),
      skops files for untrusted types, without loading them
    - environment: registered models trained with another scikit-learn,
      numpy or pandas major.minor than serving has
    - secrets: params and tags that look like credentials

    Notes (a run with no recorded environment) are shown but do not fail the check, nor do
    findings the team accepted in .gitml/config.toml ([[check.ignore]] with a rule and a
    reason; JSON and SARIF list them as suppressed).

    \b
    Example:
      gitml check
      gitml check --rev origin/main --format json
      gitml check --all-history --format sarif -o gitml.sarif
    """
    if rev is not None and all_history:
        raise UsageError("--rev", "give --rev or --all-history, not both")
    serving = read_freeze(serving_env, f"--serving-env {serving_env}") if serving_env else None
    report = run_check(Repo.find(), rev=rev, all_history=all_history, checks=only,
                       remote=remote, serving_env=serving, fetch=not no_fetch)  # fmt: skip
    text = render(report, fmt)
    if output is not None:
        atomic_write(output, text.encode())
        click.echo(summary(report), err=True)
    else:
        click.echo(text, nl=False)
    return 1 if report.failed else 0


COMMANDS = [check]
