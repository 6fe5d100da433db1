"""Every object records reference, in the DVC cache (its bytes hashing to their md5) or remote.

Cached bytes are re-read only when the file changed since the last check (`check.hashes`); a
folder's manifest is expanded to its files; what is in neither place is named with the record
that references it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from gitml.check.findings import Finding, Ref
from gitml.check.hashes import HashCache
from gitml.check.where import about
from gitml.data import cache_path, read_dvc_option
from gitml.data.transfer import in_remote
from gitml.repo import Repo


def artifact_findings(
    repo: Repo, refs: list[Ref], cache: HashCache, remote: str | None, counts: dict[str, int], *,
    verify: bool,
) -> tuple[list[Finding], set[str]]:  # fmt: skip
    """Findings for missing and corrupt objects, and the md5s whose bytes are bad."""
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
                found.append(about(repo, uses, "artifact-corrupt", md5,
                                    f"DVC cache object {md5} is corrupted: its bytes hash to "
                                    f"{actual}; delete it and `gitml pull` it from the "
                                    "remote"))  # fmt: skip
    in_remote = _in_remote(repo, absent, remote) if absent else set()
    for md5 in absent:
        if md5 not in in_remote:
            bad.add(md5)
            if verify and by_md5.get(md5):
                found.append(about(repo, by_md5[md5], "artifact-missing", md5,
                                    f"object {md5} is in neither the DVC cache nor the remote; "
                                    "push it from a clone that has it, or re-run"))  # fmt: skip
    counts.update(artifacts=len(by_md5), remote_only=len(in_remote))
    return found, bad


def _progress(items: list[Any], what: str) -> Any:
    """``items``, with a progress bar on a terminal when there are many."""
    if len(items) < 100 or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"gitml check: {what}", unit="object", leave=False)


def _dir_parts(manifest: Path, ref: Ref) -> Iterator[Ref]:

    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and isinstance(e.get("md5"), str):
            yield replace(ref, md5=e["md5"], size=int(e.get("size") or 0),
                          subject=f"{ref.subject}/{e.get('relpath', '')}")  # fmt: skip


def _in_remote(repo: Repo, md5s: list[str], remote: str | None) -> set[str]:

    if remote is None and read_dvc_option(repo.root, "core", "remote") is None:
        return set()  # no remote to look in: what is not cached is missing

    return in_remote(repo.root, md5s, remote=remote)
