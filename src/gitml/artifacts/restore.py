"""`gitml checkout <run|commit>`: put a run's recorded files back, without moving HEAD."""

from __future__ import annotations

from pathlib import Path

from gitml import store
from gitml.data import ArtifactRef
from gitml.data.checkout import restore
from gitml.query.indexed import record_of
from gitml.repo import Repo
from gitml.reproduce import targets


def checkout_run(repo: Repo, ref: str, *, inputs: bool = True) -> list[str]:
    """Restore the outputs (and inputs) of the run(s) ``ref`` names; returns the paths written."""
    written = []
    for run in targets(repo, ref):
        record = record_of(repo, run)
        sections = [record.get("outputs", {})] + ([record.get("inputs", {})] if inputs else [])
        for section in sections:
            for path, art in section.items():
                dest = store.safe_target(repo.root, path)
                restore(repo.root, ArtifactRef(md5=art["md5"], size=art["size"]), dest)
                written.append(Path(path).as_posix())
    return written
