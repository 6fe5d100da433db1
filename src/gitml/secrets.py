"""What a credential looks like: the one set of rules redaction and `gitml check` share.

A param or tag is a secret when

- its *value* has the shape of a well-known credential (cloud keys, forge tokens, private key
  blocks, JWTs, URLs with a password), whatever its name;
- its *value* is a high-entropy token (an AWS secret access key under the name ``aws_blob``):
  detect-secrets' Base64HighEntropyString rule and limit (Yelp's detector, maintained, the one
  pre-commit users run), on tokens of 20 characters or more. Pure hex (git SHAs, md5s, data
  hashes) and UUIDs are never judged by entropy: in ML params they are ids, not keys;
- its *name* ends in a secret's word: gitml's (token, password, key, pw, ...) or
  detect-secrets' keyword list (api_?key, db_?pass, passwd, pwd, secret, ...); a name that
  only starts with one (`token_pattern`, `key_column`) names a setting.

Runs redact them when they are logged; `gitml check` finds the ones that reached a record
anyway (imported runs, `[tracking] allow_params`, older records). Names in allow_params are
exempt from the name and entropy rules, never from the credential shapes. detect-secrets is
imported only when a value or name could match (a run of short params never pays for it).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

REDACTED = "<redacted>"

# The secret word ends the name (db.password, hf_token, api_key): `token_pattern`,
# `key_column` and `password_min_length` name settings, not credentials.
SECRET_NAME = re.compile(
    r"(^|[_\-.])(token|password|passwd|pwd|pw|pass|secret|key|apikey|credentials?|private_key)$",
    re.IGNORECASE,
)
_MAYBE_NAME = re.compile(r"pass|pw|key|secret|auth|contra", re.IGNORECASE)  # detect-secrets'
_TOKEN = re.compile(r"[A-Za-z0-9+/\\\-_=]{20,}")  # its base64 charset, 20 characters or more
_HEX = re.compile(r"[0-9a-fA-F]+")
MIN_TOKEN = 20

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

    Names in ``allowed`` are exempt from the name and entropy rules (`[tracking]
    allow_params`), never from the credential shapes.
    """
    if value == REDACTED:
        return None
    if isinstance(value, str):
        for kind, pattern in SECRET_VALUES:
            if pattern.search(value):
                return kind
    if name in allowed:
        return None
    if isinstance(value, str) and len(value) >= MIN_TOKEN and _high_entropy(value):
        return "a high-entropy string"
    if SECRET_NAME.search(name) or (_MAYBE_NAME.search(name) and _keyword(name)):
        return "a secret's name"
    return None


def _high_entropy(value: str) -> bool:
    """A token of ``value`` over detect-secrets' base64 entropy limit (ids excepted)."""
    tokens = [t for t in _pieces(value) if len(t) >= MIN_TOKEN and not _HEX.fullmatch(t)]
    if not tokens:
        return False
    plugin, is_uuid = _detectors()[:2]
    return any(
        not is_uuid(token) and plugin.calculate_shannon_entropy(token) > plugin.entropy_limit
        for token in tokens
    )


def _pieces(value: str) -> list[str]:
    """The tokens of ``value`` entropy is judged on: a path's folders one by one.

    A token with '/' is a path (not base64, whose '/' are few and whose alphabet has no '_'
    or '-') when it starts with '/', holds '_' or '-', or has three slashes or more.
    """
    pieces = []
    for token in _TOKEN.findall(value):
        if "/" in token and (token.startswith("/") or "_" in token or "-" in token
                             or token.count("/") >= 3):  # fmt: skip
            pieces += token.split("/")
        else:
            pieces.append(token)
    return pieces


def _keyword(name: str) -> bool:
    return bool(_detectors()[2].search(name))


@cache
def _detectors() -> tuple[Any, Any, re.Pattern[str]]:
    from detect_secrets.filters.heuristic import is_potential_uuid
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString
    from detect_secrets.plugins.keyword import DENYLIST

    keywords = re.compile("(?:" + "|".join(DENYLIST) + ")$", re.IGNORECASE)
    return Base64HighEntropyString(), is_potential_uuid, keywords


def redact(values: dict[str, Any], allowed: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """``values`` with every secret (by `secret_kind`) replaced by <redacted>."""
    return {k: REDACTED if secret_kind(k, v, allowed=allowed) else v for k, v in values.items()}


def redact_argv(argv: list[str]) -> list[str]:
    """A command line as it may be recorded: secrets in it as <redacted>.

    `--password hunter2`, `--api-key=...` and `-p token=...` by the option's name; any argument
    by the value rules (a key pasted as a positional argument).
    """
    out = list(argv)
    for i, arg in enumerate(argv):
        name, eq, value = arg.lstrip("-").partition("=")
        if eq and secret_kind(name.replace("-", "_"), value):
            out[i] = arg[: len(arg) - len(value)] + REDACTED
        elif secret_kind("", arg):
            out[i] = REDACTED
        elif arg.startswith("-") and not eq and i + 1 < len(argv):
            following = argv[i + 1]
            if not following.startswith("-") and secret_kind(name.replace("-", "_"), following):
                out[i + 1] = REDACTED
    return out


def masked(value: Any) -> str:
    """A secret as it may be shown: its first four characters."""
    text = str(value)
    return f"{text[:4]}..." if len(text) > 8 else "..."
