"""The one exception hierarchy of gitml.

Every user-facing failure is a `GitmlError` whose message is one line naming the file, field,
argument or ref at fault and, where there is one, the command that fixes it. The CLI maps these to
exit code 2 (see `gitml.cli.errors`); third-party errors are translated at the boundary with
``raise ... from exc``.
"""

from __future__ import annotations


class GitmlError(Exception):
    """Root of every error gitml raises on purpose."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line, always: a library's multi-line message (pyarrow's, say) is folded.
        message = " ".join(part.strip() for part in message.strip().splitlines() if part.strip())
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotAGitRepositoryError(GitmlError):
    """The directory is not inside a git repository."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path}: not inside a git repository; run `git init` first or `gitml init --git`"
        )


class NotInitializedError(GitmlError):
    """The git repository has no `.gitml/` project."""

    def __init__(self, root: str) -> None:
        super().__init__(f"{root}: no gitml project here; run `gitml init` first")


class SchemaError(GitmlError):
    """A file or record does not match its JSON Schema."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        where = f"field {field}" if field else "top level"
        super().__init__(f"{source}: {where}: {problem}")
        self.source = source
        self.field = field


class FileFormatError(GitmlError):
    """A file cannot be parsed at all (broken TOML, not Parquet, ...)."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source


class UsageError(GitmlError):
    """A bad argument to a function or command."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument


class WhereSyntaxError(GitmlError):
    """A `--where` expression that cannot be parsed or names an unknown field."""

    def __init__(self, expression: str, problem: str, column: int | None = None) -> None:
        at = f" at column {column}" if column is not None else ""
        super().__init__(f"--where {expression!r}: {problem}{at}")


class RunNotFoundError(GitmlError):
    """No run matches an id or prefix."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"run {ref!r}: no run with this id or prefix; list them with `gitml runs`")


class AmbiguousRunError(GitmlError):
    """A run id prefix matches more than one run."""

    def __init__(self, ref: str, matches: list[str]) -> None:
        shown = ", ".join(matches[:10]) + (" ..." if len(matches) > 10 else "")
        super().__init__(f"run {ref!r}: prefix matches {len(matches)} runs: {shown}")
        self.matches = matches


class RunStateError(GitmlError):
    """An operation on a run that its state does not allow (e.g. logging after end)."""

    def __init__(self, run_id: str, problem: str) -> None:
        super().__init__(f"run {run_id}: {problem}")


class ArtifactError(GitmlError):
    """An input or artifact path that cannot be tracked."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class GitError(GitmlError):
    """A git operation failed (translated from pygit2 or the git CLI)."""


class CommandError(GitmlError):
    """A wrapped command could not be started."""


class UnsafeModelError(GitmlError):
    """A model file names a global outside the allow-list: it is refused before it is loaded."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(
            f"{path}: refusing to load: it names {name}, which is not on the allow-list of what "
            "scikit-learn, numpy, scipy and pandas models import; if the team trusts it, list "
            "it in [check] trusted_types"
        )
        self.path = path
        self.name = name


class ShallowCloneError(GitmlError):
    """A command that reads the whole history, in a clone that has only part of it."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} reads the whole git history, and this clone is shallow: it would answer "
            "on part of it; run `git fetch --unshallow` (GitHub Actions: actions/checkout "
            "with fetch-depth: 0; GitLab CI: GIT_DEPTH: 0)"
        )


class PromotionRefusedError(GitmlError):
    """A promotion refused (not better, findings, a misspelt alias): a check said no, exit 1."""

    exit_code = 1
