"""`gitml hooks install/uninstall`: wire gitml's hooks in without clobbering foreign ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gitml import git, store
from gitml.errors import GitmlError
from gitml.git import HOOKS, MARKER


def template_dir() -> Path:
    """Where the hook scripts live: inside the wheel, or `hooks/` at the top of a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "hook_scripts"
    return packaged if packaged.is_dir() else here.parents[1] / "hooks"


def is_ours(path: Path) -> bool:
    """Whether ``path`` is a hook gitml installed."""
    try:
        return MARKER in path.read_text(errors="replace")[:300]
    except OSError:
        return False


def install(root: Path) -> list[str]:
    """Install every gitml hook; a foreign hook is kept as `<name>.legacy` and still runs first."""
    folder = git.hooks_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in HOOKS:
        target, legacy = folder / name, folder / f"{name}.legacy"
        text = (template_dir() / name).read_text().replace("@INSTALL_PYTHON@", sys.executable)
        if target.exists() and not is_ours(target):
            if legacy.exists():
                raise GitmlError(
                    f"{target}: a foreign hook is here and {legacy.name} exists too; move one away"
                )
            os.replace(target, legacy)
            changed.append(f"kept your {name} hook as {legacy.name} (it still runs first)")
        if target.exists() and target.read_text() == text:
            continue
        store.atomic_write(target, text.encode())
        target.chmod(0o755)
        changed.append(f"installed the {name} hook")
    return changed


def uninstall(root: Path) -> list[str]:
    """Remove gitml's hooks and put back any hook they had replaced."""
    folder = git.hooks_dir(root)
    changed = []
    for name in HOOKS:
        target, legacy = folder / name, folder / f"{name}.legacy"
        if target.exists() and is_ours(target):
            target.unlink()
            changed.append(f"removed the {name} hook")
        if legacy.exists() and not target.exists():
            os.replace(legacy, target)
            changed.append(f"restored your {name} hook")
    return changed
