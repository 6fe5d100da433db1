"""What `gitml model promote`, `gitml serve` and `gitml model register` ask before acting.

One registry version, or one model file, judged as `gitml check` judges it (its bytes present
and intact, the file safe to load, its training environment like this one), without writing
anything: the run it names is looked up with `repair=False`, and the caches are optional.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from gitml.check.artifacts import artifact_findings
from gitml.check.core import (
    DEFAULT_ENV_PACKAGES,
    Seen,
    model_findings,
    registry_refs,
    run_record,
    serving_versions,
    version_env,
)
from gitml.check.findings import Finding, Ref, blocking
from gitml.check.hashes import HashCache
from gitml.records import ModelDoc, VersionRecord
from gitml.repo import Repo, registry_path


def file_findings(repo: Repo, md5: str, size: int, fmt: str, path: str) -> list[Finding]:
    """The model-file findings of one cached object (before gitml loads it to read it)."""
    ref = Ref(md5, size, path, path, PurePosixPath(path).name, fmt)
    return blocking(repo, model_findings(repo, [ref]))


def version_findings(repo: Repo, doc: ModelDoc, version: VersionRecord) -> list[Finding]:
    """What `gitml model promote` and `gitml serve` refuse in one registry version.

    Its model file missing, corrupt or unsafe, and its training environment unlike this one.
    """
    path = repo.relpath(registry_path(repo, doc["name"]))
    (ref,) = registry_refs(path, {**doc, "versions": [version]})
    cache = HashCache(repo.cache_dir)
    counts: dict[str, int] = {}
    try:
        found, _bad = artifact_findings(repo, [ref], cache, None, counts, verify=True)
        if not found:
            found = model_findings(repo, [ref], cache=cache)
    finally:
        cache.close()
    seen = Seen()
    run_id = version.get("run")
    record = run_record(repo, run_id, seen) if run_id else None
    packages = repo.config.get("check", {}).get("env_packages", DEFAULT_ENV_PACKAGES)
    found += version_env(repo, path, ref.subject, version, record,
                          against=(serving_versions(repo), packages))  # fmt: skip
    return blocking(repo, found)
