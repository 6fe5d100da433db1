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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from gitml import git
from gitml.check import files
from gitml.check.allowlist import is_trusted
from gitml.check.hashes import HashCache
from gitml.check.pickles import PICKLE_FORMATS, Issue, scanner_versions
from gitml.errors import GitmlError
from gitml.repo import Repo
from gitml.secrets import masked, secret_kind

LEVELS = ("error", "warning", "note")
# rule -> (level, what it means): the SARIF rules and docs/guide/check.md's table come from here
RULES: dict[str, tuple[str, str]] = {
    "schema": ("error", "A gitml or DVC file does not parse or does not match its JSON Schema."),
    "record-integrity": ("error", "Records disagree: an alias names no version, a code.patch "
                                  "does not match its recorded hash, a registered run is gone."),
    "artifact-missing": ("error", "An artifact a record references is in neither the DVC "
                                  "cache nor the DVC remote."),
    "artifact-corrupt": ("error", "A DVC cache object's bytes do not hash to the md5 recorded "
                                  "for them."),
    "unsafe-pickle": ("error", "Loading the model file would import a global outside the "
                               "allow-list of what scikit-learn, numpy, scipy and pandas "
                               "models import, and not in [check] trusted_types."),
    "unscannable-model": ("error", "The model file cannot be read statically, so it cannot be "
                                   "shown safe to load."),
    "untrusted-skops-type": ("warning", "A skops model needs a type that is neither trusted by "
                                        "skops nor listed in [check] trusted_types."),
    "environment-mismatch": ("warning", "A registered model was trained with another "
                                        "major.minor of a package that changes unpickled "
                                        "models (scikit-learn, numpy, pandas) than serving has."),
    "environment-unknown": ("note", "A registered model's run recorded no package versions, "
                                    "so its training environment cannot be compared."),
    "secret": ("error", "A param or tag value looks like a credential; it is in git history "
                        "once committed."),
}  # fmt: skip
DEFAULT_ENV_PACKAGES = ("scikit-learn", "numpy", "pandas")
# Files named so are scanned as models even when logged as plain files (.bin and .ckpt are not:
# too many other things are called that).
MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib", ".skops", ".pt", ".pth")
CHECKS = ("schema", "artifacts", "models", "environment", "secrets")


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem: which rule, in which repository file, about what, in one line."""

    rule: str
    file: str  # the repository file that holds or references the problem
    message: str
    subject: str = ""  # what inside the file: "wine v2", "run 20261123T...", "outs data.csv"
    detail: str = ""  # the offending global, md5, field or package
    line: int | None = None
    commit: str | None = None  # with --all-history: a commit that wrote the file
    blob: str | None = None
    suppressed: str | None = None  # the reason, when `[check] ignore` accepts it

    @property
    def level(self) -> str:
        """error, warning or note (from its rule)."""
        return RULES[self.rule][0]

    @property
    def fails(self) -> bool:
        """Whether it makes the check fail: errors and warnings the team did not accept."""
        return self.level != "note" and self.suppressed is None

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object."""
        out = {"rule": self.rule, "level": self.level, "file": self.file, "line": self.line,
               "subject": self.subject, "detail": self.detail, "message": self.message,
               "commit": self.commit, "suppressed": self.suppressed}  # fmt: skip
        return {k: v for k, v in out.items() if v not in (None, "")}


@dataclass
class Report:
    """What a check found and what it looked at."""

    target: str  # "working tree", a commit id, or "all history"
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when a finding makes the check fail (exit 1)."""
        return any(f.fails for f in self.findings)


@dataclass(frozen=True)
class Ref:
    """A record's reference to an artifact: which file names it, for what, by which md5."""

    md5: str
    size: int
    file: str
    subject: str
    name: str = ""  # the artifact's file name (model files: how it is read)
    fmt: str = ""  # a model's format, when the record says
    blob: str | None = None
    registry: bool = False  # a registry version (named first when one object has many refs)


@dataclass
class _Seen:
    """What the files of the checked revision say, gathered in one pass."""

    allowed: tuple[str, ...] | None = None  # secret-looking names allowed; None: no secrets check
    runs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # env and code
    registry: list[tuple[files.Entry, dict[str, Any]]] = field(default_factory=list)
    patches: dict[str, str] = field(default_factory=dict)  # run folder -> the patch's sha256
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
    seen = _Seen(allowed=tuple(allowed) if "secrets" in wanted else None)
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
            found, bad = _artifacts(repo, seen.refs, cache, remote, report.counts,
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
        report.findings = _with_commits(repo, _once(report.findings))
    report.findings = accepted(repo, report.findings)
    report.findings.sort(key=lambda f: (LEVELS.index(f.level), f.rule, f.file, f.subject))
    return report


# -- reading the files --------------------------------------------------------------------------


class _Reader:
    """Parses each file once.

    A file whose bytes were parsed before (same path, same git blob id, same schemas) is taken
    from the hash cache, so an unchanged repository is not parsed again.
    """

    def __init__(self, cache: HashCache, summary: str, seen: _Seen) -> None:
        self.cache, self.summary, self.seen = cache, summary, seen
        self.version = _parse_version()
        self.parsed = 0  # files parsed now (the others came from the cache)

    def read(self, entry: files.Entry) -> list[Finding]:
        kind = files.kind_of(entry.path, self.summary)
        if kind is None:
            return []
        self.seen.files += 1
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
        from gitml import store

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
    from gitml import __version__, store

    digest = hashlib.sha1(__version__.encode(), usedforsecurity=False)
    for name in sorted(store.SCHEMA_FILES.values()):
        digest.update((store.schema_dir() / name).read_bytes())
    return digest.hexdigest()[:16]


def _gather(kind: str, entry: files.Entry, doc: Any, seen: _Seen) -> None:
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


def registry_refs(path: str, doc: dict[str, Any], blob: str | None = None) -> list[Ref]:
    """The model file of every version in the registry file ``path``."""
    return [Ref(v["md5"], v["size"], path, f"{doc['name']} v{v['version']}",
                PurePosixPath(v["path"]).name, v.get("format", "joblib"), blob, registry=True)
            for v in doc["versions"]]  # fmt: skip


def _run_refs(entry: files.Entry, doc: dict[str, Any], seen: _Seen) -> None:
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


def _integrity(repo: Repo, seen: _Seen) -> list[Finding]:
    found = []
    for run_id, (path, doc) in seen.runs.items():
        code = doc.get("code", {})
        if "patch" not in code:
            continue
        folder = str(PurePosixPath(path).parent)
        patch = seen.patches.get(folder)
        subject = f"run {run_id}"
        if patch is None:
            found.append(Finding(rule="record-integrity", file=path, subject=subject,
                                 detail="code.patch", line=_line_of(repo, path, "patch"),
                                 message=f"{subject}: its code.patch is missing, so "
                                         "`gitml reproduce` cannot rebuild its code"))  # fmt: skip
        elif patch != code.get("patch_sha256"):
            found.append(Finding(rule="record-integrity", file=f"{folder}/code.patch",
                                 subject=subject, detail="patch_sha256",
                                 message=f"{subject}: code.patch does not match the sha256 its "
                                         "run.toml recorded (edited after the run)"))  # fmt: skip
    return found


# -- artifacts ----------------------------------------------------------------------------------


def _artifacts(
    repo: Repo, refs: list[Ref], cache: HashCache, remote: str | None, counts: dict[str, int], *,
    verify: bool,
) -> tuple[list[Finding], set[str]]:  # fmt: skip
    """Findings for missing and corrupt objects, and the md5s whose bytes are bad."""
    from gitml.data import cache_path

    by_md5: dict[str, list[Ref]] = {}
    for ref in refs:
        by_md5.setdefault(ref.md5, []).append(ref)
    for md5 in [m for m in by_md5 if m.endswith(".dir")]:  # a folder: its files too
        manifest = cache_path(repo.root, md5)
        if manifest.is_file():
            for part in _dir_parts(manifest, by_md5[md5][0]):
                by_md5.setdefault(part.md5, []).append(part)
    found: list[Finding] = []
    bad: set[str] = set()
    absent: list[str] = []
    for md5, uses in _progress(sorted(by_md5.items()), "verifying objects"):
        path = cache_path(repo.root, md5)
        if not path.is_file():
            absent.append(md5)
            continue
        actual = cache.md5(path)
        if actual != md5.removesuffix(".dir"):
            bad.add(md5)
            if verify:
                found.append(_about(repo, uses, "artifact-corrupt", md5,
                                    f"DVC cache object {md5} is corrupted: its bytes hash to "
                                    f"{actual}; delete it and `gitml pull` it from the "
                                    "remote"))  # fmt: skip
    in_remote = _in_remote(repo, absent, remote) if absent else set()
    for md5 in absent:
        if md5 not in in_remote:
            bad.add(md5)
            if verify and by_md5.get(md5):
                found.append(_about(repo, by_md5[md5], "artifact-missing", md5,
                                    f"object {md5} is in neither the DVC cache nor the remote; "
                                    "push it from a clone that has it, or re-run"))  # fmt: skip
    counts.update(artifacts=len(by_md5), remote_only=len(in_remote))
    return found, bad


def _progress(items: list[Any], what: str) -> Any:
    """``items``, with a progress bar on a terminal when there are many."""
    import sys

    if len(items) < 100 or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"gitml check: {what}", unit="object", leave=False)


def _dir_parts(manifest: Path, ref: Ref) -> Iterator[Ref]:
    import json

    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and isinstance(e.get("md5"), str):
            yield replace(ref, md5=e["md5"], size=int(e.get("size") or 0),
                          subject=f"{ref.subject}/{e.get('relpath', '')}")  # fmt: skip


def _in_remote(repo: Repo, md5s: list[str], remote: str | None) -> set[str]:
    from gitml.data import read_dvc_option

    if remote is None and read_dvc_option(repo.root, "core", "remote") is None:
        return set()  # no remote to look in: what is not cached is missing
    from gitml.data.transfer import in_remote

    return in_remote(repo.root, md5s, remote=remote)


def _about(repo: Repo, uses: list[Ref], rule: str, md5: str, message: str) -> Finding:
    """One finding for an object, named by its first (registry first) reference."""
    first = _first(uses)
    more = f" (and {len(uses) - 1} more reference(s))" if len(uses) > 1 else ""
    return Finding(rule=rule, file=first.file, subject=first.subject, detail=md5,
                   message=f"{first.subject}: {message}{more}", blob=first.blob,
                   line=_line_at(repo, first, md5.removesuffix(".dir")))  # fmt: skip


def _first(uses: list[Ref]) -> Ref:
    return sorted(uses, key=lambda r: (not r.registry, r.file, r.subject))[0]


def _line_at(repo: Repo, ref: Ref, needle: str) -> int | None:
    return _line_of(repo, ref.file, needle) if _on_disk(repo, ref.file, ref.blob) else None


def _on_disk(repo: Repo, path: str, blob: str | None) -> bool:
    """Whether the working-tree file at ``path`` is this version of it (lines can be named)."""
    if blob is None:
        return True
    try:
        return git.blob_id((repo.root / path).read_bytes()) == blob
    except OSError:
        return False


# -- model files --------------------------------------------------------------------------------


def is_model(ref: Ref) -> bool:
    """A model file: logged with a format, registered, or named like one."""
    return bool(ref.fmt) or ref.registry or ref.name.endswith(MODEL_SUFFIXES)


def model_findings(
    repo: Repo,
    refs: list[Ref],
    *,
    cache: HashCache | None = None,
    remote: str | None = None,
    fetch: bool = True,
    counts: dict[str, int] | None = None,
    verified: bool = False,
) -> list[Finding]:
    """Scan each model file ``refs`` name (once per md5) and report its issues.

    Bytes that do not hash to their md5 are not scanned (the artifact check reports them);
    ``verified`` says the caller checked the hashes already. skops types the team trusts
    (`[check] trusted_types`) are no finding.
    """
    from gitml.data import cache_path

    by_md5: dict[str, list[Ref]] = {}
    for ref in refs:
        if ref.fmt in ("", *PICKLE_FORMATS, "skops") and not ref.md5.endswith(".dir"):
            by_md5.setdefault(ref.md5, []).append(ref)
    own = cache is None
    cache = cache or HashCache(repo.cache_dir)
    missing = [m for m in by_md5 if not cache_path(repo.root, m).is_file()]
    if missing and fetch:
        from gitml.data.transfer import fetch as fetch_objects

        fetch_objects(repo.root, missing, remote=remote)
    trusted = trusted_types(repo)
    scanner, found, scanned = scanner_versions(), [], 0
    try:
        for md5, uses in sorted(by_md5.items()):
            path = cache_path(repo.root, md5)
            unready = _not_scannable(repo, cache, path, uses, fetched=fetch and md5 in missing,
                                     verified=verified)  # fmt: skip
            if unready is not None:
                found += unready
                continue
            first = _first(uses)
            issues, fresh = _scan_cached(cache, scanner, path, first)
            scanned += fresh
            for issue in issues:
                if issue.rule in TRUSTABLE and is_trusted(issue.detail, trusted):
                    continue
                found.append(_model_finding(repo, first, uses, issue))
    finally:
        if own:
            cache.close()
    if counts is not None:
        counts.update(model_files=len(by_md5), model_scans=scanned)
    return found


def _not_scannable(
    repo: Repo, cache: HashCache, path: Path, uses: list[Ref], *, fetched: bool, verified: bool
) -> list[Finding] | None:
    """None when the cached object at ``path`` holds its md5's bytes, else findings saying why.

    The findings are empty when the artifact check reported the object already.
    """
    md5 = uses[0].md5
    if not path.is_file():
        if not fetched:
            return []  # the artifact check named it missing
        why = f"object {md5} could not be fetched from the remote to be scanned"
        return [_about(repo, uses, "artifact-missing", md5, why)]
    if (fetched or not verified) and (actual := cache.md5(path)) != md5:
        if not fetched:
            return []  # the artifact check named it corrupt
        why = f"the remote's copy of object {md5} is corrupted: its bytes hash to {actual}"
        return [_about(repo, uses, "artifact-corrupt", md5, why)]
    return None


def _scan_cached(cache: HashCache, scanner: str, path: Path, ref: Ref) -> tuple[list[Issue], bool]:
    """The issues of one verified model file, from the cache when scanned before."""
    kept = cache.scan(ref.md5, scanner)
    if kept is not None:
        return [Issue(**i) for i in kept], False
    from gitml.check.pickles import scan_file

    issues = scan_file(path, ref.fmt, ref.name)
    cache.keep_scan(ref.md5, scanner, [vars(i) for i in issues])
    return issues, True


def _model_finding(repo: Repo, first: Ref, uses: list[Ref], issue: Issue) -> Finding:
    more = f" (and {len(uses) - 1} more reference(s))" if len(uses) > 1 else ""
    what = f"{first.subject} ({first.name}, md5 {first.md5[:12]})"
    return Finding(rule=issue.rule, file=first.file, subject=first.subject, detail=issue.detail,
                   message=f"{what}: {issue.message}{more}", blob=first.blob,
                   line=_line_at(repo, first, first.md5))  # fmt: skip


SCAN_RULES = ("unsafe-pickle", "unscannable-model", "untrusted-skops-type")
TRUSTABLE = ("unsafe-pickle", "untrusted-skops-type")


def trusted_types(repo: Repo) -> list[str]:
    """The globals and skops types the team trusts (`[check] trusted_types`, committed)."""
    return [str(t) for t in repo.config.get("check", {}).get("trusted_types", [])]


def accepted(repo: Repo, findings: list[Finding]) -> list[Finding]:
    """``findings``, those `[check] ignore` accepts marked suppressed (with its reason)."""
    from fnmatch import fnmatchcase

    rules = repo.config.get("check", {}).get("ignore", [])
    if not rules:
        return findings

    def reason(f: Finding) -> str | None:
        for rule in rules:
            if (
                rule["rule"] == f.rule
                and fnmatchcase(f.file, rule.get("file", "*"))
                and all(rule.get(k) in (None, getattr(f, k)) for k in ("subject", "detail"))
            ):
                return str(rule["reason"])
        return None

    return [replace(f, suppressed=reason(f)) for f in findings]


def blocking(repo: Repo, findings: list[Finding]) -> list[Finding]:
    """The findings that stop a push, a promotion or a load: failing and not accepted."""
    return [f for f in accepted(repo, findings) if f.fails]


def file_findings(repo: Repo, md5: str, size: int, fmt: str, path: str) -> list[Finding]:
    """The model-file findings of one cached object (before gitml loads it to read it)."""
    ref = Ref(md5, size, path, path, PurePosixPath(path).name, fmt)
    return blocking(repo, model_findings(repo, [ref]))


def refused(findings: list[Finding], what: str, flag: str) -> str:
    """The one line that says why ``what`` is refused, and how to go ahead anyway."""
    first = findings[0]
    text = first.message
    rest = text.removeprefix(first.subject) if first.subject else text
    if rest.startswith(": "):  # "wine v2: ...": ``what`` names it already
        text = rest[2:]
    elif rest.startswith(" (") and "): " in rest:  # "wine v2 (model.pkl, md5 ...): ..."
        text = rest.split("): ", 1)[1]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return (f"{what}: {text} [{first.rule}]{more}; `gitml check` lists the findings, "
            f"{flag} goes ahead anyway")  # fmt: skip


def version_findings(repo: Repo, doc: dict[str, Any], version: dict[str, Any]) -> list[Finding]:
    """What `gitml model promote` and `gitml serve` refuse in one registry version.

    Its model file missing, corrupt or unsafe, and its training environment unlike this one.
    """
    from gitml.repo import registry_path

    path = repo.relpath(registry_path(repo, doc["name"]))
    (ref,) = registry_refs(path, {**doc, "versions": [version]})
    cache = HashCache(repo.cache_dir)
    counts: dict[str, int] = {}
    try:
        found, _bad = _artifacts(repo, [ref], cache, None, counts, verify=True)
        if not found:
            found = model_findings(repo, [ref], cache=cache)
    finally:
        cache.close()
    seen = _Seen()
    run_id = version.get("run")
    record = _run_record(repo, run_id, seen) if run_id else None
    packages = repo.config.get("check", {}).get("env_packages", DEFAULT_ENV_PACKAGES)
    found += _version_env(repo, path, ref.subject, version, record,
                          against=(serving_versions(repo), packages))  # fmt: skip
    return blocking(repo, found)


# -- environment --------------------------------------------------------------------------------


def serving_versions(repo: Repo) -> dict[str, str]:
    """The serving environment's versions of the compared packages.

    From `[check] serving_env` (a pip freeze file), else this Python's installed packages.
    """
    conf = repo.config.get("check", {})
    if conf.get("serving_env"):
        return read_freeze(repo.root / conf["serving_env"], f"[check] serving_env "
                                                              f"{conf['serving_env']}")  # fmt: skip
    from importlib import metadata

    versions: dict[str, str] = {}
    for name in conf.get("env_packages", DEFAULT_ENV_PACKAGES):
        try:
            versions[_norm(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def read_freeze(path: Path, label: str) -> dict[str, str]:
    """``name==version`` pins of a pip freeze or requirements file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GitmlError(f"{label}: cannot read it: {exc.strerror}") from exc
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name and not line.startswith("-"):
            pins[_norm(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def _norm(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower().strip()


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+", 1)[0].split(".")[:2])


def _current_registry(
    repo: Repo, seen: _Seen
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
    seen: _Seen,
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
            record = _run_record(repo, version["run"], seen)
            if record is None:
                lost = (f"its run {version['run']} is in no branch's history, so its lineage "
                        "and environment are lost")  # fmt: skip
                found.append(Finding(rule="record-integrity", file=entry.path, blob=entry.blob,
                                     subject=subject, detail=version["run"],
                                     message=f"{subject}: {lost}"))  # fmt: skip
                continue
            found += _version_env(repo, entry.path, subject, version, record,
                                  against=(serving, packages))  # fmt: skip
    return found


def _version_env(
    repo: Repo,
    path: str,
    subject: str,
    version: dict[str, Any],
    record: dict[str, Any] | None,
    *,
    against: tuple[dict[str, str], Iterable[str]],
) -> list[Finding]:
    """Findings for a version whose run's packages differ from ``against`` (serving, names)."""
    serving, packages = against
    recorded = (record or {}).get("env", {}).get("packages") or {}
    trained = {_norm(k): v for k, v in recorded.items()}
    if not trained:
        return [Finding(rule="environment-unknown", file=path, subject=subject,
                        message=f"{subject}: run {version.get('run')} recorded no package "
                                "versions; its environment cannot be compared")]  # fmt: skip
    found = []
    for package in packages:
        key = _norm(package)
        if key not in trained:
            continue  # the training code did not use it
        have = serving.get(key)
        if have is not None and _major_minor(have) == _major_minor(trained[key]):
            continue
        now = f"serving has {have}" if have else "serving does not have it"
        found.append(Finding(
            rule="environment-mismatch", file=path, subject=subject, detail=package,
            line=_line_of(repo, path, f'run = "{version.get("run")}"'),
            message=f"{subject} was trained with {package} {trained[key]}, {now}: an unpickled "
                    f"model can change behaviour across versions; retrain, or serve with "
                    f"{package}=={'.'.join(_major_minor(trained[key]))}.*"))  # fmt: skip
    return found


def _run_record(repo: Repo, run_id: str, seen: _Seen) -> dict[str, Any] | None:
    if run_id in seen.runs:
        return seen.runs[run_id][1]
    from gitml.query.api import collect
    from gitml.query.index import BY_ID, record_of

    for run in collect(repo, BY_ID, run_id, repair=False):  # a check writes nothing
        try:
            return record_of(repo, run)
        except GitmlError:
            return None
    return None


# -- secrets ------------------------------------------------------------------------------------


def _secrets(repo: Repo, seen: _Seen) -> list[Finding]:
    """The secrets found while reading, at their lines in working-tree files."""
    return [replace(f, line=_line_of(repo, f.file, f.detail.partition(".")[2]))
            if _on_disk(repo, f.file, f.blob) else f for f in seen.secrets]  # fmt: skip


# -- where ----------------------------------------------------------------------------------------


def _line_of(repo: Repo, path: str, needle: str) -> int | None:
    """The first line of the working-tree file ``path`` that holds ``needle``."""
    try:
        text = (repo.root / path).read_text(errors="replace")
    except OSError:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def _once(findings: list[Finding]) -> list[Finding]:
    """One finding per problem, where versions of a file repeat it.

    A registry file's history holds every version's params again in each commit. History is
    listed newest first, so the last version kept is the oldest: where the problem came in.
    """
    kept: dict[tuple[str, ...], Finding] = {}
    for f in findings:
        kept[(f.rule, f.file, f.subject, f.detail, f.message)] = f
    return list(kept.values())


def _with_commits(repo: Repo, findings: list[Finding]) -> list[Finding]:
    blobs = {f.blob for f in findings if f.blob}
    commits = files.commits_adding(repo, blobs)  # type: ignore[arg-type]
    return [replace(f, commit=commits.get(f.blob or "")) for f in findings]
