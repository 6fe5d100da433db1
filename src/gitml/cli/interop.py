"""Commands that bring history in from other tools: `import mlflow`, `import dvc`."""

from __future__ import annotations

from pathlib import Path

import click

from gitml.importers.dvc import import_experiments
from gitml.importers.mlflow import import_store
from gitml.repo import Repo


@click.group(name="import")
def import_() -> None:
    """Bring runs, metrics, artifacts and registered models in from other trackers.

    \b
    Example:
      gitml import mlflow ./mlruns
      gitml import mlflow sqlite:///mlflow.db
    """


@import_.command()
@click.argument("source", metavar="MLRUNS|sqlite:///PATH")
@click.option("--no-artifacts", is_flag=True, help="Leave the artifacts out (records only).")
@click.option("--progress/--no-progress", default=None,
              help="The progress bar  [default: on a terminal]")  # fmt: skip
def mlflow(source: str, no_artifacts: bool, progress: bool | None) -> int:
    """Import an MLflow store: every experiment, run, metric step, artifact and model.

    Runs become .gitml/runs/<id>/ records with their step metrics; artifacts go under
    mlflow-artifacts/<experiment>/<run>/ into the DVC cache; registered model versions and
    aliases become .gitml/models/<name>.toml. Importing again adds only what is new. Needs
    the mlflow package. Commit the result with git when it looks right. A run the store will
    not give (MLflow refuses to read it) is named and left out, whole, and the rest is
    imported: exit 1 then, 0 when everything came.

    \b
    Example:
      gitml import mlflow ./mlruns
      gitml import mlflow sqlite:///mlflow.db --no-artifacts
    """
    summary = import_store(Repo.find(), source, artifacts=not no_artifacts, progress=progress,
                           echo=click.echo)  # fmt: skip
    click.echo(
        f"imported {summary.runs} runs ({summary.skipped} already there) from "
        f"{summary.experiments} experiments: {summary.steps} metric steps, {summary.artifacts} "
        f"artifact files, {summary.models} models with {summary.versions} versions and "
        f"{summary.aliases} aliases"
    )
    for item in summary.not_carried:
        click.echo(f"not carried: {item}")
    for item in summary.failed:
        click.echo(f"not imported: {item}", err=True)
    if summary.runs or summary.models:
        click.echo("review, then: git add -A && git commit -m 'Import from MLflow'")
    return 1 if summary.failed else 0


@import_.command()
@click.option("--dvclive-dir", default="dvclive", show_default=True,
              help="Where the experiments' DVCLive output is, inside each commit.")  # fmt: skip
@click.option("--dvclive", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Also import this working-tree DVCLive folder as one run.")  # fmt: skip
def dvc(dvclive_dir: str, folder: Path | None) -> None:
    """Import DVC experiments (refs/exps) and DVCLive output as runs.

    Each experiment commit becomes a run: params from params.yaml (and DVCLive's), final
    metrics from DVCLive's metrics.json, every step from its plots/metrics/*.tsv, the
    baseline commit as its code commit, and dvc.experiment / dvc.exp_rev / dvc.baseline
    tags. Read from git objects; nothing is checked out. Importing again adds only what is new.

    \b
    Example:
      gitml import dvc
      gitml import dvc --dvclive dvclive
    """
    summary = import_experiments(Repo.find(), dvclive=dvclive_dir, workspace=folder,
                                 echo=click.echo)  # fmt: skip
    click.echo(f"imported {summary.runs} runs ({summary.skipped} already there) from "
               f"{summary.experiments} experiments: {summary.steps} metric steps")  # fmt: skip
    if summary.runs:
        click.echo("review, then: git add -A && git commit -m 'Import DVC experiments'")


COMMANDS = [import_]
