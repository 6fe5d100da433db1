"""Entry point of `gitml` / `git ml`: the command group and the one place errors become exits.

Exit codes mean the same everywhere: 0 done; 1 a check ran and found a difference; 2 it could not
be done (bad input, missing data). Errors print one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from gitml import __version__, logs
from gitml.cli.errors import exit_code_for
from gitml.session import session

# Each command's module is imported only when the command runs, so `gitml --help` stays fast
# (click's "lazily loading subcommands" pattern). The one-line help shown by `gitml --help` is
# kept here; tests/cli/test_cli.py compares every row with the command itself.
# name: (module under gitml.cli, one-line help); the click object is the name in that module.
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": (
        "model",
        "Who changed which model alias, when, signed by whom, and whether policy allowed it.",
    ),
    "check": (
        "check",
        "Check the repository's ML assets as CI would: exit 0 clean, 1 findings, 2 could not run.",
    ),
    "checkout": (
        "lineage",
        "Restore a run's data and model files into the working tree, without moving HEAD.",
    ),
    "demo": (
        "tools",
        "Run the end-to-end demo: a real scikit-learn model tracked in a fresh repository.",
    ),
    "diff": (
        "compare",
        "Compare params, metrics, data and code between two commits, refs or runs.",
    ),
    "drift": (
        "monitor",
        "Compare new data with the data a model was trained on, feature by feature.",
    ),
    "export": ("compare", "Hand runs and step metrics to other tools."),
    "gc": ("artifacts", "Remove DVC cache objects that nothing references any more."),
    "hook": ("hooks", "Run one git hook (called by the installed hook scripts)."),
    "hooks": ("hooks", "Install or remove gitml's git hooks."),
    "import": (
        "interop",
        "Bring runs, metrics, artifacts and registered models in from other trackers.",
    ),
    "init": ("track", "Set up gitml (and DVC) in a git repository."),
    "lineage": (
        "lineage",
        "Show where an artifact or a run came from: runs, code commits, data, back to raw data.",
    ),
    "merge-driver": (
        "tools",
        "Git merge driver for metrics.toml and registry files (registered by `gitml init`).",
    ),
    "model": ("model", "Register, promote and roll back models; each change is a git commit."),
    "monitor": ("monitor", "Watch served models: live performance once labels arrive."),
    "predict": (
        "serve",
        "Predict every row of a CSV or Parquet file with a registered model, in chunks.",
    ),
    "pull": (
        "artifacts",
        "Download data and models: the working tree's DVC files, and every object runs reference.",
    ),
    "push": (
        "artifacts",
        "Upload to the DVC remote every data and model file that any run references.",
    ),
    "remote": (
        "artifacts",
        "Manage DVC remotes, where data and model bytes are pushed (any DVC remote type).",
    ),
    "report": ("compare", "Write a self-contained HTML report with plots, plus PNGs and Markdown."),
    "reproduce": (
        "lineage",
        "Re-run the run(s) recorded at a commit (or one run) and compare the results.",
    ),
    "run": ("track", "Run COMMAND as a tracked run; exits with the command's exit code."),
    "runs": (
        "query",
        "List every run: the working tree's and those in the history of all local branches.",
    ),
    "serve": (
        "serve",
        "Serve a registered model over HTTP: /predict, /invocations, /health, /metadata.",
    ),
    "show": ("query", "Print one run in full: its record and a summary of its step metrics."),
    "status": (
        "artifacts",
        "Say where the bytes runs reference are: cached here, pushed, or lost.",
    ),
    "sweep": (
        "sweep",
        "Search params: every trial is a `gitml run` of COMMAND, tagged with the sweep's id.",
    ),
    "textconv": (
        "tools",
        "Print a gitml Parquet file as text, for `git diff` (registered by `gitml init`).",
    ),
    "ui": (
        "ui",
        "Browse, filter and compare runs, and follow a metric along a branch, in a browser.",
    ),
    "watch": (
        "monitor",
        "Keep a model trained as labelled data lands in DIR; every step is a commit.",
    ),
}
HIDDEN = {"hook", "merge-driver"}  # called by git, not by people


class LazyGroup(click.Group):
    """A group whose commands are imported when they run, not when `gitml` starts."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, without importing any."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, its module imported now."""
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"gitml.cli.{COMMANDS[cmd_name][0]}")
        command: click.Command = getattr(module, _attribute(cmd_name))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `gitml --help`, from the table (as click would write it)."""
        shown = [name for name in self.list_commands(ctx) if name not in HIDDEN]
        limit = formatter.width - 6 - max(len(name) for name in shown)
        with formatter.section("Commands"):
            formatter.write_dl([(name, _short_help(name, limit)) for name in shown])


def _short_help(name: str, limit: int) -> str:
    """A table row's help cut to ``limit`` the way click cuts a command's own."""
    return click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)


def _attribute(name: str) -> str:
    attribute = name.replace("-", "_")
    return f"{attribute}_" if attribute == "import" else attribute  # `import` is a keyword


def all_commands() -> dict[str, click.Command]:
    """Every command, imported (for the docs and the tests)."""
    ctx = click.Context(cli)
    return {name: command for name in COMMANDS if (command := cli.get_command(ctx, name))}


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT)
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure becomes one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    logs.configure()
    debug = "--debug" in args or os.environ.get("GITML_DEBUG") == "1"
    try:
        with session():  # one repository handle per command
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
