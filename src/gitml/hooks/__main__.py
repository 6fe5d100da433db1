"""`python -m gitml.hooks <name> [args]`: the installed shims' light entry point (no CLI)."""

import os
import sys

from gitml.errors import GitmlError
from gitml.hooks.run import run_hook
from gitml.session import session


def main() -> int:
    """Run one hook; a failure is one line, and blocks only the pre-* hooks."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        with session():  # one repository handle per hook
            return run_hook(name, sys.argv[2:])
    except GitmlError as exc:
        if os.environ.get("GITML_DEBUG") == "1":
            raise
        print(f"gitml {name}: error: {exc}", file=sys.stderr)
        return 1 if name.startswith("pre-") else 0


sys.exit(main())
