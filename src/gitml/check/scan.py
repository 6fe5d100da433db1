"""Model files judged without loading them.

Each global a pickle or joblib file imports is judged against the allow-list, skops files for
untrusted types; results are cached by md5 (`check.hashes`).
"""

from __future__ import annotations

from pathlib import Path

from gitml.check.allowlist import is_trusted
from gitml.check.findings import TRUSTABLE, Finding, Ref
from gitml.check.hashes import HashCache
from gitml.check.pickles import PICKLE_FORMATS, Issue, scan_file, scanner_versions
from gitml.check.where import about, first_use, line_at
from gitml.data import cache_path
from gitml.data.transfer import fetch as fetch_objects
from gitml.repo import Repo

# Files named so are scanned as models even when logged as plain files (.bin and .ckpt are not:
# too many other things are called that).
MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib", ".skops", ".pt", ".pth")


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
    by_md5: dict[str, list[Ref]] = {}
    for ref in refs:
        if ref.fmt in ("", *PICKLE_FORMATS, "skops") and not ref.md5.endswith(".dir"):
            by_md5.setdefault(ref.md5, []).append(ref)
    own = cache is None
    cache = cache or HashCache(repo.cache_dir)
    missing = [m for m in by_md5 if not cache_path(repo.root, m).is_file()]
    if missing and fetch:
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
            first = first_use(uses)
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
        return [about(repo, uses, "artifact-missing", md5, why)]
    if (fetched or not verified) and (actual := cache.md5(path)) != md5:
        if not fetched:
            return []  # the artifact check named it corrupt
        why = f"the remote's copy of object {md5} is corrupted: its bytes hash to {actual}"
        return [about(repo, uses, "artifact-corrupt", md5, why)]
    return None


def _scan_cached(cache: HashCache, scanner: str, path: Path, ref: Ref) -> tuple[list[Issue], bool]:
    """The issues of one verified model file, from the cache when scanned before."""
    kept = cache.scan(ref.md5, scanner)
    if kept is not None:
        return [Issue(**i) for i in kept], False

    issues = scan_file(path, ref.fmt, ref.name)
    cache.keep_scan(ref.md5, scanner, [vars(i) for i in issues])
    return issues, True


def _model_finding(repo: Repo, first: Ref, uses: list[Ref], issue: Issue) -> Finding:
    more = f" (and {len(uses) - 1} more reference(s))" if len(uses) > 1 else ""
    what = f"{first.subject} ({first.name}, md5 {first.md5[:12]})"
    return Finding(rule=issue.rule, file=first.file, subject=first.subject, detail=issue.detail,
                   message=f"{what}: {issue.message}{more}", blob=first.blob,
                   line=line_at(repo, first, first.md5))  # fmt: skip


def trusted_types(repo: Repo) -> list[str]:
    """The globals and skops types the team trusts (`[check] trusted_types`, committed)."""
    return [str(t) for t in repo.config.get("check", {}).get("trusted_types", [])]
