"""The SQL pre-filter of `--where` never drops a run the Python predicate would keep.

Random rows of mixed kinds (numbers, text, booleans, lists, NaN, infinity, missing fields) go
into a real SQLite table as the index stores them; random expressions are compiled both ways.
Every row the predicate accepts must pass the SQL clause, and the clause must leave rows out
often enough to be worth having.
"""

import json
import random
import sqlite3

import gitml
from gitml.errors import WhereSyntaxError
from gitml.query.where import compile_where
from gitml.query.where_sql import prefilter
from tests.helpers import gitml as gitml_cli

FIELDS = ["metrics.acc", "params.depth", "params.model", "tags.team", "name", "params.a.b"]
VALUES = [0, 1, 5, 2.5, -3, 0.9, True, False, "rf", "gbm", "5", "", "é", [1, 2],
          float("nan"), float("inf"), None]  # fmt: skip
LITERALS = ["0", "1", "5", "2.5", "-3", "0.9", "true", "'rf'", "'5'", "''", "'é'", "1e400"]
OPS = ["==", "=", "!=", "<", "<=", ">", ">=", "<>"]


def _row(rng):
    row = {"id": f"r{rng.random()}", "status": rng.choice(["finished", "crashed"])}
    for field in FIELDS:
        if rng.random() < 0.8:
            row[field] = rng.choice(VALUES)
    return row


def _comparison(rng):
    field = rng.choice(FIELDS)
    name = 'params["a.b"]' if field == "params.a.b" else field
    kind = rng.random()
    if kind < 0.15:
        items = ", ".join(rng.sample(LITERALS, rng.randint(1, 3)))
        return f"{name} {rng.choice(['in', 'not in'])} ({items})"
    if kind < 0.3:
        return f"{rng.choice(LITERALS)} {rng.choice(OPS)} {name}"
    if kind < 0.35:
        return f"0 < {name} < 5"
    return f"{name} {rng.choice(OPS)} {rng.choice(LITERALS)}"


def _expression(rng, depth=0):
    if depth < 2 and rng.random() < 0.45:
        joiner = rng.choice([" and ", " or ", " AND "])
        parts = [_expression(rng, depth + 1) for _ in range(rng.randint(2, 3))]
        text = joiner.join(f"({p})" for p in parts)
        return f"not ({text})" if rng.random() < 0.15 else text
    return _comparison(rng)


def test_the_prefilter_keeps_every_row_the_predicate_keeps():
    rng = random.Random(21)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE b(row TEXT, strict INTEGER)")
    rows = [_row(rng) for _ in range(400)]
    for row in rows:
        try:
            db.execute("INSERT INTO b VALUES(?, 1)", (json.dumps(row, allow_nan=False),))
        except ValueError:
            db.execute("INSERT INTO b VALUES(?, 0)", (json.dumps(row),))
    expressions = pushed = narrowed = 0
    for _ in range(600):
        expression = _expression(rng)
        expressions += 1
        try:
            predicate = compile_where(expression)
        except WhereSyntaxError:  # metrics compared with text: refused before any query
            continue
        clause = prefilter(expression)
        if clause is None:
            continue
        pushed += 1
        sql, args = clause
        passing = {r for (r,) in db.execute(f"SELECT rowid FROM b WHERE {sql}", args)}
        kept = {i + 1 for i, row in enumerate(rows) if predicate(row)}
        assert kept <= passing, (expression, sorted(kept - passing)[:3])
        narrowed += len(passing) < len(rows)
    print(f"\n{expressions} expressions, {pushed} pushed to SQL, {narrowed} narrowed the rows")
    assert expressions == 600 and pushed >= 250 and narrowed >= 200


def test_a_filtered_query_warns_of_a_broken_record_and_answers_for_the_rest(project):
    root = project.root
    ids = {}
    for name, depth in (("shallow", 1), ("mid", 3), ("deep", 5), ("broken", 4)):
        with gitml.start_run(name, params={"d": depth}) as run:
            run.log_metric("loss", 1 / depth)
        ids[name] = run.id
    (root / ".gitml" / "runs" / ids["broken"] / "run.toml").write_text("not = [valid\n")
    done = gitml_cli(root, "runs", "--where", "params.d >= 3", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert f"skipping run {ids['broken']}" in done.stderr
    assert sorted(r["name"] for r in json.loads(done.stdout)) == ["deep", "mid"]


def test_a_query_started_before_the_refresh_is_dropped_when_the_refresh_wrote(tmp_path):
    import sqlite3

    from gitml.query.prefetch import Prefetch

    path = tmp_path / "index.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t(x)")
    db.execute("INSERT INTO t VALUES(1)")
    kept = Prefetch(path, "SELECT x FROM t", [])
    assert kept.rows() == [(1,)], "nothing committed since: the rows stand"
    dropped = Prefetch(path, "SELECT x FROM t", [])
    dropped._thread.join()  # the query has run; now the refresh writes
    db.execute("INSERT INTO t VALUES(2)")
    assert dropped.rows() is None


def test_an_edit_between_two_filtered_queries_is_seen(project):
    with gitml.start_run("edited", params={"d": 1}) as run:
        run.log_metric("acc", 0.5)
    assert gitml_cli(project.root, "runs", "-w", "metrics.acc > 0.9", "-f", "json").stdout == "[]\n"
    record = project.root / ".gitml" / "runs" / run.id / "run.toml"
    record.write_text(record.read_text().replace("acc = 0.5", "acc = 0.95"))
    done = gitml_cli(project.root, "runs", "-w", "metrics.acc > 0.9", "-f", "json")
    assert [r["name"] for r in json.loads(done.stdout)] == ["edited"], done.stderr
