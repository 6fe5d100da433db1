"""What `gitml check` finds: the rules, a finding, a report, and which findings block.

The finding model every check and every guard shares (`check.core` walks a revision and makes
findings; `check.guard` judges one registry version for promote and serve). `[check] ignore`
accepts findings by rule, file, subject and detail; what is left and is an error blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from gitml.repo import Repo

LEVELS = ("error", "warning", "note")


# rule -> (level, what it means): the SARIF rules and docs/guide/check.md's table come from here
RULES: dict[str, tuple[str, str]] = {
    "schema": ("error", "A gitml or DVC file does not parse or does not match its JSON Schema."),
    "record-integrity": ("error", "Records disagree: an alias names no version, a code.patch "
                                  "does not match its recorded hash, a registered run is gone."),
    "artifact-missing": ("error", "An artifact a record references is in neither the DVC "
                                  "cache nor the DVC remote."),
    "artifact-corrupt": ("error", "A DVC cache object's bytes do not hash to the md5 recorded "
                                  "for them."),
    "unsafe-pickle": ("error", "Loading the model file would import a global outside the "
                               "allow-list of what scikit-learn, numpy, scipy and pandas "
                               "models import, and not in [check] trusted_types."),
    "unscannable-model": ("error", "The model file cannot be read statically, so it cannot be "
                                   "shown safe to load."),
    "untrusted-skops-type": ("warning", "A skops model needs a type that is neither trusted by "
                                        "skops nor listed in [check] trusted_types."),
    "environment-mismatch": ("warning", "A registered model was trained with another "
                                        "major.minor of a package that changes unpickled "
                                        "models (scikit-learn, numpy, pandas) than serving has."),
    "environment-unknown": ("note", "A registered model's run recorded no package versions, "
                                    "so its training environment cannot be compared."),
    "secret": ("error", "A param or tag value looks like a credential; it is in git history "
                        "once committed."),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem: which rule, in which repository file, about what, in one line."""

    rule: str
    file: str  # the repository file that holds or references the problem
    message: str
    subject: str = ""  # what inside the file: "wine v2", "run 20261123T...", "outs data.csv"
    detail: str = ""  # the offending global, md5, field or package
    line: int | None = None
    commit: str | None = None  # with --all-history: a commit that wrote the file
    blob: str | None = None
    suppressed: str | None = None  # the reason, when `[check] ignore` accepts it

    @property
    def level(self) -> str:
        """error, warning or note (from its rule)."""
        return RULES[self.rule][0]

    @property
    def fails(self) -> bool:
        """Whether it makes the check fail: errors and warnings the team did not accept."""
        return self.level != "note" and self.suppressed is None

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object."""
        out = {"rule": self.rule, "level": self.level, "file": self.file, "line": self.line,
               "subject": self.subject, "detail": self.detail, "message": self.message,
               "commit": self.commit, "suppressed": self.suppressed}  # fmt: skip
        return {k: v for k, v in out.items() if v not in (None, "")}


@dataclass
class Report:
    """What a check found and what it looked at."""

    target: str  # "working tree", a commit id, or "all history"
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when a finding makes the check fail (exit 1)."""
        return any(f.fails for f in self.findings)


@dataclass(frozen=True)
class Ref:
    """A record's reference to an artifact: which file names it, for what, by which md5."""

    md5: str
    size: int
    file: str
    subject: str
    name: str = ""  # the artifact's file name (model files: how it is read)
    fmt: str = ""  # a model's format, when the record says
    blob: str | None = None
    registry: bool = False  # a registry version (named first when one object has many refs)


def accepted(repo: Repo, findings: list[Finding]) -> list[Finding]:
    """``findings``, those `[check] ignore` accepts marked suppressed (with its reason)."""
    rules = repo.config.get("check", {}).get("ignore", [])
    if not rules:
        return findings

    def reason(f: Finding) -> str | None:
        for rule in rules:
            if (
                rule["rule"] == f.rule
                and fnmatchcase(f.file, rule.get("file", "*"))
                and all(rule.get(k) in (None, getattr(f, k)) for k in ("subject", "detail"))
            ):
                return str(rule["reason"])
        return None

    return [replace(f, suppressed=reason(f)) for f in findings]


def blocking(repo: Repo, findings: list[Finding]) -> list[Finding]:
    """The findings that stop a push, a promotion or a load: failing and not accepted."""
    return [f for f in accepted(repo, findings) if f.fails]


def refused(findings: list[Finding], what: str, flag: str) -> str:
    """The one line that says why ``what`` is refused, and how to go ahead anyway."""
    first = findings[0]
    text = first.message
    rest = text.removeprefix(first.subject) if first.subject else text
    if rest.startswith(": "):  # "wine v2: ...": ``what`` names it already
        text = rest[2:]
    elif rest.startswith(" (") and "): " in rest:  # "wine v2 (model.pkl, md5 ...): ..."
        text = rest.split("): ", 1)[1]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return (f"{what}: {text} [{first.rule}]{more}; `gitml check` lists the findings, "
            f"{flag} goes ahead anyway")  # fmt: skip


def once(findings: list[Finding]) -> list[Finding]:
    """One finding per problem, where versions of a file repeat it.

    A registry file's history holds every version's params again in each commit. History is
    listed newest first, so the last version kept is the oldest: where the problem came in.
    """
    kept: dict[tuple[str, ...], Finding] = {}
    for f in findings:
        kept[(f.rule, f.file, f.subject, f.detail, f.message)] = f
    return list(kept.values())


TRUSTABLE = ("unsafe-pickle", "untrusted-skops-type")


SCAN_RULES = ("unsafe-pickle", "unscannable-model", "untrusted-skops-type")
