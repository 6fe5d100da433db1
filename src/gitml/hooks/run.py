"""`gitml hook <name>`: what each installed hook does."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError
from gitml.git import git_lines

if TYPE_CHECKING:
    from gitml.repo import Repo


def run_hook(name: str, args: list[str]) -> int:
    """Run one hook; its exit code blocks the git operation for pre-* hooks."""
    from gitml.repo import Repo

    repo = Repo.find()
    if name == "pre-commit":
        from gitml.hooks.pre_commit import pre_commit

        return pre_commit(repo)
    if name == "pre-push":
        return _pre_push(repo)
    if name in ("post-checkout", "post-merge"):
        # git passes (old, new, flag) to post-checkout; the pre-commit framework passes nothing
        # and sets PRE_COMMIT_CHECKOUT_TYPE instead. Flag 1 = a branch checkout, 0 = a file.
        flag = args[2] if len(args) >= 3 else os.environ.get("PRE_COMMIT_CHECKOUT_TYPE", "1")
        branch_switch = name == "post-merge" or flag == "1"
        return _restore_artifacts(repo) if branch_switch else 0
    if name == "post-commit":
        return _post_commit(repo)
    raise GitmlError(f"hook {name!r}: unknown; gitml has {', '.join(_names())}")


_REPO_LOCATING = {
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
}


def _names() -> tuple[str, ...]:
    from gitml.hooks import HOOKS

    return HOOKS


def _pushed_revs() -> list[str]:
    """The commits a push publishes, from the lines git writes to pre-push's stdin.

    Each line is `<local ref> <local sha> <remote ref> <remote sha>`; a deletion's local sha is
    all zeros. The pre-commit framework passes none and names the pushed commit in
    PRE_COMMIT_TO_REF. Without either, HEAD.
    """
    framework = os.environ.get("PRE_COMMIT_TO_REF")  # the pre-commit framework's pre-push
    if framework:
        return [framework]
    if sys.stdin is None or sys.stdin.isatty():
        return ["HEAD"]
    revs = []
    for line in sys.stdin.read().splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[1].strip("0") and fields[1] not in revs:
            revs.append(fields[1])
    return revs or ["HEAD"]


def _pre_push(repo: Repo) -> int:
    """Upload every artifact runs reference before git publishes commits that name them."""
    from gitml.artifacts.sync import MissingArtifactsError, push_runs
    from gitml.audit import audit, describe, in_force

    # Whether a policy was ever committed, not what the working tree says: a commit that
    # deletes [governance] must not switch off the check that judges it.
    if in_force(repo):
        # Branches pushed together share history: each violation once, however many carry it.
        found = (c for rev in _pushed_revs() for c in audit(repo, rev=rev) if c.violation)
        broken = list({(c.commit, c.model): c for c in found}.values())
        if broken:
            message = (f"gitml pre-push: push refused: {describe(broken[0])} "
                       f"({len(broken)} such change(s); `gitml audit` lists them)")  # fmt: skip
            print(message, file=sys.stderr)
            return 1
    has_runs = repo.runs_dir.is_dir() and any(repo.runs_dir.iterdir())
    pointers = git_lines(repo.root, "ls-files", "-z", "*.dvc")
    if not has_runs and not pointers:
        return 0  # fast path: nothing gitml or DVC tracks
    from gitml.artifacts.sync import referenced_objects

    refs = referenced_objects(repo)
    unsafe = _model_findings(repo, refs, pointers)
    if unsafe:
        from gitml.check.findings import refused

        print(f"gitml pre-push: {refused(unsafe, 'push refused', 'git push --no-verify')}",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        report = push_runs(repo, refs=refs)
    except MissingArtifactsError as exc:
        print(f"gitml pre-push: push refused: {exc}", file=sys.stderr)
        return 1
    if report.uploaded:
        print(
            f"gitml pre-push: uploaded {report.uploaded} object(s) to the DVC remote",
            file=sys.stderr,
        )
    return 0


def _model_findings(
    repo: Repo, refs: dict[str, list[tuple[str, str]]], pointers: list[str]
) -> list[Any]:
    """`gitml check`'s model-file findings: what must not leave the machine.

    Every model a run, registry version or `.dvc` pointer names is scanned; scans are cached by
    md5, so a push only scans models it has not seen.
    """
    from gitml.check.core import is_model, model_findings, registry_refs
    from gitml.check.findings import Ref, blocking
    from gitml.data.add import parse_pointer
    from gitml.registry import versions as registry

    models = []
    for md5, uses in refs.items():
        for run, path in uses:
            ref = Ref(md5, 0, repo.relpath(repo.run_dir(run) / "run.toml"), f"run {run}: {path}",
                      Path(path).name)  # fmt: skip
            if is_model(ref):
                models.append(ref)
    for name in registry.names(repo):
        doc = registry.load(repo, name)
        models += registry_refs(repo.relpath(registry.registry_path(repo, name)), doc)
    for pointer in pointers:
        try:
            md5 = parse_pointer((repo.root / pointer).read_text()).get("md5") or ""
        except OSError:
            continue
        ref = Ref(md5, 0, pointer, f"outs {pointer[:-4]}", Path(pointer[:-4]).name)
        if md5 and is_model(ref):
            models.append(ref)
    return blocking(repo, model_findings(repo, models, fetch=False))


def _restore_artifacts(repo: Repo) -> int:
    """After a checkout or merge: put the matching data and model files in place."""
    if not git_lines(repo.root, "ls-files", "-z", "*.dvc"):
        return 0  # fast path: no DVC pointer in this tree
    from gitml.artifacts.sync import checkout_workspace

    # DVC runs git itself: the hook's GIT_DIR/GIT_INDEX_FILE would point it at the wrong place.
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k in _REPO_LOCATING}
    try:
        changed = checkout_workspace(repo.root)
    except GitmlError as exc:
        print(f"gitml: could not restore data and models: {exc}; run `gitml pull`", file=sys.stderr)
        return 0
    finally:
        os.environ.update(env_backup)
    if changed:
        print(f"gitml: restored {changed} data/model file(s) for this commit", file=sys.stderr)
    return 0


def _post_commit(repo: Repo) -> int:
    """Index the new commit's runs: `gitml runs` and `reproduce <commit>` know where they landed."""
    touched = git_lines(repo.root, "diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "HEAD")
    if not any(p.startswith(".gitml/") for p in touched):
        return 0
    from gitml.query.index import RunIndex

    index = RunIndex(repo)
    try:
        index.refresh_history()
    finally:
        index.close()
    return 0
