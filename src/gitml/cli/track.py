"""Commands that record: `init`, `run`."""

from __future__ import annotations

from difflib import get_close_matches
from pathlib import Path

import click

from gitml.errors import UsageError
from gitml.project import init_project
from gitml.records import RunRecord
from gitml.repo import Repo
from gitml.tracking.detect import declared
from gitml.tracking.wrap import Files, parse_assignments, run_command


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--git", "create_git", is_flag=True, help="Create the git repository if there is none."
)
@click.option(
    "--remote",
    type=click.Path(file_okay=False, path_type=Path),
    help="Local folder for the default DVC remote (default: under ~/.local/share/gitml).",
)
def init(path: Path | None, create_git: bool, remote: Path | None) -> None:
    """Set up gitml (and DVC) in a git repository. Safe to run again.

    Creates .gitml/config.toml, initialises DVC if needed, gives it a local default remote,
    turns off DVC's analytics and update check, and writes the .gitattributes/.gitignore
    entries gitml needs.

    \b
    Example:
      gitml init              # in the current repository
      gitml init --git demo   # create ./demo with git, DVC and gitml
    """
    project, changed = init_project(path or Path.cwd(), create_git=create_git, remote_dir=remote)
    if not changed:
        click.echo(f"gitml is already set up in {project.root}; nothing changed")
        return
    for line in changed:
        click.echo(f"  {line}")
    click.echo(f"gitml is set up in {project.root}; commit .gitml/, .dvc/ and .gitattributes")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--name", "-n", help="A name for the run.")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help='A param (repeatable); values are typed as TOML: 0.1, 5, true, "rf".',
)
@click.option("--tag", "-t", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option(
    "--input", "-i", "inputs", multiple=True, metavar="PATH",
    help="A file or folder the command reads (repeatable), like `dvc stage add -d`.",
)  # fmt: skip
@click.option(
    "--output", "-o", "outputs", multiple=True, metavar="PATH",
    help="A file or folder the command writes (repeatable), like `dvc stage add -o`.",
)  # fmt: skip
@click.option(
    "--no-detect", is_flag=True, help="Record only declared files, not what the command read/wrote."
)
@click.option("--autolog", is_flag=True, help="Log scikit-learn fits (params, metrics, model).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(  # noqa: PLR0917 - one argument per option, as click passes them
    name: str | None,
    params: tuple[str, ...],
    tags: tuple[str, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    no_detect: bool,
    autolog: bool,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND as a tracked run; exits with the command's exit code.

    The command sees its params as GITML_PARAM_<NAME> variables, in the JSON file named by
    GITML_PARAMS_FILE and through gitml.params(). If it uses gitml.start_run(), it joins this
    run; if it writes metrics.json or metrics.toml, those metrics are captured.

    On its own, gitml run records the files the command wrote (created or changed) as outputs,
    and the files a Python command opened for reading as inputs. Outputs are cached in DVC with
    a .dvc pointer and a .gitignore entry, so `git add -A` commits the pointer, never the bytes.
    A script not yet in git is captured in the run's code patch.

    \b
    Example:
      gitml run --name rf-200 --param n_estimators=200 -- python train.py
      gitml run -i data/train.csv -o models/clf.pkl -- python train.py
    """
    if command[0].startswith("-"):  # an option of gitml run misspelt: no command starts so
        _unknown_option(command[0].split("=", 1)[0])
    repo = Repo.find()
    files = Files(
        inputs=tuple(declared(repo.root, inputs, "--input")),
        outputs=tuple(declared(repo.root, outputs, "--output")),
        detect=not no_detect,
    )
    record, code = run_command(
        repo,
        list(command),
        name=name,
        params=parse_assignments(params, option="--param"),
        tags=parse_assignments(tags, option="--tag", typed=False),
        files=files,
        autolog=autolog,
    )
    click.echo(summary_line(record), err=True)
    if code == 0 and record["status"] == "failed":
        return 1  # the command succeeded, but not as declared (an output never written)
    return code if code >= 0 else 128 - code  # killed by signal N: the shell's 128+N


def summary_line(record: RunRecord) -> str:
    """`gitml: run <id> finished: acc=0.9; 1 input (data/x.csv), 1 output (models/m.pkl)`."""
    metrics = ", ".join(f"{k}={v:.6g}" for k, v in list(record["metrics"].items())[:6])
    more = len(record["metrics"]) - 6
    metrics += f" (+{more} more)" if more > 0 else ""
    line = f"gitml: run {record['id']} {record['status']}" + (f": {metrics}" if metrics else "")
    parts = []
    for files, word in ((record.get("inputs", {}), "input"), (record.get("outputs", {}), "output")):
        paths = list(files)
        if paths:
            shown = ", ".join(paths[:3]) + (f", +{len(paths) - 3}" if len(paths) > 3 else "")
            parts.append(f"{len(paths)} {word}{'s' if len(paths) > 1 else ''} ({shown})")
    if parts:
        line += "; recorded " + " and ".join(parts)
    elif record["status"] == "finished":
        line += "; recorded no input or output file"
    if record.get("error") and record["status"] != "finished":
        line += f"\ngitml: {record['error']}"
    return line


def _unknown_option(option: str) -> None:

    known = ["--name", "--param", "--tag", "--input", "--output", "--no-detect", "--autolog"]
    close = get_close_matches(option, known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(option, f"not an option of gitml run; {hint}options come first, the command "
                             "after `--`: gitml run -n NAME -- python train.py")  # fmt: skip


COMMANDS = [init, run]
