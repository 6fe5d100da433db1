"""What a credential looks like: the one set of rules redaction and `gitml check` share.

A param or tag whose *name* says secret (token, password, key, ...) or whose *value* has the
shape of a well-known credential (cloud keys, forge tokens, private key blocks, JWTs, URLs with
a password) is a secret. Runs redact them when they are logged; `gitml check` finds the ones
that reached a record anyway (imported runs, `[tracking] allow_params`, older records).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

SECRET_NAME = re.compile(
    r"(^|[_\-.])(token|password|passwd|pwd|secret|key|apikey|credentials?|private_key)($|[_\-.])",
    re.IGNORECASE,
)

# Shapes with few false positives: vendor prefixes and fixed lengths, not entropy guesses.
SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        ("AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
        ("GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        ("Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}\b"),
        ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ("Stripe key", r"\b[rs]k_live_[0-9A-Za-z]{20,}\b"),
        ("API secret key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}"),
        ("private key", r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
        ("JSON web token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("password in a URL", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s/@]+"),
    )
)


def secret_kind(name: str, value: Any, *, allowed: tuple[str, ...] | list[str] = ()) -> str | None:
    """Why ``name = value`` looks like a credential, or None.

    Names in ``allowed`` are exempt from the name rule (`[tracking] allow_params`), never from
    the value shapes.
    """
    if value == REDACTED:
        return None
    if isinstance(value, str):
        for kind, pattern in SECRET_VALUES:
            if pattern.search(value):
                return kind
    if name not in allowed and SECRET_NAME.search(name):
        return "a secret's name"
    return None


def redact(values: dict[str, Any], allowed: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """``values`` with every secret (by `secret_kind`) replaced by <redacted>."""
    return {k: REDACTED if secret_kind(k, v, allowed=allowed) else v for k, v in values.items()}


def masked(value: Any) -> str:
    """A secret as it may be shown: its first four characters."""
    text = str(value)
    return f"{text[:4]}..." if len(text) > 8 else "..."
