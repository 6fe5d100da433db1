"""The repository itself: finding and opening it, config, worktrees, plain git commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gitml.errors import GitError, GitmlError, NotAGitRepositoryError, ShallowCloneError
from gitml.session import handle

# The git hooks gitml installs, and the line that marks a hook script as gitml's.
HOOKS = ("pre-commit", "post-commit", "pre-push", "post-checkout", "post-merge")
MARKER = "# gitml-hook:"


def find_root(start: Path) -> Path:
    """The top of the working tree that contains ``start`` (no pygit2: used on fast paths)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    raise NotAGitRepositoryError(str(start))


def _open(root: Path) -> Any:
    """The repository at ``root``: opened once per operation (`gitml.session`).

    libgit2 re-reads refs and refreshes its object database when a lookup misses, so git
    commands run meanwhile are seen; the index is re-read before each use (`fresh_index`).
    """
    import pygit2

    def open_it() -> Any:
        try:
            return pygit2.Repository(os.fspath(root))
        except pygit2.GitError as exc:
            raise NotAGitRepositoryError(str(root)) from exc

    return handle(f"git:{os.fspath(root)}", open_it)


def fresh_index(repo: Any) -> Any:
    """The index as it is on disk now (a git command may have changed it since it was read)."""
    index = repo.index
    index.read(False)  # re-read only when the file changed
    return index


def init(path: Path) -> None:
    """Create a git repository at ``path`` with ``main`` as the initial branch."""
    import pygit2

    try:
        pygit2.init_repository(str(path), initial_head="main")
    except pygit2.GitError as exc:
        raise GitError(f"{path}: cannot create a git repository: {exc}") from exc


def read_file_at(root: Path, rev: str, path: str) -> bytes:
    """The content of ``path`` at revision ``rev`` (read from git objects, nothing checked out)."""
    import pygit2

    repo = _open(root)
    try:
        obj = repo.revparse_single(f"{rev}:{path}")
    except (KeyError, pygit2.GitError) as exc:
        raise GitError(f"{rev}:{path}: not found in git history") from exc
    return obj.data


def ensure_config(root: Path, values: dict[str, str]) -> list[str]:
    """Set repository-local git config values that are not already set so."""
    repo = _open(root)
    changed = []
    for key, value in values.items():
        current = repo.config[key] if key in repo.config else None  # noqa: SIM401 - no .get()
        if current != value:
            repo.config[key] = value
            changed.append(f"set git config {key} = {value}")
    return changed


def is_ignored(root: Path, path: str) -> bool:
    """Whether git ignores ``path`` (relative to the root) by its .gitignore rules."""
    return bool(_open(root).path_is_ignored(path))


def is_tracked(root: Path, path: str) -> bool:
    """Whether ``path`` (relative, POSIX) is in the index, i.e. tracked by git."""
    return path in fresh_index(_open(root))


def git_lines(root: Path, *args: str) -> list[str]:
    """NUL-separated output of a git command, in the caller's environment (a hook's index)."""
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    if done.returncode != 0:
        raise GitmlError(f"git {args[0]}: {done.stderr.decode(errors='replace').strip()}")
    return [p for p in done.stdout.decode().split("\0") if p]


def run_git(cwd: Path, *args: str) -> str:
    """Run the git CLI (worktrees, apply) with inherited GIT_* variables removed."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=_git_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise GitError(f"git {args[0]}: {detail[-1] if detail else 'failed'}")
    return done.stdout


# Identity and config isolation pass through; repository-locating variables do not (a hook
# runs with GIT_DIR and GIT_INDEX_FILE set, which would point git at the wrong place).
_KEEP_GIT_ENV = {
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
    "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL",
}  # fmt: skip


def _git_env() -> dict[str, str]:
    """The environment of this process minus the GIT_* variables that locate a repository."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP_GIT_ENV}


def add_worktree(root: Path, path: Path, commit: str) -> None:
    """Check ``commit`` out, detached, in a new worktree at ``path``."""
    run_git(root, "worktree", "add", "--detach", "--quiet", str(path), commit)


def remove_worktree(root: Path, path: Path) -> None:
    """Remove a worktree made by `add_worktree` and forget it."""
    try:
        run_git(root, "worktree", "remove", "--force", str(path))
    except GitError:
        shutil.rmtree(path, ignore_errors=True)
        run_git(root, "worktree", "prune")


def apply_patch(worktree: Path, patch: Path) -> None:
    """`git apply --binary` a recorded code patch in a worktree."""
    run_git(worktree, "apply", "--binary", "--whitespace=nowarn", str(patch))


def resolve_commit(root: Path, rev: str) -> str | None:
    """The full id of the commit ``rev`` names, or None."""
    import pygit2

    try:
        return str(_open(root).revparse_single(rev).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def is_shallow(root: Path) -> bool:
    """Whether this clone holds only part of the history (`git clone --depth`)."""
    return run_git(root, "rev-parse", "--is-shallow-repository").strip() == "true"


def require_full_history(root: Path, what: str) -> None:
    """Refuse ``what`` in a shallow clone, which would read only part of the history."""
    if is_shallow(root):
        raise ShallowCloneError(what)


def hooks_dir(root: Path) -> Path:
    """The folder git runs hooks from (`core.hooksPath`, or the common `.git/hooks`)."""
    path = Path(run_git(root, "rev-parse", "--git-path", "hooks").strip())
    return path if path.is_absolute() else root / path


def _walk_tree(repo: Any, tree: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    import pygit2

    for entry in tree:
        path = f"{prefix}/{entry.name}"
        if entry.type == pygit2.enums.ObjectType.TREE:
            yield from _walk_tree(repo, repo[entry.id], path)
        else:
            yield path, entry.id, entry.filemode


def stage_file(root: Path, path: str) -> None:
    """`git add -- path`, in this process, into the index git named (a hook's, mid-commit).

    A `git add` child of a hook outlives the hook when the hook is killed, and then writes the
    commit's index lock after git has rolled the commit back, leaving `.git/index.lock`. Done
    here, the write dies with the hook: at worst an `index.lock.lock` of libgit2's is left.
    """
    import pygit2

    repo = _open(root)
    named = os.environ.get("GIT_INDEX_FILE")
    index = pygit2.Index(str(root / named) if named and not os.path.isabs(named) else named) \
        if named else fresh_index(repo)  # fmt: skip
    file = root / path
    mode = pygit2.enums.FileMode.BLOB_EXECUTABLE if os.access(file, os.X_OK) else \
        pygit2.enums.FileMode.BLOB  # fmt: skip
    index.add(pygit2.IndexEntry(path, repo.create_blob_fromworkdir(path), mode))
    index.write()


def restage_as_committed(root: Path, path: str) -> bool:
    """Stage ``path`` when the index lags HEAD while the working file is HEAD's; True if it did.

    `git commit -- PATHS` commits a temporary index: a file the pre-commit hook staged there is
    committed, but the real index keeps its old entry (or none), so `git status` shows the
    commit undone and the next commit would undo it. Run after such a commit.
    """
    import pygit2

    repo = _open(root)
    try:
        committed = repo.revparse_single(f"HEAD:{path}").id
    except (KeyError, pygit2.GitError):
        return False
    try:
        staged = fresh_index(repo)[path].id
    except KeyError:
        staged = None
    file = root / path
    if staged == committed or not file.is_file():
        return False
    if pygit2.hash(file.read_bytes()) != committed:
        return False  # the user changed it since: not ours to stage
    stage_file(root, path)
    return True


def staged_contents(root: Path, paths: list[str]) -> dict[str, bytes]:
    """The staged (index) content of each path, read in one `git cat-file --batch`.

    In the caller's environment, as `git_lines`: in a hook, the index git is committing.
    """
    request = "".join(f":{p}\n" for p in paths).encode()
    done = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=root, input=request, capture_output=True, check=False
    )
    out, pos, contents = done.stdout, 0, {}
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        contents[path] = out[pos : pos + size]
        pos += size + 1
    return contents


def verify_commit(root: Path, commit: str, allowed_signers: Path) -> str | None:
    """`git verify-commit` against an allowed-signers file: the signer's principal, or None."""
    done = subprocess.run(
        ["git", "-c", f"gpg.ssh.allowedSignersFile={allowed_signers}", "verify-commit", commit],
        cwd=root, env=_git_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return None
    for line in done.stderr.splitlines():
        if line.startswith('Good "git" signature for '):
            return line.removeprefix('Good "git" signature for ').split(" with ", 1)[0]
    return None


def merge_file(ours: Path, base: Path, theirs: Path) -> None:
    """`git merge-file`: git's line-based merge into ``ours``, with conflict markers."""
    subprocess.run(
        ["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
         str(ours), str(base), str(theirs)],
        env=_git_env(), capture_output=True, check=False,
    )  # fmt: skip
