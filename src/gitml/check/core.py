"""`gitml check`: every gitml file, artifact and model file of a revision, checked as CI would.

What is checked, for the working tree, one revision (`--rev`) or every version in the history:

- schema: every run, step-metrics file, registry file, config, metrics summary, monitor report
  and DVC pointer parses and matches its JSON Schema; records agree with each other (an alias
  names a version, a run's code.patch matches its recorded hash, a registered run exists);
- artifacts: every object a run, registry version, `.dvc` file or `dvc.lock` references is in
  the DVC cache or the remote, and cached bytes hash to their md5 (re-read only when the file
  changed since the last check: `check.hashes`);
- model files: every global a pickle or joblib file imports judged against an allow-list
  (`check.allowlist`), skops files for untrusted types (`check.pickles`), without loading them;
- environment: each registered model's training scikit-learn, numpy and pandas against the
  serving environment's, by major.minor;
- secrets: param and tag values that look like credentials (`gitml.secrets`).

This module walks the revision and gathers what the files say; the rest is in its own module:
the finding model (`check.findings`), artifacts (`check.artifacts`), model files
(`check.scan`), environments (`check.environment`), where a finding points (`check.where`), and
the guard promote and serve ask (`check.guard`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from gitml import __version__, git, store
from gitml.check import files
from gitml.check.artifacts import artifact_findings
from gitml.check.environment import DEFAULT_ENV_PACKAGES, serving_versions, version_env
from gitml.check.findings import (
    LEVELS,
    Finding,
    Ref,
    Report,
    accepted,
    once,
)
from gitml.check.hashes import HashCache
from gitml.check.scan import is_model, model_findings
from gitml.check.where import line_of, on_disk, with_commits
from gitml.errors import GitmlError
from gitml.query.api import collect
from gitml.query.index_sql import BY_ID
from gitml.query.indexed import record_of
from gitml.records import ModelDoc
from gitml.repo import Repo
from gitml.secrets import masked, secret_kind

CHECKS = ("schema", "artifacts", "models", "environment", "secrets")


@dataclass
class Seen:
    """What the files of the checked revision say, gathered in one pass."""

    allowed: tuple[str, ...] | None = None  # secret-looking names allowed; None: no secrets check
    runs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # env and code
    registry: list[tuple[files.Entry, dict[str, Any]]] = field(default_factory=list)
    patches: dict[str, str] = field(default_factory=dict)  # run folder -> the patch's sha256
    run_folders: dict[str, str] = field(default_factory=dict)  # run folder -> a file in it
    recorded: set[str] = field(default_factory=set)  # run folders with a run.toml, valid or not
    refs: list[Ref] = field(default_factory=list)
    secrets: list[Finding] = field(default_factory=list)
    files: int = 0

    def value(self, path: str, subject: str, key: str, value: Any, blob: str | None) -> None:
        """Judge one param or tag value now (keeping every value of 100,000 runs costs memory)."""
        if self.allowed is None:
            return
        kind = secret_kind(key.partition(".")[2], value, allowed=self.allowed)
        if kind is not None:
            self.secrets.append(Finding(
                rule="secret", file=path, subject=subject, detail=key, blob=blob,
                message=f"{subject}: {key} = {masked(value)!r} looks like a credential ({kind}); "
                        "revoke it, and rewrite or redact the record"))  # fmt: skip


def check(
    repo: Repo,
    *,
    rev: str | None = None,
    all_history: bool = False,
    checks: Iterable[str] = CHECKS,
    remote: str | None = None,
    serving_env: dict[str, str] | None = None,
    fetch: bool = True,
) -> Report:
    """Run the checks over the working tree, ``rev``, or every version in the history."""
    wanted = set(checks)
    if all_history:
        git.require_full_history(repo.root, "gitml check --all-history")
        target, entries = "all history", files.in_history(repo)
    elif rev is not None:
        commit = files.resolve(repo, rev)
        target, entries = commit, files.at_revision(repo, commit)
    else:
        target, entries = "working tree", files.working_tree(repo)
    report = Report(target)
    allowed = repo.tracking_setting("allow_params") or []
    seen = Seen(allowed=tuple(allowed) if "secrets" in wanted else None)
    summary = repo.tracking_setting("summary_file")
    settings = repo.config.get("check", {})
    cache = HashCache(repo.cache_dir)
    try:
        reader = _Reader(cache, summary, seen)
        for entry in entries:
            found = reader.read(entry)
            report.findings += found if "schema" in wanted else []
        report.counts.update(files=seen.files, runs=len(seen.runs), parsed=reader.parsed)
        if "schema" in wanted:
            report.findings += _integrity(repo, seen)
        bad: set[str] = set()
        if "artifacts" in wanted or "models" in wanted:
            found, bad = artifact_findings(repo, seen.refs, cache, remote, report.counts,
                                    verify="artifacts" in wanted)  # fmt: skip
            report.findings += found
        if "models" in wanted:
            models = [r for r in seen.refs if is_model(r) and r.md5 not in bad]
            report.findings += model_findings(repo, models, cache=cache, remote=remote,
                                              fetch=fetch, counts=report.counts,
                                              verified=True)  # fmt: skip
        if "environment" in wanted:
            current = _current_registry(repo, seen) if all_history else seen.registry
            serving = serving_env if serving_env is not None else serving_versions(repo)
            report.findings += _environment(
                repo, current, seen, serving, settings.get("env_packages", DEFAULT_ENV_PACKAGES)
            )
        if "secrets" in wanted:
            report.findings += _secrets(repo, seen)
    finally:
        if wanted & {"artifacts", "models"}:
            report.counts.update(hashed=cache.read, hash_cache_hits=cache.reused)
        cache.close()
    if all_history:
        report.findings = with_commits(repo, once(report.findings))
    report.findings = accepted(repo, report.findings)
    report.findings.sort(key=lambda f: (LEVELS.index(f.level), f.rule, f.file, f.subject))
    return report


# -- reading the files --------------------------------------------------------------------------


class _Reader:
    """Parses each file once.

    A file whose bytes were parsed before (same path, same git blob id, same schemas) is taken
    from the hash cache, so an unchanged repository is not parsed again.
    """

    def __init__(self, cache: HashCache, summary: str, seen: Seen) -> None:
        self.cache, self.summary, self.seen = cache, summary, seen
        self.version = _parse_version()
        self.parsed = 0  # files parsed now (the others came from the cache)

    def read(self, entry: files.Entry) -> list[Finding]:
        kind = files.kind_of(entry.path, self.summary)
        if kind is None:
            return []
        self.seen.files += 1
        if kind in ("run", "metrics-parquet", "patch"):
            folder = str(PurePosixPath(entry.path).parent)
            self.seen.run_folders.setdefault(folder, entry.path)
            if kind == "run":
                self.seen.recorded.add(folder)
        blob = entry.blob or git.blob_id(entry.data)
        key = f"{self.version}\0{entry.path}\0{blob}"
        kept = self.cache.parsed(key)
        if kept is None:
            kept = self._parse(kind, entry)
            self.cache.keep_parsed(key, *kept)
            self.parsed += 1
        doc, error = kept
        if error is not None:
            return [Finding(rule="schema", file=entry.path, message=error, blob=entry.blob)]
        _gather(kind, entry, doc, self.seen)
        return []

    @staticmethod
    def _parse(kind: str, entry: files.Entry) -> tuple[Any, str | None]:

        try:
            doc = files.parse(kind, entry.path, entry.data)
        except GitmlError as exc:
            return None, _without(str(exc), entry.path)
        if kind == "patch":
            return hashlib.sha256(entry.data).hexdigest(), None
        if kind in ("metrics-parquet", "parquet"):
            return True, None
        return store.to_json_types(doc), None


def _parse_version() -> str:
    """What a cached parse depends on: gitml's version and the schemas' bytes."""
    digest = hashlib.sha1(__version__.encode(), usedforsecurity=False)
    for name in sorted(store.SCHEMA_FILES.values()):
        digest.update((store.schema_dir() / name).read_bytes())
    return digest.hexdigest()[:16]


def _gather(kind: str, entry: files.Entry, doc: Any, seen: Seen) -> None:
    """Note what one parsed file says: runs, registry versions, references, param values."""
    folder = str(PurePosixPath(entry.path).parent)
    if kind == "run":
        seen.runs[doc["id"]] = (
            entry.path,
            {"env": doc.get("env", {}), "code": doc.get("code", {})},
        )
        _run_refs(entry, doc, seen)
    elif kind == "patch":
        seen.patches[folder] = doc
    elif kind == "model":
        seen.registry.append((entry, doc))
        seen.refs += registry_refs(entry.path, doc, entry.blob)
        for v in doc["versions"]:
            for key, value in v.get("params", {}).items():
                seen.value(entry.path, f"{doc['name']} v{v['version']}", f"params.{key}", value,
                           entry.blob)  # fmt: skip
    elif kind in ("dvc", "dvc-lock"):
        for path, ref in doc.items():
            seen.refs.append(Ref(ref["md5"], ref["size"], entry.path, f"outs {path}",
                                 PurePosixPath(path).name, "", entry.blob))  # fmt: skip
    elif kind == "metrics-summary":
        for key, value in doc.get("params", {}).items():
            seen.value(entry.path, f"run {doc.get('run', '')}", f"params.{key}", value,
                       entry.blob)  # fmt: skip


def registry_refs(path: str, doc: ModelDoc, blob: str | None = None) -> list[Ref]:
    """The model file of every version in the registry file ``path``."""
    return [Ref(v["md5"], v["size"], path, f"{doc['name']} v{v['version']}",
                PurePosixPath(v["path"]).name, v.get("format", "joblib"), blob, registry=True)
            for v in doc["versions"]]  # fmt: skip


def _run_refs(entry: files.Entry, doc: dict[str, Any], seen: Seen) -> None:
    run = f"run {doc['id']}"
    for section in ("inputs", "outputs"):
        for path, ref in doc.get(section, {}).items():
            seen.refs.append(Ref(ref["md5"], ref["size"], entry.path, f"{run} {section[:-1]} "
                                 f"{path}", PurePosixPath(path).name, ref.get("format", ""),
                                 entry.blob))  # fmt: skip
    for ns in ("params", "tags"):
        for key, value in doc.get(ns, {}).items():
            seen.value(entry.path, run, f"{ns}.{key}", value, entry.blob)


def _without(message: str, path: str) -> str:
    return message.removeprefix(f"{path}: ")


def _integrity(repo: Repo, seen: Seen) -> list[Finding]:
    found = []
    for folder, path in sorted(seen.run_folders.items()):
        if folder not in seen.recorded:
            message = (
                f"{folder}: a run folder without a run.toml (written or imported "
                "half-way?); restore its record or remove the folder"
            )
            found.append(
                Finding(
                    rule="record-integrity",
                    file=path,
                    detail="run.toml",
                    subject=f"run {PurePosixPath(folder).name}",
                    message=message,
                )
            )
    for run_id, (path, doc) in seen.runs.items():
        code = doc.get("code", {})
        if "patch" not in code:
            continue
        folder = str(PurePosixPath(path).parent)
        patch = seen.patches.get(folder)
        subject = f"run {run_id}"
        if patch is None:
            found.append(Finding(rule="record-integrity", file=path, subject=subject,
                                 detail="code.patch", line=line_of(repo, path, "patch"),
                                 message=f"{subject}: its code.patch is missing, so "
                                         "`gitml reproduce` cannot rebuild its code"))  # fmt: skip
        elif patch != code.get("patch_sha256"):
            found.append(Finding(rule="record-integrity", file=f"{folder}/code.patch",
                                 subject=subject, detail="patch_sha256",
                                 message=f"{subject}: code.patch does not match the sha256 its "
                                         "run.toml recorded (edited after the run)"))  # fmt: skip
    return found


# -- artifacts ----------------------------------------------------------------------------------


# -- model files --------------------------------------------------------------------------------


# -- environment --------------------------------------------------------------------------------


def _current_registry(
    repo: Repo, seen: Seen
) -> list[tuple[files.Entry, dict[str, Any]]]:  # fmt: skip
    """With --all-history, the registry files as HEAD has them (old ones were served then)."""
    try:
        head = files.tree_blobs(repo, "HEAD")
    except GitmlError:
        return []
    return [(e, doc) for e, doc in seen.registry if e.blob in head]


def _environment(
    repo: Repo,
    registry: list[tuple[files.Entry, dict[str, Any]]],
    seen: Seen,
    serving: dict[str, str],
    packages: Iterable[str],
) -> list[Finding]:
    found: list[Finding] = []
    for entry, doc in registry:
        versions = {v["version"]: v for v in doc["versions"]}
        if not versions:
            continue
        wanted = {max(versions), *doc.get("aliases", {}).values()}
        for number in sorted(n for n in wanted if n in versions):
            version, subject = versions[number], f"{doc['name']} v{number}"
            record = run_record(repo, version["run"], seen)
            if record is None:
                lost = (f"its run {version['run']} is in no branch's history, so its lineage "
                        "and environment are lost")  # fmt: skip
                found.append(Finding(rule="record-integrity", file=entry.path, blob=entry.blob,
                                     subject=subject, detail=version["run"],
                                     message=f"{subject}: {lost}"))  # fmt: skip
                continue
            found += version_env(repo, entry.path, subject, version, record,
                                  against=(serving, packages))  # fmt: skip
    return found


def run_record(repo: Repo, run_id: str, seen: Seen) -> Mapping[str, Any] | None:
    """The record of run ``run_id``, as read during this check or looked up (never repaired)."""
    if run_id in seen.runs:
        return seen.runs[run_id][1]

    for run in collect(repo, BY_ID, run_id, repair=False):  # a check writes nothing
        try:
            return record_of(repo, run)
        except GitmlError:
            return None
    return None


# -- secrets ------------------------------------------------------------------------------------


def _secrets(repo: Repo, seen: Seen) -> list[Finding]:
    """The secrets found while reading, at their lines in working-tree files."""
    return [replace(f, line=line_of(repo, f.file, f.detail.partition(".")[2]))
            if on_disk(repo, f.file, f.blob) else f for f in seen.secrets]  # fmt: skip


# -- where ----------------------------------------------------------------------------------------
