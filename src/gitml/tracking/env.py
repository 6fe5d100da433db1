"""What a run ran on: Python, platform, the installed packages it imported, its process."""

from __future__ import annotations

import ast
import os
import platform
import socket
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
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
    by_module = metadata.packages_distributions()
    versions: dict[str, str] = {}
    for module in sorted(wanted):
        for dist in by_module.get(module, []):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
    return dict(sorted(versions.items(), key=lambda kv: kv[0].lower()))


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
