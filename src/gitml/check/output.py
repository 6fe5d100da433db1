"""A check report as lines for a terminal, as JSON, or as SARIF 2.1.0 for code scanning.

SARIF is written as plain dicts: the log is small, and tests validate it against the SARIF 2.1.0
JSON Schema, which is what GitHub code scanning checks on upload. Each result is located in the
repository file that holds or references the problem (a run.toml, a registry file, a `.dvc`
pointer), at the line naming the object when it is known, so the finding shows on the PR diff.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gitml import __version__
from gitml.check.findings import RULES, Finding, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_COUNTED = (("files", "file(s)"), ("runs", "run(s)"), ("artifacts", "artifact(s)"),
            ("model_files", "model file(s)"))  # fmt: skip


def table(report: Report) -> str:
    """One line per finding (``file:line: level: message [rule]``), then a summary line."""
    lines = []
    for f in report.findings:
        if f.suppressed is not None:
            continue  # counted in the summary; --format json lists them with their reasons
        where = f"{f.file}:{f.line}" if f.line else f.file
        at = f" (commit {f.commit[:10]})" if f.commit else ""
        lines.append(f"{where}{at}: {f.level}: {f.message} [{f.rule}]")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def summary(report: Report) -> str:
    """The closing line: findings by level, and what was looked at."""
    c = report.counts
    looked = ", ".join(f"{c[k]} {label}" for k, label in _COUNTED if k in c)
    if "parsed" in c:
        parsed = f" file(s) ({c['parsed']} parsed, the rest unchanged)"
        looked = looked.replace(" file(s)", parsed, 1)
    if "hashed" in c:
        looked += f"; {c['hashed']} object(s) hashed, {c['hash_cache_hits']} unchanged since the "
        looked += "last check (hash cache)"
    if c.get("remote_only"):
        looked += f"; {c['remote_only']} only in the remote"
    shown = [f for f in report.findings if f.suppressed is None]
    levels = [f"{sum(f.level == lv for f in shown)} {lv}(s)" for lv in ("error", "warning", "note")]
    if len(shown) < len(report.findings):
        levels.append(f"{len(report.findings) - len(shown)} accepted by [check] ignore")
    verdict = "FAILED" if report.failed else "ok"
    return f"gitml check {report.target}: {verdict}: {', '.join(levels)}; checked {looked}"


def as_json(report: Report) -> str:
    """The report as one JSON document."""
    doc = {"target": report.target, "failed": report.failed, "counts": report.counts,
           "findings": [f.to_json() for f in report.findings]}  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def sarif(report: Report) -> str:
    """The report as a SARIF 2.1.0 log with one run of the gitml tool."""
    rule_ids = list(RULES)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gitml",
                "semanticVersion": __version__,
                "rules": [_rule(rule) for rule in rule_ids],
            }},
            "automationDetails": {"id": "gitml-check/"},
            "invocations": [{"executionSuccessful": True}],
            "results": [_result(f, rule_ids.index(f.rule)) for f in report.findings],
            "properties": {"target": report.target, "counts": report.counts},
        }],
    }  # fmt: skip
    return json.dumps(log, indent=2) + "\n"


def _rule(rule: str) -> dict[str, Any]:
    level, text = RULES[rule]
    name = "".join(part.capitalize() for part in rule.split("-"))
    tags = ["security"] if rule in ("unsafe-pickle", "unscannable-model", "untrusted-skops-type",
                                    "secret", "artifact-corrupt") else ["reliability"]  # fmt: skip
    return {
        "id": rule,
        "name": name,
        "shortDescription": {"text": text.split(";")[0].rstrip(".") + "."},
        "fullDescription": {"text": text},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": ["ml-assets", *tags]},
    }


def _result(f: Finding, index: int) -> dict[str, Any]:
    identity = "\0".join((f.rule, f.file, f.subject, f.detail))
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": f.level,
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": f.line or 1},
        }}],
        "partialFingerprints": {"gitmlFinding/v1": hashlib.sha256(identity.encode()).hexdigest()},
    }  # fmt: skip
    properties = {k: v for k, v in (("subject", f.subject), ("detail", f.detail),
                                    ("commit", f.commit)) if v}  # fmt: skip
    if properties:
        result["properties"] = properties
    if f.suppressed is not None:  # code scanning shows it as dismissed, with the reason
        result["suppressions"] = [{"kind": "external", "justification": f.suppressed}]
    return result


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt``: table, json or sarif."""
    return {"table": table, "json": as_json, "sarif": sarif}[fmt](report)
