"""`gitml audit`: who moved which alias, when, signed or not, and whether the policy allowed it.

The policy lives in `.gitml/config.toml`::

    [governance]
    protected_aliases = ["production"]        # who may move these is checked
    allowed_signers = ".gitml/allowed_signers"  # git's gpg.ssh.allowedSignersFile format

A commit that moves a protected alias must carry a good SSH signature from a key in the allowed
signers file, checked by git itself (`git verify-commit` with that file). Changes made before
the commit that introduced the policy, and changes to other aliases, are listed but not judged.
The pre-push hook runs the same check and refuses to push a violation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitml import git, registry, store
from gitml.errors import GitError, UsageError
from gitml.repo import Repo


@dataclass(frozen=True)
class Change:
    """One commit of a registry file, and what it did to the aliases."""

    model: str
    commit: str
    date: str
    author: str
    message: str
    moved: list[str]  # "production v1 -> v2"
    signer: str | None  # the principal of a good signature, else None
    protected: bool
    violation: bool


def policy(repo: Repo) -> tuple[list[str], str | None]:
    """(protected aliases, allowed signers file) from `[governance]`."""
    conf = repo.config.get("governance", {})
    signers = conf.get("allowed_signers")
    if signers and not (repo.root / signers).is_file():
        raise UsageError("[governance] allowed_signers", f"{signers}: no such file")
    return list(conf.get("protected_aliases", [])), signers


def audit(repo: Repo, names: list[str] | None = None) -> list[Change]:
    """Every registry commit of ``names`` (all models when None), oldest first, judged."""
    protected, signers = policy(repo)
    since = _policy_commit(repo) if protected else None
    changes = []
    for name in names or registry.names(repo):
        rel = registry.registry_path(repo, name).relative_to(repo.root).as_posix()
        for row in reversed(registry.history(repo, name)):
            moved = _moved(repo, row["commit"], rel)
            judged = since is not None and _descends(repo, row["commit"], since)
            touches = [m for m in moved if m.split(" ", 1)[0] in protected] if judged else []
            signer = _signer(repo, row["commit"], signers) if signers else None
            changes.append(Change(
                model=name, commit=row["commit"], date=row["date"], author=row["author"],
                message=row["message"], moved=moved, signer=signer, protected=bool(touches),
                violation=bool(touches) and signer is None,
            ))  # fmt: skip
    return changes


def _policy_commit(repo: Repo) -> str | None:
    """The oldest commit whose config holds the policy: older changes are not judged by it."""
    rel = repo.config_path.relative_to(repo.root).as_posix()
    for commit in reversed(git.run_git(repo.root, "log", "--format=%H", "--", rel).split()):
        try:
            text = git.read_file_at(repo.root, commit, rel).decode(errors="replace")
        except GitError:
            continue
        if "protected_aliases" in text:
            return commit
    return None  # not committed yet: nothing in history was made under it


def _descends(repo: Repo, commit: str, since: str) -> bool:
    import subprocess

    done = subprocess.run(["git", "merge-base", "--is-ancestor", since, commit], cwd=repo.root,
                          capture_output=True, check=False)  # fmt: skip
    return done.returncode == 0


def _aliases_at(repo: Repo, rev: str, rel: str) -> dict[str, Any]:
    try:
        data = git.read_file_at(repo.root, rev, rel)
    except GitError:
        return {}
    try:
        return dict(store.parse_toml(data, source=f"{rev[:8]}:{rel}").get("aliases", {}))
    except Exception:
        return {}


def _moved(repo: Repo, commit: str, rel: str) -> list[str]:
    after = _aliases_at(repo, commit, rel)
    before = _aliases_at(repo, f"{commit}^", rel)
    moved = []
    for alias in sorted(set(before) | set(after)):
        old, new = before.get(alias), after.get(alias)
        if old != new:
            moved.append(f"{alias} {'v' + str(old) if old else 'none'} -> "
                         f"{'v' + str(new) if new else 'none'}")  # fmt: skip
    return moved


def _signer(repo: Repo, commit: str, signers: str) -> str | None:
    """Who signed ``commit``, when git verifies it against the allowed signers file."""
    import subprocess

    done = subprocess.run(
        ["git", "-c", f"gpg.ssh.allowedSignersFile={repo.root / signers}", "verify-commit",
         commit],
        cwd=repo.root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return None
    for line in done.stderr.splitlines():
        if line.startswith('Good "git" signature for '):
            return line.removeprefix('Good "git" signature for ').split(" with ", 1)[0]
    return None


def rows(changes: list[Change]) -> list[dict[str, Any]]:
    """The changes as table rows."""
    return [{
        "model": c.model, "commit": c.commit[:8], "date": c.date[:19], "author": c.author,
        "aliases": "; ".join(c.moved) or "-", "signed by": c.signer or "-",
        "policy": "VIOLATION" if c.violation else ("ok" if c.protected else "-"),
        "message": c.message[:60],
    } for c in changes]  # fmt: skip
