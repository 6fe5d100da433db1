"""Garbage collection of the DVC cache that never drops bytes any commit still references.

Plain `dvc gc` knows `.dvc` pointers and `dvc.lock`; gitml runs also reference files by hash
(inputs committed to git, outputs of every run). Kept: everything DVC sees in any commit of any
branch or tag and in the working tree, plus every input and output of every run in the history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gitml.artifacts.sync import referenced_objects
from gitml.data import dvc_repo
from gitml.repo import Repo


@dataclass(frozen=True)
class GcReport:
    """How many cache objects were kept and removed (or would be, in a dry run)."""

    kept: int
    removed: int
    freed_bytes: int
    dry: bool


def collect_garbage(repo: Repo, *, dry: bool = False) -> GcReport:
    """Remove unreferenced objects from the local DVC cache."""
    from dvc_data.hashfile.gc import gc
    from dvc_data.hashfile.hash_info import HashInfo

    by_runs = referenced_objects(repo)
    with dvc_repo(repo.root) as dvc:
        used: set[HashInfo] = {HashInfo("md5", md5) for md5 in by_runs}
        for ids in dvc.used_objs(
            all_branches=True, all_tags=True, all_commits=True, force=True
        ).values():
            used |= set(ids)
        odb = dvc.cache.local
        keep = {h.value for h in used}
        present = list(odb.all())
        doomed = [oid for oid in present if oid not in keep]
        freed = sum(_size(odb.oid_to_path(oid)) for oid in doomed)
        gc(odb, used, shallow=False, dry=dry)
    return GcReport(
        kept=len(present) - len(doomed), removed=len(doomed), freed_bytes=freed, dry=dry
    )


def _size(path: str) -> int:

    try:
        return os.path.getsize(path)
    except OSError:
        return 0
