"""Everything gitml asks of git, through pygit2 (the only module that imports it).

pygit2 is imported lazily inside functions: a hook or `gitml --help` never pays for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.errors import GitError, GitmlError, NotAGitRepositoryError, ShallowCloneError

# The git hooks gitml installs, and the line that marks a hook script as gitml's.
HOOKS = ("pre-commit", "post-commit", "pre-push", "post-checkout", "post-merge")
MARKER = "# gitml-hook:"


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


@dataclass(frozen=True, kw_only=True)
class RunBlob:
    """One version of a run.toml found in a commit."""

    run_id: str
    blob: str
    commit: str
    commit_time: int


def find_root(start: Path) -> Path:
    """The top of the working tree that contains ``start`` (no pygit2: used on fast paths)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    raise NotAGitRepositoryError(str(start))


def _open(root: Path) -> Any:
    import pygit2

    try:
        return pygit2.Repository(str(root))
    except pygit2.GitError as exc:
        raise NotAGitRepositoryError(str(root)) from exc


def init(path: Path) -> None:
    """Create a git repository at ``path`` with ``main`` as the initial branch."""
    import pygit2

    try:
        pygit2.init_repository(str(path), initial_head="main")
    except pygit2.GitError as exc:
        raise GitError(f"{path}: cannot create a git repository: {exc}") from exc


def code_state(root: Path, *, exclude: Iterable[str] = ()) -> CodeState:
    """HEAD, branch and the patch of the working tree against HEAD, ignoring ``exclude``.

    The patch is taken from a snapshot tree built from a copy of the index with the working-tree
    content of every tracked file, plus every new file that git does not ignore and that is
    code-sized (`is_code_sized`): a script not yet committed is part of the code a run ran. It
    applies with `git apply` on the recorded commit. The repository's own index is never touched.
    """
    import pygit2

    repo = _open(root)
    excluded = tuple(exclude)
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


def _head_branch(repo: Any) -> str | None:
    ref = repo.lookup_reference("HEAD").target
    return ref.removeprefix("refs/heads/") if isinstance(ref, str) else None


def _snapshot_tree(
    repo: Any, head_tree: Any, excluded: tuple[str, ...]
) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    import pygit2

    index = pygit2.Index()
    for entry in repo.index:
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


def _walk_tree(repo: Any, tree: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    import pygit2

    for entry in tree:
        path = f"{prefix}/{entry.name}"
        if entry.type == pygit2.enums.ObjectType.TREE:
            yield from _walk_tree(repo, repo[entry.id], path)
        else:
            yield path, entry.id, entry.filemode


def _is_excluded(path: str, excluded: tuple[str, ...]) -> bool:
    return any(path == e.rstrip("/") or path.startswith(e.rstrip("/") + "/") for e in excluded)


def ref_tips(root: Path) -> dict[str, str]:
    """Every local branch and tag (and a detached HEAD) -> its commit id."""
    import pygit2

    repo = _open(root)
    tips: dict[str, str] = {}
    for name in repo.branches.local:
        tips[f"refs/heads/{name}"] = str(repo.branches.local[name].target)
    for ref in repo.references.iterator(pygit2.enums.ReferenceFilter.TAGS):
        try:
            tips[ref.name] = str(ref.peel(pygit2.Commit).id)
        except (pygit2.InvalidSpecError, ValueError):
            continue  # a tag of a tree or blob holds no runs
    if not repo.head_is_unborn and repo.head_is_detached:
        tips["HEAD"] = str(repo.head.target)
    return tips


def refs_under(root: Path, prefix: str) -> dict[str, str]:
    """Every reference whose name starts with ``prefix`` -> the commit it points at."""
    import pygit2

    repo = _open(root)
    out: dict[str, str] = {}
    for name in repo.references:
        if name.startswith(prefix):
            try:
                out[name] = str(repo.references[name].peel(pygit2.Commit).id)
            except (pygit2.InvalidSpecError, ValueError):
                continue
    return out


def files_under(root: Path, rev: str, folder: str) -> list[str]:
    """Paths of the files under ``folder`` at ``rev`` (none when it has no such folder)."""
    import pygit2

    repo = _open(root)
    try:
        tree = repo.revparse_single(f"{rev}:{folder}")
    except (KeyError, pygit2.GitError):
        return []
    if not isinstance(tree, pygit2.Tree):
        return []
    return sorted(f"{folder}{path}" for path, _, _ in _walk_tree(repo, tree, ""))


def reachable_commits(root: Path) -> list[str]:
    """Every commit reachable from a local branch or a detached HEAD, parents last."""
    import pygit2

    repo = _open(root)
    tips = ref_tips(root).values()
    if not tips:
        return []
    walker = repo.walk(None, pygit2.enums.SortMode.TOPOLOGICAL)
    for tip in set(tips):
        walker.push(tip)
    return [str(c.id) for c in walker]


def run_blobs(root: Path, runs_path: str, commits: Iterable[str]) -> Iterator[RunBlob]:
    """For each commit, in the order given, every run.toml it adds or changes under ``runs_path``.

    Each commit is compared with its first parent by `git diff-tree --stdin`, streamed. It is
    the git CLI rather than pygit2 because a flat folder of 70,000 runs makes libgit2's tree
    diff cost ~50 ms a commit (108 s for 2,000 commits), git's 3 ms.
    """
    argv = ["diff-tree", "--stdin", "-z", "-r", "--no-renames", "--no-abbrev", "--root",
            "--diff-merges=first-parent", "--format=C%H %ct", "--", runs_path]  # fmt: skip
    prefix = runs_path.rstrip("/") + "/"
    # git keeps up to 96 MiB of delta bases by default; at 16 MiB the walk costs 10% more
    # time and its peak memory over 100,000 runs goes from 275 to 150 MiB.
    with _git_stream(root, argv, commits, config=["core.deltaBaseCacheLimit=16m"]) as stdout:
        yield from _parse_diff_tree(_split_nul(stdout), prefix)


def stream_blobs(root: Path, blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """The bytes of each blob id, in order, from one `git cat-file --batch`.

    For thousands of blobs this is 3x faster than pygit2's lookups; use `read_blobs` for a few.
    """
    with _git_stream(root, ["cat-file", "--batch"], blob_ids) as stdout:
        while header := stdout.readline():
            oid, kind, *size = header.decode().split()
            if kind != "blob":
                raise GitError(f"git cat-file: {oid} is {kind}, not a blob")
            data = stdout.read(int(size[0]))
            stdout.read(1)  # the newline after the content
            yield oid, data


def blob_id(data: bytes) -> str:
    """The id git gives these bytes as a blob, so a file on disk matches its committed version."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def written_blobs(root: Path) -> Generator[tuple[str, str], None, None]:
    """(commit, blob id) of every file version each commit on any ref writes, newest first."""
    argv = ["log", "--all", "--raw", "--no-abbrev", "--no-renames", "--format=C%H"]
    commit = ""
    with _git_stream(root, argv, ()) as stdout:
        for line in stdout:
            if line.startswith(b"C"):
                commit = line[1:].strip().decode()
            elif line.startswith(b":"):
                yield commit, line.split()[3].decode()


@contextlib.contextmanager
def _git_stream(
    root: Path, argv: list[str], lines: Iterable[str], config: Iterable[str] = ()
) -> Iterator[Any]:
    """Run `git *argv`, feeding ``lines`` to its stdin from a thread; yields its stdout.

    A git that fails raises `GitError` with its last line of stderr, unless the caller stopped
    reading early (then its exit status does not matter).
    """
    import threading

    options = [arg for setting in config for arg in ("-c", setting)]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(["git", *options, *argv], cwd=root, env=_git_env(), stdin=pipe,
                            stdout=pipe, stderr=pipe)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    def feed(stdin: Any = proc.stdin) -> None:
        with contextlib.suppress(BrokenPipeError), stdin:
            for line in lines:
                stdin.write(line.encode() + b"\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield proc.stdout
    finally:
        proc.stdout.close()
        writer.join()
        error = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        failed = proc.wait() != 0
    if failed:
        raise GitError(f"git {argv[0]}: {error.splitlines()[-1] if error else 'failed'}")


def _split_nul(stream: Any, size: int = 1 << 16) -> Iterator[bytes]:
    rest = b""
    while chunk := stream.read(size):
        *done, rest = (rest + chunk).split(b"\0")
        yield from done
    if rest:
        yield rest


def _parse_diff_tree(tokens: Iterator[bytes], prefix: str) -> Iterator[RunBlob]:
    """`C<commit> <time>` headers, then `:<modes> <old> <new> <status>` and path pairs."""
    commit, time = "", 0
    for raw in tokens:
        token = raw.lstrip(b"\n")
        if token.startswith(b"C"):
            oid, _, stamp = token[1:].decode().partition(" ")
            commit, time = oid, int(stamp)
        elif token.startswith(b":"):
            fields = token.decode().split(" ")
            path = next(tokens).decode(errors="surrogateescape")
            run_id, _, name = path.removeprefix(prefix).partition("/")
            if name == "run.toml" and fields[4][:1] in "AMRCT":
                yield RunBlob(run_id=run_id, blob=fields[3], commit=commit, commit_time=time)


def read_blobs(root: Path, blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """The bytes of each blob id."""
    repo = _open(root)
    for oid in blob_ids:
        yield oid, repo[oid].data


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
    return path in _open(root).index


def git_lines(root: Path, *args: str) -> list[str]:
    """NUL-separated output of a git command, in the caller's environment (a hook's index)."""
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    if done.returncode != 0:
        raise GitmlError(f"git {args[0]}: {done.stderr.decode(errors='replace').strip()}")
    return [p for p in done.stdout.decode().split("\0") if p]


def run_git(cwd: Path, *args: str) -> str:
    """Run the git CLI (worktrees, apply) with inherited GIT_* variables removed."""
    import subprocess

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
    import shutil

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


def commit(root: Path, paths: Iterable[str], message: str) -> str:
    """Stage ``paths`` and commit through pygit2, running the repository's hooks as git would.

    pygit2 runs no hooks, so this runs pre-commit (a refusal aborts: nothing is committed) and
    commit-msg before writing the commit, and post-commit after it. gitml's own checks, a hook
    the user had, and a pre-commit framework install all see the commits gitml makes.
    Returns the new commit id.
    """
    import pygit2

    from gitml.store import locked

    paths = list(paths)
    repo = _open(root)
    # gitml's own commits one at a time (two promotions at once must not race on the index).
    with locked(Path(repo.path) / "gitml-commit.lock", timeout=120):
        try:
            return _commit(root, repo, paths, message)
        except pygit2.GitError as exc:
            raise GitError(f"cannot commit {', '.join(paths)}: {exc}") from exc


PENDING = "gitml-pending-commit.json"  # in .git: a file commit whose tree is not settled yet


def commit_file(root: Path, path: str, data: bytes, message: str) -> str:
    """Commit ``data`` as ``path`` on HEAD, then make the working file and the index match.

    The commit comes first: built from HEAD's tree (never from the working tree or the index,
    so nothing else the user staged rides along), checked by the pre-commit and commit-msg
    hooks on a temporary index, and the branch moved with compare-and-swap (`git update-ref
    <new> <old>`). Only then are the working file and the index updated. A process killed
    before the ref moves leaves the old committed state untouched; one killed after it leaves
    a note in ``.git/`` that `settle` (run by every registry command) finishes from.
    """
    import pygit2

    from gitml.store import locked

    repo = _open(root)
    with locked(Path(repo.path) / "gitml-commit.lock", timeout=120):
        _settle_locked(root, repo)
        try:
            oid = _commit_file(root, repo, path, data, message)
        except pygit2.GitError as exc:
            raise GitError(f"cannot commit {path}: {exc}") from exc
    _run_hook(root, hooks_dir(root), "post-commit", check=False)
    return oid


def settle(root: Path) -> None:
    """Finish a file commit a killed process left half-done (see `commit_file`).

    Every registry read calls this: with a plain `.git` folder, no note there costs one stat
    and no pygit2 import.
    """
    if (root / ".git").is_dir() and not (root / ".git" / PENDING).exists():
        return
    repo = _open(root)
    if not (Path(repo.path) / PENDING).exists():
        return
    from gitml.store import locked

    with locked(Path(repo.path) / "gitml-commit.lock", timeout=120):
        _settle_locked(root, repo)


def _commit_file(root: Path, repo: Any, path: str, data: bytes, message: str) -> str:
    import json

    import pygit2

    parent = None if repo.head_is_unborn else str(repo.head.target)
    index_file = Path(repo.path) / f"gitml-index.{os.getpid()}"
    try:
        index = pygit2.Index(str(index_file))
        if parent is not None:
            index.read_tree(repo[parent].tree)
        index.add(pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB))
        index.write()
        env = {**_git_env(), "GIT_INDEX_FILE": str(index_file)}
        folder = hooks_dir(root)
        _run_hook(root, folder, "pre-commit", env=env)
        message_file = Path(repo.path) / "COMMIT_EDITMSG"
        message_file.write_text(message if message.endswith("\n") else message + "\n")
        _run_hook(root, folder, "commit-msg", str(message_file), env=env)
        index.read()  # the hooks may have staged more
        tree = index.write_tree(repo)
    finally:
        index_file.unlink(missing_ok=True)
    if parent is not None and repo[parent].tree_id == tree:
        raise GitError(f"nothing to commit: {path} unchanged")
    oid = str(_create_commit(repo, message_file.read_text(), tree, parent))
    branch = _branch_ref(repo)
    pending = Path(repo.path) / PENDING
    pending.write_text(json.dumps({"commit": oid, "parent": parent, "ref": branch}))
    try:
        run_git(root, "update-ref", "-m", f"commit: {message.splitlines()[0]}", branch, oid,
                parent or "0" * 40)  # fmt: skip
    except GitError:
        pending.unlink(missing_ok=True)
        raise GitError(f"{branch} moved while {path} was being committed; try again") from None
    _settle_locked(root, repo)
    return oid


def _create_commit(repo: Any, message: str, tree: Any, parent: Any) -> Any:
    """A commit object that no ref points at yet, SSH-signed as `git commit -S` when asked."""
    try:
        author, committer = _signature(repo, "AUTHOR"), _signature(repo, "COMMITTER")
    except KeyError:
        raise GitError(
            "no identity to commit with: set `git config user.name` and `user.email`"
        ) from None
    parents = [parent] if parent else []
    key = _signing_key(repo)
    if key is None:
        return repo.create_commit(None, author, committer, message, tree, parents)
    buffer = repo.create_commit_string(author, committer, message, tree, parents)
    return repo.create_commit_with_signature(buffer, _ssh_sign(buffer, key))


def _branch_ref(repo: Any) -> str:
    """The ref a commit moves: HEAD's branch, or HEAD itself when detached."""
    if repo.head_is_unborn:
        return str(repo.references["HEAD"].target)
    return "HEAD" if repo.head_is_detached else str(repo.head.name)


def _settle_locked(root: Path, repo: Any) -> None:
    """When a pending file commit is on its branch, write its files to the tree and index."""
    import json

    pending = Path(repo.path) / PENDING
    try:
        note = json.loads(pending.read_text())
    except (OSError, ValueError):
        pending.unlink(missing_ok=True)
        return
    try:
        head = str(repo.revparse_single(note["ref"]).id)
    except (KeyError, ValueError):
        head = None
    if head == note["commit"]:
        commit = repo[note["commit"]]
        if note["parent"]:
            diff = repo.diff(repo[note["parent"]].tree, commit.tree)
        else:
            diff = commit.tree.diff_to_tree(swap=True)
        index = repo.index
        index.read()
        for delta in diff.deltas:
            _settle_path(root, repo, index, delta)
        index.write()
    pending.unlink(missing_ok=True)


def _settle_path(root: Path, repo: Any, index: Any, delta: Any) -> None:
    """Make one path of the working tree and the index what the commit holds."""
    from gitml.store import atomic_write, safe_target

    if delta.status_char() == "D":
        safe_target(root, delta.old_file.path).unlink(missing_ok=True)
        with contextlib.suppress(KeyError, OSError):
            index.remove(delta.old_file.path)
        return
    atomic_write(safe_target(root, delta.new_file.path), repo[delta.new_file.id].data)
    index.add(delta.new_file.path)


def _commit(root: Path, repo: Any, paths: list[str], message: str) -> str:
    index = repo.index
    index.read()
    index.add_all(paths)  # files and folders; ignored files stay out, as with `git add`
    prefixes = tuple(p.rstrip("/") + "/" for p in paths)
    gone = [
        e.path
        for e in index
        if (e.path in paths or e.path.startswith(prefixes)) and not (root / e.path).exists()
    ]
    for path in gone:  # and deletions, as `git add` of a removed path stages them
        index.remove(path)
    index.write()
    folder = hooks_dir(root)
    _run_hook(root, folder, "pre-commit")
    message_file = Path(repo.path) / "COMMIT_EDITMSG"
    message_file.write_text(message if message.endswith("\n") else message + "\n")
    _run_hook(root, folder, "commit-msg", str(message_file))
    message = message_file.read_text()
    index.read()  # the hooks may have staged more (pre-commit refreshes metrics.toml)
    tree = index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    if parents and repo[parents[0]].tree_id == tree:
        raise GitError(f"nothing to commit: {', '.join(paths) or 'no paths'} unchanged")
    oid = _create_commit(repo, message, tree, parents[0] if parents else None)
    if repo.head_is_unborn or not repo.head_is_detached:
        repo.references.create(_branch_ref(repo), oid, force=True)
    else:
        repo.set_head(oid)
    _run_hook(root, folder, "post-commit", check=False)
    return str(oid)


def _signing_key(repo: Any) -> str | None:
    """The SSH key to sign with, when this repository's git config asks for signed commits."""
    config = repo.config
    wants = config.get_bool("commit.gpgsign") if "commit.gpgsign" in config else False
    if not wants:
        return None
    kind = config["gpg.format"] if "gpg.format" in config else "openpgp"  # noqa: SIM401
    if kind != "ssh" or "user.signingkey" not in config:
        raise GitError(
            f"commit.gpgsign is on with gpg.format={kind}: gitml signs its own commits with SSH "
            "keys only (gpg.format=ssh and user.signingkey)"
        )
    key = os.path.expanduser(str(config["user.signingkey"]).removeprefix("key::"))
    return key.removesuffix(".pub") if key.endswith(".pub") else key


def _ssh_sign(buffer: str, key: str) -> str:
    done = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "git", "-f", key],
                          input=buffer.encode(), capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise GitError(f"ssh-keygen could not sign with {key}: {done.stderr.decode().strip()}")
    return done.stdout.decode()


def _signature(repo: Any, role: str) -> Any:
    import pygit2

    name, email = os.environ.get(f"GIT_{role}_NAME"), os.environ.get(f"GIT_{role}_EMAIL")
    if name and email:
        return pygit2.Signature(name, email)
    default = repo.default_signature  # KeyError when user.name/email are unset
    return pygit2.Signature(name or default.name, email or default.email)


def _run_hook(
    root: Path, folder: Path, name: str, *args: str, check: bool = True,
    env: dict[str, str] | None = None,
) -> None:  # fmt: skip
    import subprocess

    hook = folder / name
    if not (hook.is_file() and os.access(hook, os.X_OK)):
        return
    done = subprocess.run([str(hook), *args], cwd=root, env=env or _git_env(),
                          capture_output=True, text=True, check=False)  # fmt: skip
    output = (done.stderr + done.stdout).strip()
    if done.returncode != 0 and check:
        # Every problem the hook named, without git's "skip with --no-verify" advice.
        lines = [line for line in output.splitlines() if "--no-verify" not in line]
        said = "; ".join(lines) or f"exit code {done.returncode}"
        raise GitError(f"the {name} hook refused the commit: {said}")
    if output:
        import sys

        print(output, file=sys.stderr)


def rev_list(root: Path, revs: Iterable[str]) -> list[str]:
    """Every commit reachable from ``revs``; an unknown rev is an error naming it."""
    import pygit2

    repo = _open(root)
    walker = None
    for rev in revs:
        commit = resolve_commit(root, rev)
        if commit is None:
            raise GitError(f"--rev {rev}: no such branch, tag or commit")
        if walker is None:
            walker = repo.walk(commit, pygit2.enums.SortMode.NONE)
        else:
            walker.push(commit)
    return [str(c.id) for c in walker] if walker is not None else []


def first_parents(root: Path, commit: str) -> Iterator[str]:
    """``commit`` and its first-parent ancestors, newest first."""
    import pygit2

    walker = _open(root).walk(commit, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    for c in walker:
        yield str(c.id)


def commit_info(root: Path, commits: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Commit time and subject line of each commit id."""
    repo = _open(root)
    info = {}
    for commit_id in commits:
        commit = repo[commit_id]
        info[commit_id] = (commit.commit_time, commit.message.split("\n", 1)[0])
    return info


def identity(root: Path) -> str:
    """`Name <email>` of whoever commits here (GIT_AUTHOR_* or git config), for audit fields."""
    try:
        signature = _signature(_open(root), "AUTHOR")
    except KeyError:
        return "unknown"
    return f"{signature.name} <{signature.email}>"
