"""Everything gitml asks of git, through pygit2 (imported only in this package).

pygit2 is imported lazily inside functions: a hook or `gitml --help` never pays for it. The
package is read as one module, `gitml.git`: `base` (repositories, config, worktrees, plain git
commands), `state` (a run's code state), `history` (what the run index reads), `commits` (the
commits gitml makes).
"""

from gitml.git.base import *  # noqa: F403
from gitml.git.commits import *  # noqa: F403
from gitml.git.history import *  # noqa: F403
from gitml.git.state import *  # noqa: F403
