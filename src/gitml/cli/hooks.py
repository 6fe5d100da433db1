"""Commands for git hooks: `hooks install/uninstall`, and `hook <name>` that the shims call."""

from __future__ import annotations

import click

from gitml.hook_install import install, uninstall
from gitml.hooks.run import run_hook
from gitml.repo import Repo


@click.group()
def hooks() -> None:
    """Install or remove gitml's git hooks.

    pre-commit, post-commit, pre-push, post-checkout and post-merge. A hook already there
    is kept as <name>.legacy and still runs first.

    \b
    Example:
      gitml hooks install
      gitml hooks uninstall
    """


@hooks.command("install")
def hooks_install() -> None:
    """Install the hooks into this repository (`gitml init` does it too).

    \b
    Example:
      gitml hooks install
    """
    changed = install(Repo.find().root)
    click.echo(
        "\n".join(changed) if changed else "gitml hooks are already installed; nothing changed"
    )


@hooks.command("uninstall")
def hooks_uninstall() -> None:
    """Remove gitml's hooks and restore any hook they replaced.

    \b
    Example:
      gitml hooks uninstall
    """
    changed = uninstall(Repo.find().root)
    click.echo("\n".join(changed) if changed else "no gitml hook is installed; nothing changed")


@click.command(hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook(name: str, args: tuple[str, ...]) -> int:
    """Run one git hook (called by the installed hook scripts).

    \b
    Example:
      gitml hook pre-commit
    """
    return run_hook(name, list(args))


COMMANDS = [hooks, hook]
