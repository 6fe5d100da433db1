"""The model registry: `.gitml/models/<name>.toml`, one file per model, every change a commit.

A version is a run's model artifact by md5, with the run's code commit and metrics at
registration and the model's signature. Aliases (`production`, `staging`, ...) point at
versions; every register, promote and rollback appends to the file's history and is its own
commit, so `git log` is the audit trail and `git revert` of a promotion is also a rollback.
`name@alias`, `name@3` and `name@latest` name a version anywhere a model is taken.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from gitml import git, store
from gitml.check.findings import refused
from gitml.check.guard import version_findings
from gitml.errors import GitmlError, PromotionRefusedError, UsageError
from gitml.query.api import resolve as resolve_run
from gitml.query.indexed import record_of
from gitml.query.output import is_number
from gitml.records import Artifact, ModelDoc, RegistryEvent, RunRecord, VersionRecord
from gitml.registry.keep import KEEP_IGNORE, keep_bytes, keep_path, materialize
from gitml.registry.names import refuse_misspelt
from gitml.registry.ref import ModelRef, Resolved
from gitml.repo import MODELS_DIR, Repo, registry_path
from gitml.repo import metric_goal as goal
from gitml.serving.signature import infer as infer_signature

T = TypeVar("T")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
MODEL_SUFFIXES = (".pkl", ".joblib", ".skops", ".pickle", ".onnx", ".pt", ".bin", ".model")


class ModelNotFoundError(GitmlError):
    """No registry file, version or alias by that name."""


def _exclusive(func: Callable[..., T]) -> Callable[..., T]:
    """One registry change at a time in a repository: read, change, write and commit as one."""

    @functools.wraps(func)
    def wrapper(repo: Repo, *args: Any, **kwargs: Any) -> T:
        with store.locked(repo.cache_dir / "registry.lock", timeout=120):
            return func(repo, *args, **kwargs)

    return wrapper


def names(repo: Repo) -> list[str]:
    """Every registered model."""
    folder = repo.gitml_dir / MODELS_DIR
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load(repo: Repo, name: str) -> ModelDoc:
    """The registry file of ``name``, validated (a half-done change is finished first)."""
    git.settle(repo.root)
    path = registry_path(repo, name)
    if not path.is_file():
        known = ", ".join(names(repo)) or "none yet"
        raise ModelNotFoundError(
            f"model {name!r}: not registered (registered: {known}); "
            f"`gitml model register <run> {name}` adds it"
        )
    return cast(ModelDoc, store.read_toml(path, kind="model"))  # checked against its schema


def version_of(doc: ModelDoc, selector: str) -> VersionRecord:
    """The version a selector names: a number (`3`, `v3`), `latest`, or an alias."""
    name = doc["name"]
    versions = {v["version"]: v for v in doc.get("versions", [])}
    if not versions:
        raise ModelNotFoundError(f"model {name!r}: has no versions")
    if selector == "latest":
        return versions[max(versions)]
    number = selector[1:] if selector[:1] == "v" and selector[1:].isdigit() else selector
    if number.isdigit():
        if int(number) not in versions:
            raise ModelNotFoundError(
                f"{name}@{selector}: no such version (versions: {_list(versions)})"
            )
        return versions[int(number)]
    aliases = doc.get("aliases", {})
    if selector not in aliases:
        shown = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
        raise ModelNotFoundError(f"{name}@{selector}: no such alias (aliases: {shown})")
    return versions[aliases[selector]]


def resolve(repo: Repo, ref: str | ModelRef) -> Resolved:
    """The version ``ref`` (``name@alias`` and friends) names now, read once and frozen."""
    ref = ModelRef.parse(ref)
    doc = load(repo, ref.name)
    return Resolved.of(ref, doc, version_of(doc, ref.selector))


@_exclusive
def register(
    repo: Repo,
    run_ref: str,
    name: str,
    *,
    path: str | None = None,
    description: str | None = None,
    commit: bool = True,
) -> dict[str, Any]:
    """Add the model a run produced as the next version of ``name``; returns the version."""
    file = registry_path(repo, name)
    if commit:
        _committed(repo, name)
    run = resolve_run(repo, run_ref)
    record = record_of(repo, run)
    if record.get("status") != "finished":
        raise UsageError("run", f"{run.run_id} is {record.get('status')}; register a finished run")
    if run.landed is None:
        raise UsageError(
            "run",
            f"{run.run_id} is not committed yet; `git add -A && git commit` it first",
        )
    artifact_path, artifact = _model_output(record, path)
    doc = cast(ModelDoc, store.read_toml(file, kind="model")) if file.is_file() else _new(name)
    for existing in doc["versions"]:
        if existing["md5"] == artifact["md5"] and existing["run"] == run.run_id:
            raise UsageError(
                "run", f"{run.run_id}'s {artifact_path} is {name} v{existing['version']} already"
            )
    number = max((v["version"] for v in doc["versions"]), default=0) + 1
    now, who = store.utcnow(), git.identity(repo.root)
    version: VersionRecord = {
        "version": number,
        "run": run.run_id,
        "path": artifact_path,
        "md5": artifact["md5"],
        "size": artifact["size"],
        "format": artifact.get("format") or format_of(artifact_path),
        "commit": run.landed,
        "metrics": dict(record.get("metrics", {})),
        "params": dict(record.get("params", {})),
        "created_at": now,
        "created_by": who,
    }
    if code_commit := record.get("code", {}).get("commit"):
        version["code_commit"] = code_commit
    if description:
        version["description"] = description
    if signature := infer_signature(repo, record, artifact_path, artifact):
        version["signature"] = signature
    doc["versions"].append(version)
    doc["history"].append({"at": now, "by": who, "action": "register", "version": number})
    _save(repo, file, doc, f"model {name}: register v{number} from run {run.run_id}", commit)
    return store.to_json_types(version)


@_exclusive
def promote(
    repo: Repo,
    name: str,
    selector: str,
    alias: str,
    *,
    require_better: bool = False,
    metric: str | None = None,
    reason: str | None = None,
    commit: bool = True,
    allow_findings: bool = False,
    new_alias: bool = False,
) -> dict[str, Any]:
    """Point ``alias`` at a version; with ``require_better`` only if it beats the current one.

    A version with `gitml check` findings (its model file unsafe, unscannable, missing or
    corrupt; its training environment unlike this one) is refused unless ``allow_findings``;
    then the findings are kept in the history event.
    """
    if not ALIAS_RE.match(alias) or alias == "latest":
        raise UsageError("--to", f"{alias!r}: an alias is lower-case letters, digits, '_' or '-' "
                                 "and not 'latest'")  # fmt: skip
    file = registry_path(repo, name)
    if commit:
        _committed(repo, name)
    doc = load(repo, name)
    version = version_of(doc, selector)
    previous = doc.get("aliases", {}).get(alias)
    if previous is None and not new_alias:
        refuse_misspelt(name, alias, doc.get("aliases", {}))
    if previous == version["version"]:
        raise UsageError("version", f"{name}@{alias} is v{previous} already")
    if require_better and previous is not None:
        _gate(repo, doc, version, version_of(doc, str(previous)), metric)

    findings = version_findings(repo, doc, version)
    if findings and not allow_findings:
        what = f"model {name}: v{version['version']} not promoted"
        raise PromotionRefusedError(refused(findings, what, "--allow-findings"))
    message = f"model {name}: promote v{version['version']} to {alias}"
    message += f" (was v{previous})" if previous is not None else ""
    allowed = [f"{f.rule}: {f.detail or f.subject}" for f in findings]
    _move(repo, file, doc, alias=alias, version=version["version"], previous=previous,
          action="promote", reason=reason, message=message, commit=commit,
          allowed_findings=allowed)  # fmt: skip
    return {"alias": alias, "version": version["version"], "previous": previous}


@_exclusive
def rollback(
    repo: Repo,
    name: str,
    alias: str = "production",
    *,
    to: str | None = None,
    reason: str | None = None,
    commit: bool = True,
) -> dict[str, Any]:
    """Point ``alias`` back at ``to``, or at the version it pointed at before the current one."""
    file = registry_path(repo, name)
    if commit:
        _committed(repo, name)
    doc = load(repo, name)
    current = doc.get("aliases", {}).get(alias)
    if current is None:
        raise ModelNotFoundError(f"{name}@{alias}: no such alias; nothing to roll back")
    target = version_of(doc, to)["version"] if to is not None else _before(doc, alias, current)
    if target is None:
        raise UsageError(
            "--to", f"{name}@{alias} never pointed at another version; name one with --to"
        )
    if target == current:
        raise UsageError("--to", f"{name}@{alias} is v{current} already")
    message = f"model {name}: roll {alias} back to v{target} (from v{current})"
    _move(repo, file, doc, alias=alias, version=target, previous=current, action="rollback",
          reason=reason, message=message, commit=commit)  # fmt: skip
    return {"alias": alias, "version": target, "previous": current}


def history(repo: Repo, name: str) -> list[dict[str, Any]]:
    """Every commit that changed the registry file: who, when, what (newest first)."""
    file = registry_path(repo, name)
    load(repo, name)
    rel = file.relative_to(repo.root).as_posix()
    out = git.run_git(repo.root, "log", "--format=%H%x1f%an <%ae>%x1f%aI%x1f%s", "--", rel)
    rows = []
    for line in out.splitlines():
        commit, author, date, subject = line.split("\x1f", 3)
        rows.append({"commit": commit, "author": author, "date": date, "message": subject})
    return rows


def summary(repo: Repo) -> list[dict[str, Any]]:
    """One row per model: versions, latest, aliases."""
    rows = []
    for name in names(repo):
        doc = load(repo, name)
        latest = max((v["version"] for v in doc["versions"]), default=None)
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(doc.get("aliases", {}).items()))
        rows.append({"name": name, "versions": len(doc["versions"]), "latest": latest,
                     "aliases": aliases})  # fmt: skip
    return rows


def _new(name: str) -> ModelDoc:
    return {"schema_version": store.SCHEMA_VERSION, "name": name, "versions": [],
            "aliases": {}, "history": []}  # fmt: skip


def _save(repo: Repo, file: Path, doc: ModelDoc, message: str, commit: bool) -> None:
    """Commit the new registry file, then write it (`git.commit_file`): all or nothing."""
    keep = keep_bytes(repo, {file: doc})
    if not commit:
        store.write_toml(file, doc, kind="model")
        if keep:
            store.atomic_write(keep_path(repo), keep)
            materialize(repo, keep)
        return
    files = {repo.relpath(file): store.toml_bytes(doc, kind="model", source=str(file))}
    if keep:  # in the same commit: `dvc gc` keeps what the registry names (`registry.keep`)
        files[repo.relpath(keep_path(repo))] = keep
        ignore = repo.gitml_dir / ".gitignore"
        text = ignore.read_text() if ignore.is_file() else ""
        if KEEP_IGNORE not in text.splitlines():
            files[repo.relpath(ignore)] = (
                (text.rstrip("\n") + f"\n{KEEP_IGNORE}\n").lstrip().encode()
            )
    git.commit_files(repo.root, files, message)
    if keep:
        materialize(repo, keep)


def _committed(repo: Repo, name: str) -> None:
    """Before a change: finish a half-done one, and refuse to drop an uncommitted user edit.

    A change is committed from HEAD's registry file, so an edit only in the working tree
    would be silently overwritten.
    """
    git.settle(repo.root)
    rel = registry_path(repo, name).relative_to(repo.root).as_posix()
    if git.run_git(repo.root, "status", "--porcelain", "--", rel).strip():
        raise UsageError(
            rel, "has uncommitted changes; commit or discard them (`git checkout -- "
                 f"{rel}`) before changing the registry"
        )  # fmt: skip


def _move(
    repo: Repo,
    file: Path,
    doc: ModelDoc,
    *,
    alias: str,
    version: int,
    previous: int | None,
    action: str,
    reason: str | None,
    message: str,
    commit: bool,
    allowed_findings: list[str] | None = None,
) -> None:
    doc.setdefault("aliases", {})[alias] = version
    event: RegistryEvent = {"at": store.utcnow(), "by": git.identity(repo.root),
                            "action": action, "alias": alias, "version": version}  # fmt: skip
    if previous is not None:
        event["previous"] = previous
    if reason:
        event["reason"] = reason
    if allowed_findings:
        event["allowed_findings"] = allowed_findings
    doc.setdefault("history", []).append(event)
    _save(repo, file, doc, message + (f": {reason}" if reason else ""), commit)


def _before(doc: ModelDoc, alias: str, current: int) -> int | None:
    """The version ``alias`` pointed at before it last moved to ``current``."""
    for event in reversed(doc.get("history", [])):
        if event.get("alias") == alias and event.get("version") == current:
            return event.get("previous")
    return None


def _gate(
    repo: Repo, doc: ModelDoc, new: VersionRecord, old: VersionRecord, metric: str | None
) -> None:

    metric = metric or repo.config.get("registry", {}).get("metric")
    if not metric:
        raise UsageError(
            "--metric", "--require-better needs a metric: pass --metric or set [registry] metric"
        )
    direction = goal(repo, metric)
    if direction is None:
        raise UsageError("--metric", f"{metric}: set [metrics.{metric}] goal to maximize/minimize")
    a, b = old.get("metrics", {}).get(metric), new.get("metrics", {}).get(metric)
    name = doc["name"]
    for value, version in ((a, old), (b, new)):
        if not is_number(value):
            raise UsageError("--metric", f"{name} v{version['version']} has no metric {metric!r}")
    better = b > a if direction == "maximize" else b < a  # type: ignore[operator]
    if not better:
        raise PromotionRefusedError(
            f"model {name}: v{new['version']} is not better than v{old['version']} on {metric} "
            f"({b} vs {a}, goal {direction}); not promoted"
        )


def _model_output(record: RunRecord, path: str | None) -> tuple[str, Artifact]:
    outputs = record.get("outputs", {})
    if path is not None:
        path = Path(path).as_posix()
        if path not in outputs:
            raise UsageError("--path", f"{path}: not an output of run {record['id']} "
                                       f"(outputs: {', '.join(outputs) or 'none'})")  # fmt: skip
        return path, outputs[path]
    models = [p for p, ref in outputs.items() if "format" in ref] or [
        p for p in outputs if p.endswith(MODEL_SUFFIXES)
    ]
    if len(models) == 1:
        return models[0], outputs[models[0]]
    if len(outputs) == 1:
        (only,) = outputs
        return only, outputs[only]
    candidates = models or list(outputs)
    raise UsageError("--path", f"run {record['id']} has {len(candidates)} candidate outputs "
                               f"({', '.join(candidates) or 'none'}); pick one")  # fmt: skip


def format_of(path: str) -> str:
    """A model file's format when its record does not say: skops by its suffix, else joblib."""
    return "skops" if path.lower().endswith(".skops") else "joblib"


def _list(versions: dict[int, Any]) -> str:
    return ", ".join(f"v{n}" for n in sorted(versions))
