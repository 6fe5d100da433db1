"""`gitml sweep`: search params with trials that are ordinary gitml runs."""

from __future__ import annotations

from pathlib import Path

import click

from gitml.errors import GitmlError, UsageError
from gitml.repo import Repo, metric_goal
from gitml.sweep import driver
from gitml.sweep import study as studies
from gitml.sweep.dask_engine import DaskEngine
from gitml.sweep.space import from_file, from_options
from gitml.sweep.workspace import snapshot


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUES",
    help="A searched or fixed param (repeatable): 'C=choice(0.1,1,10)', 'C=0.1,1,10', "
    "'depth=range(2,6)', 'lr=interval(0.001,0.1)', 'lr=tag(log, interval(...))', 'model=rf'.",
)  # fmt: skip
@click.option(
    "--space", "space_file", type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file of Optuna distributions, one table a param (see the guide).",
)  # fmt: skip
@click.option("--metric", "-m", help="The final metric to optimize (default: [registry] metric).")
@click.option(
    "--maximize/--minimize", default=None,
    help="The metric's direction (default: its [metrics.<name>] goal, or its name).",
)  # fmt: skip
@click.option(
    "--sampler", type=click.Choice(studies.SAMPLERS), default=None,
    help="grid (the default when every param is a list), random, or tpe (Bayesian).",
)  # fmt: skip
@click.option(
    "--trials", "-n", type=click.IntRange(min=1),
    help="How many finished or pruned trials (default: the whole grid; 20 otherwise).",
)  # fmt: skip
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
    help="Trials run at once, each in its own worktree.",
)  # fmt: skip
@click.option(
    "--prune", "pruner", flag_value="median", default=None,
    help="Stop trials whose logged steps of the metric fall behind the median (Optuna).",
)  # fmt: skip
@click.option("--seed", type=int, help="Seed of the random and TPE samplers.")
@click.option(
    "--max-failures", type=click.IntRange(min=0),
    help="Failed trials after which the sweep stops (default: half the trials, at least 3).",
)  # fmt: skip
@click.option("--name", help="A name for the sweep; trials are named <name>-<number>.")
@click.option(
    "--resume", "resume_id", metavar="SWEEP_ID",
    help="Go on with a sweep: run what it still lacks (failed and unstarted trials).",
)  # fmt: skip
@click.option(
    "--dask", "dask_address", metavar="ADDRESS",
    help="Run the trials on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786).",
)  # fmt: skip
@click.option(
    "--git-remote", default="origin", show_default=True,
    help="With --dask: the git remote workers clone the code from.",
)  # fmt: skip
@click.option("--no-commit", is_flag=True, help="Leave the sweep's files uncommitted.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def sweep(  # noqa: PLR0917 - one argument per option, as click passes them
    params: tuple[str, ...],
    space_file: Path | None,
    metric: str | None,
    maximize: bool | None,
    sampler: str | None,
    trials: int | None,
    jobs: int,
    pruner: str | None,
    seed: int | None,
    max_failures: int | None,
    name: str | None,
    resume_id: str | None,
    dask_address: str | None,
    git_remote: str,
    no_commit: bool,
    command: tuple[str, ...],
) -> int:
    """Search params: every trial is a `gitml run` of COMMAND, tagged with the sweep's id.

    The sweep's files (.gitml/sweeps/<id>/: sweep.toml and Optuna's study journal) and its
    trials' runs are committed at the end, so a sweep is reviewed and diffed like code. Trials
    run on a snapshot of the working tree, each in a worktree of its own. Exit 0 when the sweep
    has all its trials, 1 when failures stopped it (resume it), 2 when it could not run.

    \b
    Example:
      gitml sweep -p 'C=choice(0.1,1,10)' -p 'depth=range(2,6)' -j 2 -- python train.py
      gitml sweep --space space.toml --sampler tpe -n 30 --prune -m val_loss -- python train.py
      gitml sweep --resume 20261130T185012Z-3fa9c1
      gitml runs --where "tags.sweep == '20261130T185012Z-3fa9c1'" --sort -metrics.accuracy
    """
    repo = Repo.find()
    if resume_id:
        spec = _resumed(repo, resume_id, params, space_file, command)
    else:
        spec = _new(repo, params, space_file, metric, maximize, sampler, trials, pruner, seed,
                    max_failures, name, command)  # fmt: skip
    engine: driver.Engine
    if dask_address:
        explicit = click.get_current_context().get_parameter_source("jobs")
        given = jobs if explicit == click.core.ParameterSource.COMMANDLINE else None
        engine = dask = DaskEngine(repo, spec, dask_address, jobs=given, git_remote=git_remote)
        dask.connect()  # before anything is written: no scheduler there is exit 2, no sweep
    else:
        engine = driver.LocalEngine(repo, spec, jobs)
    if resume_id:
        click.echo(f"gitml: resuming sweep {spec.id}: {' '.join(spec.command)}", err=True)
    else:
        studies.write(repo, spec)
        where = f"on the Dask cluster at {dask_address}" if dask_address else f"{jobs} at a time"
        click.echo(f"gitml: sweep {spec.id}: {spec.sampler} search of {spec.trials} trial(s) "
                   f"for {spec.direction} {spec.metric}, {where}", err=True)  # fmt: skip
    result = driver.run(repo, spec, engine, echo=lambda line: click.echo(f"  {line}", err=True))
    best = result.study.best() if result.study else None
    if best is not None:
        click.echo(f"gitml: best trial {best.number}: {spec.metric} = {best.value:.6g}, run "
                   f"{best.run}; once committed, `gitml model register {best.run} <name>` "
                   "registers its model")  # fmt: skip
    if not no_commit:
        try:
            made = driver.commit(repo, spec, result)
        except GitmlError as exc:  # the trials are kept on disk: say so, exit as the sweep did
            click.echo(f"gitml: {exc}", err=True)
        else:
            if made:
                click.echo(f"gitml: committed the sweep as {made[:12]}", err=True)
    if result.complete:
        click.echo(f"gitml: sweep {spec.id} has its {spec.trials} trial(s)", err=True)
        return 0
    why = "failed trials stopped it" if result.stopped_by_failures else "trials are missing"
    click.echo(f"gitml: sweep {spec.id} has {result.done} of {spec.trials} trials ({why}); "
               f"`gitml sweep --resume {spec.id}` runs the rest", err=True)  # fmt: skip
    return 1


def _new(  # noqa: PLR0917
    repo: Repo, params: tuple[str, ...], space_file: Path | None, metric: str | None,
    maximize: bool | None, sampler: str | None, trials: int | None, pruner: str | None,
    seed: int | None, max_failures: int | None, name: str | None, command: tuple[str, ...],
) -> studies.Spec:  # fmt: skip
    if not command:
        raise UsageError("command", "nothing to run; put the training command after `--`")
    if command[0].startswith("-"):
        raise UsageError(command[0], "not an option of gitml sweep; options come first, then "
                         "`--` and the command")  # fmt: skip
    space = from_options(params, beside=from_file(space_file) if space_file else None)
    metric = metric or repo.config.get("registry", {}).get("metric")
    if not metric:
        raise UsageError("--metric", "which final metric should the sweep optimize? e.g. "
                         "--metric accuracy (or set [registry] metric)")  # fmt: skip
    direction = {True: "maximize", False: "minimize"}.get(maximize)  # type: ignore[arg-type]
    direction = direction or metric_goal(repo, metric) or "maximize"
    sampler = sampler or ("grid" if space.discrete else "tpe")
    if trials is None:
        trials = space.grid_size() if sampler == "grid" else 20
    cwd = Path.cwd().resolve()
    try:
        rel = cwd.relative_to(repo.root).as_posix()
    except ValueError:
        rel = "."
    return studies.new_spec(
        repo, command=tuple(command), cwd=rel, metric=metric, direction=direction,
        sampler=sampler, trials=trials, space=space, code=snapshot(repo),
        pruner=pruner or "none", seed=seed, name=name, max_failures=max_failures,
    )  # fmt: skip


def _resumed(
    repo: Repo, sweep_id: str, params: tuple[str, ...], space_file: Path | None,
    command: tuple[str, ...],
) -> studies.Spec:  # fmt: skip
    if params or space_file or command:
        raise UsageError("--resume", "a resumed sweep runs as it was written in its sweep.toml; "
                         "give no params, space or command")  # fmt: skip
    return studies.read(repo, sweep_id)


COMMANDS = [sweep]
