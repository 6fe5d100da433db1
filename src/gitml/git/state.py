"""The code a run was started from: HEAD, branch, and a patch of every change."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.git.base import _git_env, _open, _walk_tree, fresh_index


@dataclass(frozen=True, kw_only=True)
class CodeState:
    """The code a run was started from."""

    commit: str | None
    branch: str | None
    dirty: bool
    patch: bytes | None  # `git diff HEAD --binary` of tracked and captured new files, when dirty
    untracked: tuple[str, ...] = ()  # new files (not ignored) the patch carries
    left_out: tuple[str, ...] = ()  # new files too big or binary for a patch: not captured


# A new file is code (captured in a run's patch) when it is text and at most this big; anything
# else is data, for DVC: `gitml run` records it as an input or output by hash instead.
CODE_FILE_MAX_BYTES = 1 << 20


# Text that is data all the same: recorded by hash as a run's input, never patched.
TEXT_DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".log")


def is_code_sized(file: Path) -> bool:
    """Whether ``file`` is small text: fit for a git patch rather than the DVC cache."""
    if file.suffix.lower() in TEXT_DATA_SUFFIXES:
        return False
    try:
        if file.is_symlink() or file.stat().st_size > CODE_FILE_MAX_BYTES:
            return False
        with file.open("rb") as fh:
            return b"\0" not in fh.read(8192)
    except OSError:
        return False


def code_state(root: Path, *, exclude: Iterable[str] = ()) -> CodeState:
    """HEAD, branch and the patch of the working tree against HEAD, ignoring ``exclude``.

    The patch is taken from a snapshot tree built from a copy of the index with the working-tree
    content of every tracked file, plus every new file that git does not ignore and that is
    code-sized (`is_code_sized`): a script not yet committed is part of the code a run ran. It
    applies with `git apply` on the recorded commit. The repository's own index is never touched.

    A clean working tree (the usual case for a committed script) is answered by one
    `git status`, ~5 ms, without importing pygit2 (~40 ms); anything else builds the patch.
    """
    excluded = tuple(exclude)
    clean = _clean_state(root, excluded)
    if clean is not None:
        return clean
    import pygit2

    repo = _open(root)
    branch = None if repo.head_is_detached else _head_branch(repo)
    head_tree = None
    commit = None
    if not repo.head_is_unborn:
        head_commit = repo.head.peel(pygit2.Commit)
        commit, head_tree = str(head_commit.id), head_commit.tree
    snapshot, untracked, left_out = _snapshot_tree(repo, head_tree, excluded)
    if head_tree is not None and snapshot.id == head_tree.id:
        return CodeState(commit=commit, branch=branch, dirty=False, patch=None, left_out=left_out)
    flags = pygit2.enums.DiffOption.SHOW_BINARY
    if head_tree is None:
        diff = snapshot.diff_to_tree(flags=flags, swap=True)
    else:
        diff = head_tree.diff_to_tree(snapshot, flags=flags)
    patch = diff.patch or ""
    return CodeState(
        commit=commit,
        branch=branch,
        dirty=bool(patch),
        patch=patch.encode() or None,
        untracked=untracked,
        left_out=left_out,
    )


def _clean_state(root: Path, excluded: tuple[str, ...]) -> CodeState | None:
    """HEAD and branch when `git status` lists nothing outside ``excluded``; else None."""
    done = subprocess.run(
        ["git", "--no-optional-locks", "status", "--porcelain=v2", "--branch", "-z",
         "--untracked-files=all", "--ignore-submodules=none"],
        cwd=root, env=_git_env(), capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return None  # let pygit2 say what is wrong
    commit = branch = None
    entries = iter(done.stdout.decode("utf-8", "surrogateescape").split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif entry and not entry.startswith("#"):
            path = entry.split(" ", _PATH_FIELD.get(entry[0], 1))[-1]
            if entry[0] == "2":
                next(entries, None)  # a rename's original path
            if not _is_excluded(path, excluded):
                return None
    if commit is None:
        return None  # an unborn branch: the patch holds every file
    return CodeState(commit=commit, branch=branch, dirty=False, patch=None)


# In `git status --porcelain=v2`, the path is the last of this many space-separated fields + 1.
_PATH_FIELD = {"1": 8, "2": 9, "u": 10, "?": 1, "!": 1}


def _head_branch(repo: Any) -> str | None:
    ref = repo.lookup_reference("HEAD").target
    return ref.removeprefix("refs/heads/") if isinstance(ref, str) else None


def _snapshot_tree(
    repo: Any, head_tree: Any, excluded: tuple[str, ...]
) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    import pygit2

    index = pygit2.Index()
    for entry in fresh_index(repo):
        if not _is_excluded(entry.path, excluded):
            index.add(pygit2.IndexEntry(entry.path, entry.id, entry.mode))
    if head_tree is not None:
        _keep_head_versions(repo, index, head_tree, excluded)
    changed = pygit2.enums.FileStatus.WT_MODIFIED | pygit2.enums.FileStatus.WT_TYPECHANGE
    workdir = Path(repo.workdir)
    untracked, left_out = [], []
    for path, flags in repo.status(untracked_files="all").items():
        if _is_excluded(path, excluded):
            continue
        if path not in index:
            if flags & pygit2.enums.FileStatus.WT_NEW:
                file = workdir / path
                if is_code_sized(file):
                    blob = repo.create_blob_fromworkdir(path)
                    index.add(pygit2.IndexEntry(path, blob, _file_mode(file)))
                    untracked.append(path)
                else:
                    left_out.append(path)
            continue
        if flags & pygit2.enums.FileStatus.WT_DELETED:
            index.remove(path)
        elif flags & changed:
            file = workdir / path
            mode = _file_mode(file)
            index.add(pygit2.IndexEntry(path, repo.create_blob_fromworkdir(path), mode))
    return repo[index.write_tree(repo)], tuple(sorted(untracked)), tuple(sorted(left_out))


def _file_mode(file: Path) -> Any:
    import pygit2

    modes = pygit2.enums.FileMode
    if file.is_symlink():
        return modes.LINK
    return modes.BLOB_EXECUTABLE if os.access(file, os.X_OK) else modes.BLOB


def _keep_head_versions(repo: Any, index: Any, head_tree: Any, excluded: tuple[str, ...]) -> None:
    # Excluded paths (gitml's own files) keep their HEAD version so they never show as changes.
    import pygit2

    for prefix in excluded:
        try:
            obj = head_tree[prefix.rstrip("/")]
        except KeyError:
            continue
        if obj.type == pygit2.enums.ObjectType.BLOB:
            index.add(pygit2.IndexEntry(prefix.rstrip("/"), obj.id, obj.filemode))
        else:
            for path, blob_id, mode in _walk_tree(repo, obj, prefix.rstrip("/")):
                index.add(pygit2.IndexEntry(path, blob_id, mode))


def _is_excluded(path: str, excluded: tuple[str, ...]) -> bool:
    return any(path == e.rstrip("/") or path.startswith(e.rstrip("/") + "/") for e in excluded)
