"""What a command wrapped by `gitml run` read and wrote, found without the user declaring it.

Written files: the working tree is listed (path, size, mtime) before and after the command, and
every file created or changed is an output. Read files: a Python command gets an audit hook
(`tracking/audit/sitecustomize.py`) that notes each file opened for reading; for any command,
the files its arguments name and those `[tracking] inputs` lists count too. A file that the
command both read and wrote is an output.

The listing skips what is never a run's data: `.git/`, `.gitml/`, `.dvc/`, other hidden folders,
`__pycache__/` and virtual environments (a folder holding `pyvenv.cfg`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gitml.errors import UsageError

READS_FILE_ENV = "GITML_READS_FILE"
AUDIT_DIR = Path(__file__).parent / "audit"
# Never inputs: program code, read by every import.
CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".pyd", ".so", ".pth", ".dll", ".dylib")
# A new folder with more files than this is recorded as one output, as `dvc add` would.
FOLDER_FILES = 20

Listing = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Found:
    """Paths relative to the repository root: read (inputs) and written (outputs)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def list_tree(root: Path) -> Listing:
    """Every data-bearing file under ``root``: relative POSIX path -> (size, mtime in ns)."""
    found: Listing = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        if folder != root and any(e.name == "pyvenv.cfg" for e in entries):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith(".") and entry.name != "__pycache__":
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    rel = Path(entry.path).relative_to(root).as_posix()
                    found[rel] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return found


def child_env(env: dict[str, str], reads_file: Path | None) -> dict[str, str]:
    """``env`` with gitml's `sitecustomize` first on the path (noting reads to ``reads_file``)."""
    out = dict(env)
    path = env.get("PYTHONPATH")
    out["PYTHONPATH"] = str(AUDIT_DIR) + (os.pathsep + path if path else "")
    if reads_file is not None:
        out[READS_FILE_ENV] = str(reads_file)
    return out


def written(before: Listing, after: Listing) -> list[str]:
    """Files created or changed between two listings."""
    return sorted(p for p, stamp in after.items() if before.get(p) != stamp)


def read_paths(reads_file: Path) -> set[str]:
    """The absolute paths the audit hook noted (none if the command was not Python)."""
    try:
        data = reads_file.read_bytes()
    except OSError:
        return set()
    return {p for p in data.decode("utf-8", "surrogateescape").split("\0") if p}


def find(
    root: Path,
    *,
    before: Listing,
    after: Listing,
    reads: Iterable[str],
    skip: Iterable[str],
) -> Found:
    """Inputs and outputs from what the command did; ``skip`` names files never recorded."""
    skipped = set(skip)
    outputs = [p for p in written(before, after) if _recordable(p) and p not in skipped]
    written_set = set(outputs)
    inputs = set()
    real_root = root.resolve()
    for path in reads:
        rel = _inside(real_root, path)
        if rel is None or rel in written_set or rel in skipped or not _recordable(rel):
            continue
        if rel.endswith(CODE_SUFFIXES) or (root / rel).is_symlink():
            continue
        if (root / rel).is_file():
            inputs.add(rel)
    return Found(inputs=tuple(sorted(inputs)), outputs=tuple(_group_folders(outputs, before)))


def _inside(real_root: Path, path: str) -> str | None:
    try:
        rel = Path(os.path.realpath(path)).relative_to(real_root)
    except ValueError:
        return None
    return rel.as_posix()


def _recordable(rel: str) -> bool:
    parts = rel.split("/")
    if any(p.startswith(".") or p in ("__pycache__", "site-packages") for p in parts[:-1]):
        return False
    name = parts[-1]
    # Hidden files are configuration (.dvcignore) or secrets (.env): never a run's data.
    return not (name.startswith(".") or name.endswith((".dvc", ".tmp")) or name in (
        "dvc.lock", "dvc.yaml"))  # fmt: skip


def _group_folders(outputs: list[str], before: Listing) -> list[str]:
    """Many files under a folder that did not exist before become that one folder."""
    existed = {str(parent) for p in before for parent in Path(p).parents}
    by_folder: dict[str, list[str]] = {}
    for path in outputs:
        new_top = next(
            (
                str(a)
                for a in reversed(Path(path).parents)
                if str(a) != "." and str(a) not in existed
            ),
            None,
        )
        by_folder.setdefault(new_top or "", []).append(path)
    grouped: list[str] = []
    for folder, files in by_folder.items():
        if folder and len(files) > FOLDER_FILES:
            grouped.append(folder)
        else:
            grouped.extend(files)
    return sorted(grouped)


def declared(root: Path, paths: Iterable[str], option: str) -> list[str]:
    """``-i``/``-o`` paths (relative to the current directory) as repository paths."""
    out = []
    real_root = root.resolve()
    for path in paths:
        rel = _inside(real_root, os.path.abspath(path))
        if rel is None or rel == ".":
            raise UsageError(f"{option} {path}", f"is not a path inside the repository {root}")
        if rel.split("/")[0] in (".git", ".gitml"):
            raise UsageError(f"{option} {path}", "is inside git's or gitml's own folder")
        out.append(rel)
    return out


def argument_files(root: Path, command: Iterable[str], cwd: Path) -> list[str]:
    """Existing data files the command line names (``--data x.csv``, ``data=x.csv``)."""
    real_root = root.resolve()
    found = []
    for arg in command:
        for piece in (arg, arg.partition("=")[2]):
            if not piece or piece.startswith("-") or len(piece) > 4096:
                continue
            candidate = cwd / piece
            try:
                if not candidate.is_file():
                    continue
            except OSError:
                continue
            rel = _inside(real_root, str(candidate))
            if rel and _recordable(rel) and not rel.endswith(CODE_SUFFIXES):
                found.append(rel)
    return found


def configured_inputs(root: Path, names: Iterable[str]) -> list[str]:
    """`[tracking] inputs` entries that exist."""
    return [n for n in names if isinstance(n, str) and (root / n).is_file()]
