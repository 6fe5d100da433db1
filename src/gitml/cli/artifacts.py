"""Commands that move bytes: `push`, `pull`, `status`, `gc`, `remote`.

Apart from `init` and `run` (cli/track.py), so that `gitml run` does not import the artifact
sync and garbage collection modules (~100 ms of its start).
"""

from __future__ import annotations

from typing import Any

import click

from gitml.artifacts.gc import collect_garbage
from gitml.artifacts.sync import object_status, pull_runs, push_runs
from gitml.data.init import add_remote, list_remotes
from gitml.project import ensure_default_remote
from gitml.repo import Repo


def _with_remote(repo: Any, name: str | None) -> Any:
    """The project, with the embedded default remote set up first in a fresh clone."""
    if name is None:
        for line in ensure_default_remote(repo):
            click.echo(f"gitml: {line}", err=True)
    return repo


@click.command()
@click.option("--remote", "-r", help="DVC remote to push to (default: DVC's default remote).")
def push(remote: str | None) -> None:
    """Upload to the DVC remote every data and model file that any run references.

    Covers the runs of the working tree and of every local branch's history. If a referenced
    file is in neither the local cache nor the remote, nothing is claimed: the command fails
    and names the run and path.

    \b
    Example:
      gitml push
      gitml push --remote s3store
    """
    report = push_runs(_with_remote(Repo.find(), remote), remote=remote)
    click.echo(
        f"{report.referenced} object(s) referenced by {report.runs} run(s); "
        f"{report.uploaded} uploaded, the rest already in the remote"
    )


COMMANDS = [push]


@click.group()
def remote() -> None:
    """Manage DVC remotes, where data and model bytes are pushed (any DVC remote type).

    \b
    Example:
      gitml remote add shared /mnt/team/dvc-store --default
      gitml remote add s3store s3://bucket/project
      gitml remote list
    """


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--default", "-d", "make_default", is_flag=True, help="Make it the default remote.")
def remote_add(name: str, url: str, make_default: bool) -> None:
    """Add or change a remote in .dvc/config (commit it to share it).

    \b
    Example:
      gitml remote add shared /mnt/team/dvc-store --default
    """
    add_remote(Repo.find().root, name, url, default=make_default)
    click.echo(f"remote {name} -> {url}" + (" (default)" if make_default else ""))


@remote.command("list")
def remote_list() -> None:
    """List the remotes and which one is the default.

    \b
    Example:
      gitml remote list
    """
    remotes, default = list_remotes(Repo.find().root)
    for name, url in sorted(remotes.items()):
        click.echo(f"{name}\t{url}" + ("\t(default)" if name == default else ""))


COMMANDS.append(remote)


@click.command()
@click.option(
    "--dry-run", "-n", "dry", is_flag=True, help="Say what would be removed, remove nothing."
)
def gc(dry: bool) -> None:
    """Remove DVC cache objects that nothing references any more.

    Kept: every file any commit on any branch or tag (or the working tree) points to through
    DVC, and every input and output of every run in the history. Unlike plain `dvc gc`, bytes
    that only run records reference are never dropped.

    \b
    Example:
      gitml gc --dry-run
      gitml gc
    """
    report = collect_garbage(Repo.find(), dry=dry)
    verb = "would remove" if report.dry else "removed"
    click.echo(f"{verb} {report.removed} object(s), {report.freed_bytes / 2**20:.1f} MiB")


COMMANDS.append(gc)


@click.command()
@click.option("--remote", "-r", help="DVC remote to pull from (default: DVC's default remote).")
def pull(remote: str | None) -> None:
    """Download data and models: the working tree's DVC files, and every object runs reference.

    \b
    Example:
      gitml pull
    """
    files, objects = pull_runs(_with_remote(Repo.find(), remote), remote=remote)
    click.echo(f"{files} file(s) checked out; {objects} object(s) fetched for run records")


@click.command()
@click.option("--remote", "-r", help="DVC remote to compare with (default: DVC's default remote).")
def status(remote: str | None) -> int:
    """Say where the bytes runs reference are: cached here, pushed, or lost.

    Exit 0 when everything referenced is in the remote, 1 when something is only local (run
    `gitml push`), 2 when something is in neither place.

    \b
    Example:
      gitml status
    """
    st = object_status(_with_remote(Repo.find(), remote), remote=remote)
    where = f"{st.local} in the cache, {st.remote} in the remote"
    click.echo(f"{st.total} object(s) referenced by runs: {where}")
    for label, items in (("not pushed", st.not_pushed), ("LOST (in neither)", st.lost)):
        for run, path, md5 in items:
            click.echo(f"  {label}: run {run} {path} ({md5[:8]})")
    return 2 if st.lost else 1 if st.not_pushed else 0


COMMANDS += [pull, status]
