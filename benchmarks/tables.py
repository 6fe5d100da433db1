"""Write the benchmark tables of docs/performance.md from benchmarks/results/*.json.

    python benchmarks/tables.py           rewrite every table between its markers
    python benchmarks/tables.py --check   exit 1 if a table differs from its results file

In the page, a table is the text between ``<!-- bench:ID -->`` and ``<!-- /bench:ID -->``; ID is
a table id in one of the results files. Under each table a line says which run produced it.
tests/test_docs.py runs ``--check``, so the docs cannot drift from the figures measured.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "docs" / "performance.md"
MARKED = re.compile(r"(<!-- bench:(?P<id>[a-z0-9_-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=id) -->)",
                    re.S)  # fmt: skip


def tables() -> dict[str, tuple[dict, dict]]:
    """Every table id -> (its table, how it was measured)."""
    found: dict[str, tuple[dict, dict]] = {}
    for path in sorted((HERE / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        for table_id, table in doc["tables"].items():
            if table_id in found:
                raise SystemExit(f"{path.name}: table {table_id!r} is also in another file")
            found[table_id] = (table, {**doc["measured"], "benchmark": doc["benchmark"]})
    return found


SUMMARY = "summary"


def summary() -> tuple[dict, dict] | None:
    """One table of every benchmark's summary lines: gitml / the peer, gitml / the floor."""
    rows, runs, versions, machines = [], [], {}, set()
    for path in sorted((HERE / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        measured = doc["measured"]
        lines = doc.get("summary") or []
        if not lines:
            continue
        runs.append(f"`{path.stem}` {measured['date']} ({measured.get('commit') or 'unknown'}"
                    f"{', quick' if measured.get('quick') else ''})")  # fmt: skip
        versions.update(measured.get("versions", {}))
        machines.add(measured["machine"])
        for line in lines:
            unit = line.get("unit", "s")
            floor = line.get("floor")
            rows.append([
                line["what"], f"{line['gitml']:.3g} {unit}",
                f"{line['peer']} {line['peer_value']:.3g} {unit}",
                f"**{line['gitml'] / line['peer_value']:.2f}**",
                f"{floor} {line['floor_value']:.3g} {unit}" if floor else "",
                f"{line['gitml'] / line['floor_value']:.2f}" if floor else "",
            ])  # fmt: skip
    if not rows:
        return None
    table = {"columns": ["what", "gitml", "compared with", "gitml / it", "the floor",
                         "gitml / floor"], "rows": rows}  # fmt: skip
    tools = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    made = (f"the last full run of each benchmark: {'; '.join(runs)}. "
            f"Machine: {', '.join(sorted(machines))}. Versions: {tools}")  # fmt: skip
    return table, {"source": made}


def render(table: dict, measured: dict) -> str:
    """The Markdown of one table and the line that says where it comes from."""
    lines = ["| " + " | ".join(table["columns"]) + " |",
             "|" + "---|" * len(table["columns"])]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
    how = "`--quick` sizes" if measured.get("quick") else "full sizes"
    source = measured.get("source")
    made = f"{source}" if source else (
        f"`python {measured['benchmark']}`, {how}, {measured['date']}, commit "
        f"{measured.get('commit') or 'unknown'}, {measured['machine']}, Python {measured['python']}"
    )  # fmt: skip
    return "\n".join(lines) + f"\n\n<small>From `benchmarks/results/` ({made}).</small>\n"


def rewrite(text: str, known: dict[str, tuple[dict, dict]]) -> str:
    """The page with every marked table replaced by its rendering."""

    def one(match: re.Match) -> str:
        table_id = match.group("id")
        if table_id not in known:
            raise SystemExit(f"docs/performance.md: no results for table {table_id!r}")
        return match.group(1) + render(*known[table_id]) + match.group(4)

    return MARKED.sub(one, text)


def main(argv: list[str]) -> int:
    known = tables()
    combined = summary()
    if combined is not None:
        known[SUMMARY] = combined
    text = PAGE.read_text()
    marked = {m.group("id") for m in MARKED.finditer(text)}
    unused = sorted(set(known) - marked)
    if unused:
        print(f"results tables not shown in docs/performance.md: {', '.join(unused)}")
        return 1
    new = rewrite(text, known)
    if "--check" in argv:
        if new != text:
            print("docs/performance.md differs from benchmarks/results/; "
                  "run `python benchmarks/tables.py`")  # fmt: skip
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
