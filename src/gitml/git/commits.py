"""Commits gitml makes itself (registry changes): atomic, signed like the user's, hooks run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitml import logs
from gitml.errors import GitError
from gitml.git.base import _git_env, _open, hooks_dir, run_git
from gitml.store import atomic_write, locked, safe_target

log = logs.get(__name__)


def commit(root: Path, paths: Iterable[str], message: str) -> str:
    """Stage ``paths`` and commit through pygit2, running the repository's hooks as git would.

    pygit2 runs no hooks, so this runs pre-commit (a refusal aborts: nothing is committed) and
    commit-msg before writing the commit, and post-commit after it. gitml's own checks, a hook
    the user had, and a pre-commit framework install all see the commits gitml makes.
    Returns the new commit id.
    """
    import pygit2

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
    """`commit_files` of one file."""
    return commit_files(root, {path: data}, message)


def commit_files(root: Path, files: dict[str, bytes], message: str) -> str:
    """Commit ``files`` (path -> bytes) on HEAD, then make the working files and index match.

    The commit comes first: built from HEAD's tree (never from the working tree or the index,
    so nothing else the user staged rides along), checked by the pre-commit and commit-msg
    hooks on a temporary index, and the branch moved with compare-and-swap (`git update-ref
    <new> <old>`). Only then are the working file and the index updated. A process killed
    before the ref moves leaves the old committed state untouched; one killed after it leaves
    a note in ``.git/`` that `settle` (run by every registry command) finishes from.
    """
    import pygit2

    repo = _open(root)
    with locked(Path(repo.path) / "gitml-commit.lock", timeout=120):
        _settle_locked(root, repo)
        try:
            oid = _commit_file(root, repo, files, message)
        except pygit2.GitError as exc:
            raise GitError(f"cannot commit {', '.join(files)}: {exc}") from exc
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

    with locked(Path(repo.path) / "gitml-commit.lock", timeout=120):
        _settle_locked(root, repo)


def _commit_file(root: Path, repo: Any, files: dict[str, bytes], message: str) -> str:

    import pygit2

    parent = None if repo.head_is_unborn else str(repo.head.target)
    index_file = Path(repo.path) / f"gitml-index.{os.getpid()}"
    try:
        index = pygit2.Index(str(index_file))
        if parent is not None:
            index.read_tree(repo[parent].tree)
        for path, data in files.items():
            entry = pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB)
            index.add(entry)
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
        raise GitError(f"nothing to commit: {', '.join(files)} unchanged")
    oid = str(_create_commit(repo, message_file.read_text(), tree, parent))
    branch = _branch_ref(repo)
    pending = Path(repo.path) / PENDING
    pending.write_text(json.dumps({"commit": oid, "parent": parent, "ref": branch}))
    try:
        run_git(root, "update-ref", "-m", f"commit: {message.splitlines()[0]}", branch, oid,
                parent or "0" * 40)  # fmt: skip
    except GitError:
        pending.unlink(missing_ok=True)
        raise GitError(
            f"{branch} moved while {', '.join(files)} was committed; try again"
        ) from None
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
        log.info("%s", output)


def identity(root: Path) -> str:
    """`Name <email>` of whoever commits here (GIT_AUTHOR_* or git config), for audit fields."""
    try:
        signature = _signature(_open(root), "AUTHOR")
    except KeyError:
        return "unknown"
    return f"{signature.name} <{signature.email}>"
