"""What a run ran on: Python, platform, the installed packages it imported, its process."""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import platform
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gitml import __version__


def python_env(module_names: Iterable[str]) -> dict[str, Any]:
    """Python version, platform and the versions of the distributions behind ``module_names``."""
    return {
        "gitml": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(module_names),
    }


def imported_modules() -> set[str]:
    """Top-level names of the modules this process has imported, minus the standard library."""
    tops = {name.partition(".")[0] for name in list(sys.modules)}
    return {t for t in tops if t and not t.startswith("_") and t not in sys.stdlib_module_names}


def script_imports(path: Path) -> set[str]:
    """Top-level modules a Python script imports, read statically (for wrapped commands)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.partition(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names}


def package_versions(module_names: Iterable[str]) -> dict[str, str]:
    """Distribution name -> version for the installed distributions providing these modules."""
    wanted = set(module_names)
    if not wanted:
        return {}
    by_module, installed = installed_packages()
    versions = {dist: installed[dist] for module in wanted for dist in by_module.get(module, [])
                if dist in installed}  # fmt: skip
    return dict(sorted(versions.items(), key=lambda kv: kv[0].lower()))


@functools.cache
def installed_packages() -> tuple[Mapping[str, list[str]], Mapping[str, str]]:
    """Top-level module -> the distributions providing it, and each distribution's version.

    `importlib.metadata.packages_distributions()` reads every installed distribution's file
    list (0.5 s for 238 of them, at every run's end), and importing `importlib.metadata` is
    8 ms more. Both are computed once per environment and kept in the user's cache folder,
    keyed on the interpreter and the modification times of the site-packages folders on
    `sys.path` (installing or removing a package changes its folder's), and once per process.
    """
    key = hashlib.sha256(sys.executable.encode())
    for entry in sys.path:
        if os.path.basename(entry) not in ("site-packages", "dist-packages"):
            continue  # the working folder and the standard library install no distributions
        with contextlib.suppress(OSError):
            key.update(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}\0".encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cached = Path(base) / "gitml" / f"packages-{key.hexdigest()[:20]}.json"
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
        loaded = json.loads(cached.read_text())
        owners = {str(k): [str(d) for d in v] for k, v in loaded["owners"].items()}
        return owners, {str(k): str(v) for k, v in loaded["versions"].items()}
    from importlib import metadata

    owners = {k: list(v) for k, v in metadata.packages_distributions().items()}
    versions: dict[str, str] = {}
    for dist in {d for names in owners.values() for d in names}:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"owners": owners, "versions": versions}))
        os.replace(tmp, cached)
    return owners, versions


def process_info() -> dict[str, Any]:
    """The pid, host and start time: enough to tell later whether it is still alive."""
    info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname()}
    ticks = process_start_ticks(os.getpid())
    if ticks is not None:
        info["start_ticks"] = ticks
    return info


def process_start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_gone(info: Mapping[str, Any]) -> bool:
    """True when the process recorded in ``info`` has certainly ended (same host only)."""
    if info.get("host") != socket.gethostname():
        return False  # another machine's run: we cannot tell
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    if _is_zombie(pid):
        return True
    recorded = info.get("start_ticks")
    # A live pid with another start time is a new process that reused the number.
    return recorded is not None and process_start_ticks(pid) not in (None, recorded)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
