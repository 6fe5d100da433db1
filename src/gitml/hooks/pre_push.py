"""pre-push: refuse a push that breaks the model policy or would ship unsafe models; upload data.

Branches pushed together share history, so each violation is reported once. Every artifact the
pushed runs reference goes to the DVC remote before git publishes commits that name it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gitml.artifacts.sync import MissingArtifactsError, push_runs, referenced_objects
from gitml.audit import audit, describe, in_force
from gitml.check.core import is_model, model_findings, registry_refs
from gitml.check.findings import Ref, blocking, refused
from gitml.data.add import parse_pointer
from gitml.git import git_lines
from gitml.registry import versions as registry
from gitml.repo import Repo


def run(repo: Repo, args: list[str]) -> int:
    """Upload every artifact runs reference before git publishes commits that name them."""
    del args  # git passes the remote's name and URL; the pushed refs come on stdin
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

    refs = referenced_objects(repo)
    unsafe = _model_findings(repo, refs, pointers)
    if unsafe:
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


def _model_findings(
    repo: Repo, refs: dict[str, list[tuple[str, str]]], pointers: list[str]
) -> list[Any]:
    """`gitml check`'s model-file findings: what must not leave the machine.

    Every model a run, registry version or `.dvc` pointer names is scanned; scans are cached by
    md5, so a push only scans models it has not seen.
    """
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
