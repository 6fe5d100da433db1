"""`gitml audit`: who changed the registry and its policy, signed by whom, and whether allowed.

The policy lives in `.gitml/config.toml`::

    [governance]
    protected_aliases = ["production"]        # who may move these is checked
    allowed_signers = ".gitml/allowed_signers"  # git's gpg.ssh.allowedSignersFile format

Each commit is judged by the policy in force *before* it: the config and allowed-signers file
of its first parent, read from git, never from the working tree. So a commit cannot switch off
or widen the policy that judges it. Under a policy, a commit must carry a good SSH signature
from a key the previous allowed-signers file lists (checked by `git verify-commit`) when it

- moves a protected alias;
- changes `[governance]` or the allowed-signers file (a policy change is itself protected);

and, whoever signed it, a commit that changes or removes an already registered version (its
md5, path or run) is a violation: versions are append-only, an alias that stays put must keep
serving the same bytes. The commit that first introduces a policy, and everything before it,
are listed but not judged. The pre-push hook runs the same audit and refuses a violation.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from gitml import git, store
from gitml.errors import GitError
from gitml.repo import Repo

CONFIG = ".gitml/config.toml"
MODELS = ".gitml/models"
_VERSION_FIELDS = ("md5", "path", "run")
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Policy:
    """`[governance]` as one commit had it."""

    protected: tuple[str, ...] = ()
    signers: str | None = None  # the allowed-signers file's path
    signers_blob: str | None = None  # and its content's blob id at that commit
    governance: str = ""  # the table, canonically, to tell whether a commit changed it

    @property
    def active(self) -> bool:
        """Whether anything is judged under this policy."""
        return bool(self.protected or self.signers)


@dataclass(frozen=True)
class Change:
    """One commit of a registry file or of the policy, and what it did."""

    model: str
    commit: str
    date: str
    author: str
    message: str
    moved: list[str]  # "production v1 -> v2"
    signer: str | None  # the principal of a good signature, else None
    protected: bool  # judged: it needs an allowed signature
    violation: bool
    edits: list[str] = field(default_factory=list)  # policy changes, edited versions
    reason: str = ""  # why it is a violation


def audit(repo: Repo, names: list[str] | None = None, *, rev: str = "HEAD") -> list[Change]:
    """Every registry and policy commit in ``rev``'s history (of ``names`` only), oldest first.

    A policy that a violating commit put in place never judges later commits: they are
    judged by the policy that commit replaced (so an unsigned widening of the signers does
    not let the newly allowed key move production afterwards).
    """
    changes: list[Change] = []
    replaced: dict[Policy, Policy] = {}  # a policy put in by a violation -> the one before
    for commit in _commits(repo, rev):
        parent = before = _policy_at(repo.root, commit.parent)
        while before in replaced:
            before = replaced[before]
        judged = _judge(repo, commit, before, parent, names)
        if any(c.violation and c.model == "-" for c in judged):
            after = _policy_at(repo.root, commit.sha)
            if after != before:
                replaced.setdefault(after, before)
        changes += judged
    return changes


def in_force(repo: Repo) -> bool:
    """Whether a policy was ever committed (cheap: the pre-push hook asks on every push)."""
    if _policy_at(repo.root, "HEAD").active:
        return True
    found = git.run_git(repo.root, "log", "--format=%H", "-G", r"^\s*\[governance\]", "--", CONFIG)
    return bool(found.strip())


@dataclass(frozen=True)
class _Commit:
    sha: str
    parent: str | None
    date: str
    author: str
    message: str
    paths: tuple[str, ...]


def _commits(repo: Repo, rev: str) -> list[_Commit]:
    """``rev``'s commits touching the registry, the config or any allowed-signers file."""
    paths = [MODELS, CONFIG, *_signer_paths(repo)]
    try:
        out = git.run_git(repo.root, "log", "--reverse", "--diff-merges=first-parent",
                          "--name-only", "--format=%x1e%H%x1f%P%x1f%aI%x1f%an <%ae>%x1f%s",
                          rev, "--", *paths)  # fmt: skip
    except GitError:
        return []  # no commit yet
    commits = []
    for block in out.split("\x1e")[1:]:
        head, _, names = block.partition("\n")
        sha, parents, date, author, subject = head.split("\x1f", 4)
        first = parents.split()[0] if parents.split() else None
        commits.append(_Commit(sha, first, date, author, subject,
                               tuple(n for n in names.splitlines() if n)))  # fmt: skip
    return commits


def _signer_paths(repo: Repo) -> list[str]:
    """Every allowed-signers path any committed config named."""
    paths = set()
    for sha in git.run_git(repo.root, "log", "--format=%H", "--", CONFIG).split():
        signers = _policy_at(repo.root, sha).signers
        if signers:
            paths.add(signers)
    return sorted(paths)


def _judge(
    repo: Repo, commit: _Commit, before: Policy, parent: Policy, names: list[str] | None
) -> list[Change]:
    """What ``commit`` changed (against its ``parent``'s policy), judged by ``before``."""
    found = []
    policy_edits = _policy_edits(repo, commit, parent) if before.active else []
    for path in commit.paths:
        name = _model_name(path)
        if name is None or (names and name not in names):
            continue
        old = _toml_at(repo.root, commit.parent, path)
        new = _toml_at(repo.root, commit.sha, path)
        moved = _moved(old.get("aliases", {}), new.get("aliases", {}))
        edits = _edited_versions(name, old, new) if before.active else []
        found.append(_change(repo, commit, before, name, moved, edits=edits))
    if policy_edits:
        found.append(_change(repo, commit, before, "-", [], edits=policy_edits))
    return found


def _change(repo: Repo, commit: _Commit, before: Policy, model: str, moved: list[str], *,
            edits: list[str]) -> Change:  # fmt: skip
    touches = [m for m in moved if m.split(" ", 1)[0] in before.protected]
    policy_change = any(e.startswith("policy:") for e in edits)
    version_edit = [e for e in edits if not e.startswith("policy:")]
    protected = bool(touches or policy_change)
    signer = _signer(repo.root, commit.sha, before.signers_blob) if before.signers_blob else None
    reason = ""
    if version_edit:
        reason = "edits a registered version (versions are append-only, whoever signs)"
    elif protected and signer is None:
        reason = "is not signed by a signer the previous policy allows"
    return Change(model=model, commit=commit.sha, date=commit.date, author=commit.author,
                  message=commit.message, moved=moved, signer=signer, protected=protected,
                  violation=bool(reason), edits=edits, reason=reason)  # fmt: skip


def _model_name(path: str) -> str | None:
    folder, _, file = path.rpartition("/")
    if folder != MODELS or not file.endswith(".toml"):
        return None
    return file.removesuffix(".toml")


def _policy_edits(repo: Repo, commit: _Commit, before: Policy) -> list[str]:
    after = _policy_at(repo.root, commit.sha)
    edits = []
    if after.governance != before.governance:
        edits.append("policy: [governance] changed" if after.active
                     else "policy: [governance] removed")  # fmt: skip
    if before.signers and _blob(repo.root, commit.sha, before.signers) != before.signers_blob:
        edits.append(f"policy: {before.signers} changed")
    return edits


def _edited_versions(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    kept = {v.get("version"): v for v in new.get("versions", []) if isinstance(v, dict)}
    edits = []
    for version in old.get("versions", []):
        if not isinstance(version, dict):
            continue
        number = version.get("version")
        now = kept.get(number)
        if now is None:
            edits.append(f"{name} v{number} removed")
            continue
        for key in _VERSION_FIELDS:
            if now.get(key) != version.get(key):
                edits.append(f"{name} v{number} {key} {version.get(key)} -> {now.get(key)}")
    return edits


def _moved(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    moved = []
    for alias in sorted(set(before) | set(after)):
        old, new = before.get(alias), after.get(alias)
        if old != new:
            moved.append(f"{alias} {'v' + str(old) if old else 'none'} -> "
                         f"{'v' + str(new) if new else 'none'}")  # fmt: skip
    return moved


@cache
def _policy_at_cached(root: Path, rev: str) -> Policy:
    data = _toml_at(root, rev, CONFIG)
    conf = data.get("governance")
    if not isinstance(conf, dict):
        return Policy()
    protected = conf.get("protected_aliases", [])
    signers = conf.get("allowed_signers")
    signers = signers if isinstance(signers, str) and signers else None
    return Policy(
        protected=tuple(str(a) for a in protected) if isinstance(protected, list) else (),
        signers=signers,
        signers_blob=_blob(root, rev, signers) if signers else None,
        governance=repr(sorted(conf.items())),
    )


def _policy_at(root: Path, rev: str | None) -> Policy:
    if rev is None:
        return Policy()
    if _SHA.fullmatch(rev):  # a parent or a commit from the log: no git process to resolve it
        return _policy_at_cached(root, rev)
    try:
        sha = git.run_git(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}").strip()
    except GitError:
        return Policy()
    return _policy_at_cached(root, sha)


def _toml_at(root: Path, rev: str | None, path: str) -> dict[str, Any]:
    if rev is None:
        return {}
    try:
        data = git.read_file_at(root, rev, path)
    except GitError:
        return {}
    try:
        return store.parse_toml(data, source=f"{rev[:8]}:{path}")
    except Exception:
        return {"governance": {"unreadable": True}} if path == CONFIG else {}


def _blob(root: Path, rev: str, path: str) -> str | None:
    try:
        return git.blob_id(git.read_file_at(root, rev, path))
    except GitError:
        return None


@cache
def _signer(root: Path, commit: str, signers_blob: str) -> str | None:
    """Who signed ``commit``, when git verifies it against that allowed-signers content."""
    ((_, content),) = git.read_blobs(root, [signers_blob])
    with tempfile.NamedTemporaryFile(prefix="gitml-signers-") as signers:
        signers.write(content)
        signers.flush()
        return git.verify_commit(root, commit, Path(signers.name))


def rows(changes: list[Change]) -> list[dict[str, Any]]:
    """The changes as table rows."""
    return [{
        "model": c.model, "commit": c.commit[:8], "date": c.date[:19], "author": c.author,
        "aliases": "; ".join(c.moved) or "-", "edits": "; ".join(c.edits) or "-",
        "signed by": c.signer or "-",
        "policy": "VIOLATION" if c.violation else ("ok" if c.protected else "-"),
        "message": c.message[:60],
    } for c in changes]  # fmt: skip


def describe(change: Change) -> str:
    """One line: what the change did and why it breaks the policy."""
    what = "; ".join(change.moved + change.edits)
    subject = f"{change.model} {what}" if change.model != "-" else what
    return f"{subject} in {change.commit[:8]} {change.reason}"
