"""The pre-commit hook: check what is staged before git records it."""

from __future__ import annotations

import sys

from gitml import store
from gitml.check.files import kind_of, parse
from gitml.data import cache_path
from gitml.errors import GitmlError
from gitml.git import stage_file, staged_contents
from gitml.hooks import gates
from gitml.repo import Repo
from gitml.tracking.record import shown_in_summary, write_summary


def run(repo: Repo, args: list[str]) -> int:
    """Check the staged files; 0 lets the commit go on.

    Refused: a schema-broken gitml file, a run whose bytes are not in the DVC cache, a large
    file staged straight into git. metrics.toml is refreshed and staged.
    """
    del args  # git passes none
    staged = gates.staged_paths(repo)
    summary = repo.tracking_setting("summary_file")
    checked = gates.ours(repo, staged)
    problems = gates.large_files(repo, staged)
    if checked:
        contents = staged_contents(repo.root, checked)
        problems += _check_files(repo, contents, summary)
        if not problems:
            _refresh_summary(repo, contents, summary)
    for problem in problems:
        print(f"gitml pre-commit: {problem}", file=sys.stderr)
    if problems:
        print(
            "gitml pre-commit: commit refused; fix the above, or skip the checks with --no-verify",
            file=sys.stderr,
        )
    return 1 if problems else 0


def _check_files(repo: Repo, contents: dict[str, bytes], summary: str) -> list[str]:
    problems = []
    for path, data in sorted(contents.items()):
        try:
            _check_one(repo, path, data, summary)
        except GitmlError as exc:
            problems.append(str(exc))
    return problems


def _check_one(repo: Repo, path: str, data: bytes, summary: str) -> None:
    """Parse and validate one staged file (as `gitml check` does); its bytes must be cached."""
    kind = kind_of(path, summary)
    if kind is None:
        return
    doc = parse(kind, path, data)
    if kind in ("dvc", "dvc-lock"):
        for out, ref in doc.items():
            if not cache_path(repo.root, ref["md5"]).is_file():
                raise GitmlError(
                    f"{path}: {out} points to md5 {ref['md5'][:8]}, which is not in the DVC "
                    "cache; run `dvc add` or `gitml pull` first"
                )
    elif kind == "run":
        for section in ("inputs", "outputs"):
            for art, ref in doc.get(section, {}).items():
                if not cache_path(repo.root, ref["md5"]).is_file():
                    raise GitmlError(
                        f"{path}: {section[:-1]} {art} (md5 {ref['md5'][:8]}) is not in the DVC "
                        "cache, so this commit could not be reproduced; re-run it, or `gitml pull`"
                    )


def _refresh_summary(repo: Repo, contents: dict[str, bytes], summary: str) -> None:
    """Point metrics.toml at the newest finished run being committed, and stage it.

    Only runs `[tracking] summary_run` / the registry metric let through are candidates
    (`record.shown_in_summary`).
    """
    runs = [
        store.parse_toml(data, source=path)
        for path, data in contents.items()
        if path.startswith(".gitml/runs/") and path.endswith("/run.toml")
    ]
    finished = [r for r in runs if r.get("status") == "finished" and shown_in_summary(repo, r)]
    if not finished:
        return
    newest = max(finished, key=lambda r: r["start_time"])
    current = repo.root / summary
    try:
        current_run = store.read_toml(current).get("run", "")
    except GitmlError:
        current_run = ""
    if current_run > newest["id"]:
        return  # it shows a newer run, not in this commit: leave the working file alone
    if current_run < newest["id"]:
        write_summary(repo, newest)
    stage_file(repo.root, summary)  # in this process: it must die with the hook
