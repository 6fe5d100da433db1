"""Git hooks: installed shims call `gitml hook <name>`, which runs the checks here.

Every hook has a fast path that imports nothing heavy when the git operation touches no gitml
file, so a plain commit pays only for Python's start-up.
"""

from gitml.git import HOOKS, MARKER

__all__ = ["HOOKS", "MARKER"]
