"""`gitml export parquet`, `gitml runs --sql` and the mlflow-shaped `gitml.runs()`."""

import json

import duckdb
import pandas as pd

import gitml
from tests.helpers import commit_all
from tests.helpers import gitml as gitml_cli


def _history(project):
    """Three runs with step curves: two committed on main, one left in the working tree."""
    ids = []
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        params = {"lr": lr, "opt": "adam", **({"batch": 32 * (i + 1)} if i else {})}
        with gitml.start_run(f"lr-{lr}", params=params) as run:
            if i == 0:
                (project.root / "notes.txt").write_text("lr 0.1\n")
                run.log_artifact("notes.txt")
            for step in range(10 * (i + 1)):
                run.log_metric("loss", 1.0 / (step + 1) + lr, step=step)
            run.log_metric("accuracy", (0.7, 0.8, 0.9)[i])
            run.set_tag("team", "vision")
        ids.append(run.id)
        if i < 2:
            commit_all(project.root, f"run {lr}")
    return ids


def test_export_is_a_hive_dataset_duckdb_reads(project, tmp_path):
    ids = _history(project)
    out = tmp_path / "dataset"
    done = gitml_cli(project.root, "export", "parquet", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 3 runs, 1 artifacts and 63 step metrics to {out}"
    steps = duckdb.sql(
        f"SELECT run_id, count(*) AS n, min(value) AS best FROM "
        f"read_parquet('{out}/steps/*/*.parquet', hive_partitioning=true) "
        f"WHERE name = 'loss' GROUP BY run_id ORDER BY n"
    ).fetchall()
    assert [(r[0], r[1]) for r in steps] == [(ids[0], 10), (ids[1], 20), (ids[2], 30)]
    assert abs(steps[2][2] - (1 / 30 + 0.001)) < 1e-12
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["run_id"]) == ids and runs.columns[0] == "run_id"
    assert list(runs["params.lr"]) == [0.1, 0.01, 0.001]
    assert list(runs["tags.team"]) == ["vision"] * 3
    # typed by what the runs hold: whole numbers stay int64 where one run lacks them, a column
    # no run fills is text (not Arrow's null type), and files are two maps, not a column each
    import pyarrow.parquet as pq

    schema = pq.read_schema(out / "runs.parquet")
    assert str(schema.field("params.batch").type) == "int64"
    assert str(schema.field("command").type) == "string"
    assert str(schema.field("start_time").type) == "timestamp[us, tz=UTC]"
    assert not [n for n in schema.names if n.startswith(("outputs", "inputs"))]
    # files are a long table of their own: run_id, kind, path, md5, size
    files = pq.read_table(out / "artifacts.parquet")
    assert [str(t) for t in files.schema.types] == ["string"] * 4 + ["int64"]
    outputs = duckdb.sql(f"SELECT run_id, path, md5, size FROM '{out}/artifacts.parquet' "
                         "WHERE kind = 'output'").fetchall()  # fmt: skip
    assert [(r[0], r[1]) for r in outputs] == [(ids[0], "notes.txt")]
    assert len(outputs[0][2]) == 32 and outputs[0][3] == len("lr 0.1\n")
    joined = gitml_cli(
        project.root,
        "runs",
        "--format",
        "json",
        "--sql",
        "SELECT r.run_id, a.path FROM runs r JOIN artifacts a USING (run_id)",
    )
    assert json.loads(joined.stdout) == [{"run_id": ids[0], "path": "notes.txt"}], joined.stderr
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.parquet")}
    assert gitml_cli(project.root, "export", "parquet", str(out)).returncode == 0
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.parquet")} == first
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    done = gitml_cli(project.root, "export", "parquet", str(tmp_path / "mine"))
    assert done.returncode == 2 and "holds other files" in done.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_runs_sql(project):
    ids = _history(project)
    done = gitml_cli(project.root, "runs", "--format", "json", "--sql",
                     'SELECT run_id, "params.lr" AS lr, "metrics.accuracy" AS acc FROM runs '
                     "WHERE acc > 0.75 ORDER BY acc DESC")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"run_id": ids[2], "lr": 0.001, "acc": 0.9},
        {"run_id": ids[1], "lr": 0.01, "acc": 0.8},
    ]
    done = gitml_cli(project.root, "runs", "--format", "csv", "--sql",
                     "SELECT r.name, max(s.step) AS last FROM steps s JOIN runs r USING (run_id) "
                     "GROUP BY r.name ORDER BY last")  # fmt: skip
    assert done.stdout.splitlines() == ["name,last", "lr-0.1,9", "lr-0.01,19", "lr-0.001,29"]
    for args, message in [
        (["--sql", "SELEC 1"], "gitml: error: --sql: Parser Error: syntax error at or near"),
        (["--sql", "SELECT 1", "--where", "status == 'finished'"], "gitml: error: --sql: filter"),
    ]:
        done = gitml_cli(project.root, "runs", *args)
        assert done.returncode == 2 and done.stderr.startswith(message), done.stderr


def test_dataframe_is_shaped_like_mlflow_search_runs(project):
    ids = _history(project)
    frame = gitml.runs("params.opt == 'adam' and metrics.accuracy >= 0.8", sort="start_time")
    assert frame.columns[0] == "run_id" and list(frame["run_id"]) == ids[1:]
    for column in ("status", "start_time", "end_time", "params.lr", "metrics.accuracy",
                   "tags.team"):  # fmt: skip
        assert column in frame.columns, column
    assert str(frame["end_time"].dtype).startswith("datetime64")
