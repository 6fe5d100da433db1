"""`gitml model`: the registry. Every change is its own commit, so git log is the audit trail."""

from __future__ import annotations

import json
from typing import Any

import click

from gitml import store
from gitml.audit import audit as run_audit
from gitml.audit import rows
from gitml.query.output import render
from gitml.registry import versions as registry
from gitml.registry.ref import ModelRef
from gitml.repo import Repo

FORMAT = click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]),
                      default="table", show_default=True)  # fmt: skip


def _print(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> None:

    click.echo(render(rows, fmt=fmt, columns=columns, full=rows), nl=False)


@click.group()
def model() -> None:
    """Register, promote and roll back models; each change is a git commit.

    A version is a run's model file by md5, with the run's code commit, metrics and the
    model's signature. Aliases such as production and staging point at versions; name a
    version as name@alias, name@3 or name@latest anywhere a model is taken.

    \b
    Example:
      gitml model register 20261123T0850 wine
      gitml model promote wine 2 --to production --require-better
      gitml model rollback wine
    """


@model.command()
@click.argument("run")
@click.argument("name")
@click.option("--path", help="The run output to register (needed when it has several).")
@click.option("--description", "-d", help="A note kept with the version.")
def register(run: str, name: str, path: str | None, description: str | None) -> None:
    """Register a run's model as the next version of NAME (and commit).

    RUN is a run id or unique prefix; the run must be finished and committed. The model's
    signature (input columns and types, output) is read from the model and its training data.

    \b
    Example:
      gitml model register 20261123T0850 wine
      gitml model register 20261123T0850 wine --path models/rf.pkl -d "more trees"
    """
    version = registry.register(Repo.find(), run, name, path=path, description=description)
    inputs = len((version.get("signature") or {}).get("inputs", []))
    click.echo(
        f"registered {name} v{version['version']}: {version['path']} "
        f"(md5 {version['md5'][:12]}) from run {version['run']}"
        + (f"; signature: {inputs} input columns" if inputs else "; no signature")
    )


@model.command()
@click.argument("name")
@click.argument("version")
@click.option("--to", "alias", default="production", show_default=True, help="The alias to move.")
@click.option("--require-better", is_flag=True,
              help="Refuse (exit 1) unless VERSION beats the alias's current version.")  # fmt: skip
@click.option("--metric", help="The metric for --require-better  [default: [registry] metric]")
@click.option("--reason", "-m", help="Why; goes into the commit message and the history.")
@click.option("--allow-findings", is_flag=True,
              help="Promote despite `gitml check` findings (kept in the history).")  # fmt: skip
@click.option("--new-alias", is_flag=True,
              help="Create an alias close to an existing one's name (not a typo).")  # fmt: skip
def promote(
    *, name: str, version: str, alias: str, require_better: bool, metric: str | None,
    reason: str | None, allow_findings: bool, new_alias: bool,
) -> None:  # fmt: skip
    """Point an alias (default: production) at VERSION (a number, vN or latest) and commit.

    With --require-better the promotion is refused (exit 1) unless VERSION is better than the
    alias's current version on the metric, by its goal ([metrics.<name>] goal in config).
    A version `gitml check` has findings for (its model file unsafe, unscannable, missing or
    corrupt; trained with another scikit-learn, numpy or pandas than this environment has) is
    refused too (exit 1), unless --allow-findings. A new alias within two letters of an
    existing one (`prodution`) is refused as a typo (exit 1) unless --new-alias.

    \b
    Example:
      gitml model promote wine 3 --to staging
      gitml model promote wine 3 --require-better --metric accuracy -m "beats v2 on holdout"
    """
    moved = registry.promote(Repo.find(), name, version, alias, require_better=require_better,
                             metric=metric, reason=reason, allow_findings=allow_findings,
                             new_alias=new_alias)  # fmt: skip
    was = f" (was v{moved['previous']})" if moved["previous"] else ""
    click.echo(f"{name}@{alias} -> v{moved['version']}{was}")


@model.command()
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--to", "target", help="The version to go back to  [default: the one before]")
@click.option("--reason", "-m", help="Why; goes into the commit message and the history.")
def rollback(name: str, alias: str, target: str | None, reason: str | None) -> None:
    """Move an alias back to the version it pointed at before (or --to one) and commit.

    A plain `git revert` of the promotion commit does the same.

    \b
    Example:
      gitml model rollback wine
      gitml model rollback wine --alias staging --to 2 -m "v3 drifts on new data"
    """
    moved = registry.rollback(Repo.find(), name, alias, to=target, reason=reason)
    click.echo(f"{name}@{alias} -> v{moved['version']} (rolled back from v{moved['previous']})")


@model.command("list")
@FORMAT
def list_models(fmt: str) -> None:
    """List registered models: versions, latest, aliases.

    \b
    Example:
      gitml model list
      gitml model list --format json
    """
    rows = registry.summary(Repo.find())
    if not rows and fmt == "table":
        click.echo("no models registered yet; `gitml model register <run> <name>` adds one")
        return
    _print(rows, ["name", "versions", "latest", "aliases"], fmt)


@model.command()
@click.argument("spec", metavar="NAME[@VERSION|@ALIAS]")
@FORMAT
def show(spec: str, fmt: str) -> None:
    """Show a model's versions, or one version (name@production, name@3) in full.

    \b
    Example:
      gitml model show wine
      gitml model show wine@production --format json
    """
    repo = Repo.find()
    ref = ModelRef.parse(spec)
    doc = registry.load(repo, ref.name)
    if "@" in spec:
        version = store.to_json_types(registry.version_of(doc, ref.selector))
        if fmt == "json":
            click.echo(json.dumps(version, indent=2))
        else:
            click.echo(store.dumps_toml(version).decode(), nl=False)
        return
    aliases: dict[int, list[str]] = {}
    for alias, number in doc.get("aliases", {}).items():
        aliases.setdefault(number, []).append(alias)
    rows = [
        {"version": v["version"], "aliases": ", ".join(sorted(aliases.get(v["version"], []))),
         "run": v["run"], "path": v["path"], "md5": v["md5"][:12],
         "created_at": str(v["created_at"])[:19], "created_by": v.get("created_by"),
         **{f"metrics.{k}": m for k, m in v.get("metrics", {}).items()}}
        for v in doc["versions"]
    ]  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps(store.to_json_types(doc), indent=2))
        return
    metrics = sorted({k for r in rows for k in r if k.startswith("metrics.")})[:4]
    _print(rows, ["version", "aliases", "run", "path", "md5", "created_at", *metrics], fmt)


@model.command()
@click.argument("name")
@FORMAT
def history(name: str, fmt: str) -> None:
    """Every change to a model, from git log of its registry file: who, when, what.

    \b
    Example:
      gitml model history wine
    """
    rows = registry.history(Repo.find(), name)
    if not rows and fmt == "table":
        click.echo(f"model {name}: no change to its registry file is committed yet")
        return
    _print(rows, ["date", "author", "commit", "message"], fmt)


@click.command()
@click.argument("names", nargs=-1, metavar="[MODEL]...")
@FORMAT
def audit(names: tuple[str, ...], fmt: str) -> int:
    """Who changed which model alias, when, signed by whom, and whether policy allowed it.

    Walks the git history of the registry files. With [governance] protected_aliases and
    allowed_signers in .gitml/config.toml, a commit that moves a protected alias must carry a
    good SSH signature from an allowed signer (git verify-commit checks it). Exit 1 when a
    change breaks the policy; the pre-push hook refuses to push such a change.

    \b
    Example:
      gitml audit
      gitml audit wine --format json
    """
    changes = run_audit(Repo.find(), list(names) or None)
    table = rows(changes)
    _print(table, list(table[0]) if table else ["model"], fmt)
    broken = [c for c in changes if c.violation]
    if fmt == "table":
        click.echo(f"{len(broken)} change(s) break the policy" if broken
                   else f"{len(changes)} registry change(s), none against the policy")  # fmt: skip
    return 1 if broken else 0


COMMANDS = [model, audit]
