"""The pre-commit hook: check what is staged before git records it."""

from __future__ import annotations

import sys

from gitml import store
from gitml.check.files import kind_of, parse
from gitml.data import cache_path
from gitml.errors import GitmlError
from gitml.git import git_lines, stage_file, staged_contents
from gitml.repo import Repo
from gitml.tracking.record import shown_in_summary, write_summary

DEFAULT_LARGE_FILE_MB = 10.0


def run(repo: Repo, args: list[str]) -> int:
    """Check the staged files; 0 lets the commit go on.

    Refused: a schema-broken gitml file, a run whose bytes are not in the DVC cache, a large
    file staged straight into git. metrics.toml is refreshed and staged.
    """
    del args  # git passes none
    staged = git_lines(repo.root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR")
    summary = repo.tracking_setting("summary_file")
    ours = [p for p in staged if p.startswith(".gitml/") or p == summary or p.endswith(".dvc")]
    problems = _large_files(repo, staged)
    if ours:  # otherwise the fast path: nothing heavy is imported
        contents = staged_contents(repo.root, ours)
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


def _large_files(repo: Repo, staged: list[str]) -> list[str]:
    limit = _large_file_limit(repo)
    problems = []
    for path in staged:
        if path.startswith(".gitml/") or path.endswith((".dvc", ".gitignore")):
            continue
        try:
            size = (repo.root / path).stat().st_size
        except OSError:
            continue
        if size > limit * 2**20:
            problems.append(
                f"{path}: {size / 2**20:.1f} MB staged straight into git (limit {limit:g} MB, "
                f"[hooks] large_file_mb); track it with DVC instead: "
                f"`git rm --cached {path}` then `dvc add {path}` (or log it with run.log_artifact)"
            )
    return problems


def _large_file_limit(repo: Repo) -> float:
    # Read without compiling the config's schema: this runs on every commit. A staged config
    # change is validated in full by _check_files.
    try:
        raw = store.read_toml(repo.config_path)
    except GitmlError:
        return DEFAULT_LARGE_FILE_MB
    value = raw.get("hooks", {}).get("large_file_mb", DEFAULT_LARGE_FILE_MB)
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_LARGE_FILE_MB


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
