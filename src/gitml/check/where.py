"""Where a finding points: the file and line of an object's first use, in the tree or history."""

from __future__ import annotations

from dataclasses import replace

from gitml import git
from gitml.check import files
from gitml.check.findings import Finding, Ref
from gitml.repo import Repo


def about(repo: Repo, uses: list[Ref], rule: str, md5: str, message: str) -> Finding:
    """One finding for an object, named by its first (registry first) reference."""
    first = first_use(uses)
    more = f" (and {len(uses) - 1} more reference(s))" if len(uses) > 1 else ""
    return Finding(rule=rule, file=first.file, subject=first.subject, detail=md5,
                   message=f"{first.subject}: {message}{more}", blob=first.blob,
                   line=line_at(repo, first, md5.removesuffix(".dir")))  # fmt: skip


def first_use(uses: list[Ref]) -> Ref:
    """The reference a finding names: a registry version first, then by file and subject."""
    return sorted(uses, key=lambda r: (not r.registry, r.file, r.subject))[0]


def line_at(repo: Repo, ref: Ref, needle: str) -> int | None:
    """The line of ``needle`` in the file ``ref`` names, when that file is in the tree."""
    return line_of(repo, ref.file, needle) if on_disk(repo, ref.file, ref.blob) else None


def on_disk(repo: Repo, path: str, blob: str | None) -> bool:
    """Whether the working-tree file at ``path`` is this version of it (lines can be named)."""
    if blob is None:
        return True
    try:
        return git.blob_id((repo.root / path).read_bytes()) == blob
    except OSError:
        return False


def line_of(repo: Repo, path: str, needle: str) -> int | None:
    """The first line of the working-tree file ``path`` that holds ``needle``."""
    try:
        text = (repo.root / path).read_text(errors="replace")
    except OSError:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def with_commits(repo: Repo, findings: list[Finding]) -> list[Finding]:
    """``findings`` with the commit that added each one's file version, where known."""
    blobs = {f.blob for f in findings if f.blob}
    commits = files.commits_adding(repo, blobs)  # type: ignore[arg-type]
    return [replace(f, commit=commits.get(f.blob or "")) for f in findings]
