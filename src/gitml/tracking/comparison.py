"""What `gitml reproduce` compares, and how: the checks between a run and its re-run.

Final metrics within a tolerance (per metric from `[metrics.<name>]`, where a metric can also be
marked as not expected to reproduce), step histories step by step, and outputs by md5 or, for
files whose bytes hold save times and ids (skops, PNG), by their content hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gitml import git
from gitml.errors import GitmlError
from gitml.query.indexed import IndexedRun
from gitml.records import RunRecord
from gitml.repo import Repo
from gitml.tracking.journal import PARQUET_NAME, read_parquet


@dataclass(frozen=True)
class Check:
    """One compared quantity: a metric, a step series or an output (by hash or by content)."""

    name: str
    recorded: Any
    reproduced: Any
    ok: bool
    kind: str = "metric"  # metric, series, output
    expected: bool = True  # False: shown, but not part of the verdict (`reproduce = false`)
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """How close a reproduced metric must be: `math.isclose(rel_tol=rtol, abs_tol=atol)`."""

    rtol: float = 1e-9
    atol: float = 0.0

    def same(self, a: Any, b: Any) -> bool:
        """Whether two metric values agree (NaN agrees with NaN)."""
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return bool(a == b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=self.rtol, abs_tol=self.atol)


EXACT = Tolerance()  # the default: floats equal to 1e-9 relative


@dataclass(frozen=True)
class MetricSettings:
    """How each metric is compared: the command's tolerance, `[metrics.<name>]` over it."""

    default: Tolerance
    per_metric: dict[str, dict[str, Any]]

    def tolerance(self, name: str) -> Tolerance:
        """The tolerance for one metric."""
        conf = self.per_metric.get(name, {})
        return Tolerance(
            rtol=float(conf.get("rtol", self.default.rtol)),
            atol=float(conf.get("atol", self.default.atol)),
        )

    def expected(self, name: str) -> bool:
        """False for a metric marked `reproduce = false` (a timing, say)."""
        return bool(self.per_metric.get(name, {}).get("reproduce", True))


def metric_settings(repo: Repo, default: Tolerance) -> MetricSettings:
    """The project's per-metric settings around ``default``."""
    return MetricSettings(default, dict(repo.config.get("metrics", {})))


def compare(old: RunRecord, new: RunRecord, settings: MetricSettings) -> list[Check]:
    """Every recorded metric and output against the reproduction's.

    An output matches by its bytes' md5, or, for a zip-based file (skops) whose bytes carry
    save times and ids, by its content hash.
    """
    checks = []
    for name, value in sorted(old.get("metrics", {}).items()):
        got = new.get("metrics", {}).get(name)
        same = got is not None and settings.tolerance(name).same(value, got)
        expected = settings.expected(name)
        note = "" if expected else "not expected to reproduce"
        checks.append(Check(f"metric {name}", value, got, same, "metric", expected, note))
    for path, ref in sorted(old.get("outputs", {}).items()):
        got_ref = new.get("outputs", {}).get(path)
        got_md5 = got_ref["md5"] if got_ref else None
        content = ref.get("content_md5")
        if got_md5 == ref["md5"]:
            checks.append(Check(f"output {path}", ref["md5"], got_md5, True, "output"))
        elif got_ref and content and content == got_ref.get("content_md5"):
            checks.append(Check(f"output {path}", ref["md5"], got_md5, True, "output",
                                note="same content (its bytes hold save times)"))  # fmt: skip
        else:
            checks.append(Check(f"output {path}", ref["md5"], got_md5, False, "output"))
    return checks


Series = dict[str, list[tuple[int, float]]]


def series_of(repo: Repo, run: IndexedRun | None, record: RunRecord) -> Series:
    """A run's step histories (metric -> [(step, value)]), from its metrics.parquet."""
    path = repo.run_dir(record["id"]) / PARQUET_NAME
    try:
        if run is None or (run.in_workdir and path.is_file()):
            rows = read_parquet(path).rows if path.is_file() else []
        else:
            rel = path.relative_to(repo.root).as_posix()
            rows = read_parquet(rel, git.read_file_at(repo.root, run.commit or "HEAD", rel)).rows
    except GitmlError:
        return {}
    out: Series = {}
    for step, _stamp, value, name in sorted(rows, key=lambda r: (r[3], r[0])):
        out.setdefault(name, []).append((step, value))
    return out


def compare_series(old: Series, new: Series, settings: MetricSettings) -> list[Check]:
    """Every recorded step history of more than one step, step by step."""
    checks = []
    for name, steps in sorted(old.items()):
        if len(steps) < 2:
            continue  # one step is the final value, compared as a metric
        got = dict(new.get(name, []))
        tol = settings.tolerance(name)
        first_bad = next((s for s, v in steps if s not in got or not tol.same(v, got[s])), None)
        extra = sorted(set(got) - {s for s, _ in steps})
        ok = first_bad is None and not extra
        shown: tuple[Any, Any]
        if first_bad is not None:
            note = f"first differs at step {first_bad}"
            shown = (dict(steps)[first_bad], got.get(first_bad))
        elif extra:
            note, shown = f"reproduction has {len(extra)} more step(s)", (len(steps), len(got))
        else:
            note, shown = "", (f"{len(steps)} steps", f"{len(got)} steps")
        checks.append(Check(f"steps {name}", shown[0], shown[1], ok, "series",
                            settings.expected(name), note))  # fmt: skip
    return checks


def compared(checks: list[Check]) -> str:
    """`compared 2 metric(s), 1 step series and 1 output(s) by hash (1 by content)`."""
    counted = [c for c in checks if c.expected]
    kinds = {k: sum(c.kind == k for c in counted) for k in ("metric", "series", "output")}
    by_content = sum(c.kind == "output" and bool(c.note) for c in counted)
    text = (
        f"compared {kinds['metric']} metric(s), {kinds['series']} step series and "
        f"{kinds['output']} output(s) by hash"
    )
    if by_content:
        text += f" ({by_content} by content)"
    ignored = len(checks) - len(counted)
    if ignored:
        text += f"; {ignored} not expected to reproduce"
    return text
