import hashlib
import math

import pyarrow.parquet as pq
import pytest

import gitml
from gitml import data, store
from gitml.errors import ArtifactError, RunStateError, UsageError


def test_context_manager_records_params_metrics_and_finishes(project):
    with gitml.start_run(
        "baseline", params={"lr": 0.1, "opt": {"beta": 0.9}}, tags={"t": 1}
    ) as run:
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1))
        run.log_metrics({"acc": 0.5, "f1": 0.4}, step=7)
    rec = store.read_toml(run.dir / "run.toml", kind="run")
    assert rec["status"] == "finished"
    assert rec["name"] == "baseline"
    assert rec["params"] == {"lr": 0.1, "opt.beta": 0.9}
    assert rec["tags"] == {"t": "1"}
    assert rec["metrics"] == {"acc": 0.5, "f1": 0.4, "loss": pytest.approx(0.2)}
    assert rec["end_time"] >= rec["start_time"]
    assert rec["code"]["commit"] and rec["code"]["branch"] == "main"
    assert rec["env"]["python"] and "pyarrow" in rec["env"]["packages"]
    table = pq.read_table(run.dir / "metrics.parquet")
    assert table.column_names == ["step", "timestamp", "name", "value"]
    loss = [
        (s, v)
        for s, n, v in zip(
            *(table.column(c).to_pylist() for c in ("step", "name", "value")), strict=True
        )
        if n == "loss"
    ]
    assert loss == [(i, pytest.approx(1.0 / (i + 1))) for i in range(5)]
    assert not list(run.dir.glob("*.journal"))
    summary = store.read_toml(project.root / "metrics.toml", kind="metrics-summary")
    assert summary["run"] == run.id and summary["metrics"]["acc"] == 0.5


def test_exception_inside_with_marks_failed_and_reraises(project):
    with pytest.raises(ZeroDivisionError), gitml.start_run() as run:
        run.log_metric("loss", 0.3)
        1 / 0  # noqa: B018
    rec = run.record
    assert rec["status"] == "failed"
    assert rec["error"].startswith("ZeroDivisionError")
    assert rec["metrics"] == {"loss": 0.3}
    assert not (project.root / "metrics.toml").exists(), "a failed run must not become the summary"


def test_plain_call_and_end_with_status(project):
    run = gitml.start_run(name="manual")
    run.log_param("seed", 3)
    run.log_metric("x", 2)
    rec = run.end("crashed")
    assert rec["status"] == "crashed"
    assert rec["metrics"] == {"x": 2.0}
    with pytest.raises(RunStateError, match="has ended"):
        run.log_metric("x", 3)
    with pytest.raises(UsageError, match="status"):
        gitml.start_run().end("done")


def test_param_cannot_change_but_may_repeat(project):
    with gitml.start_run(params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)
        with pytest.raises(UsageError, match=r"param 'lr': already logged as 0.1"):
            run.log_param("lr", 0.2)
        run.set_tag("stage", "a")
        run.set_tags({"stage": "b"})
    assert run.record["tags"] == {"stage": "b"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("loss", "high", "is not a number"),
        ("loss", True, "is not a number"),
        ("loss", None, "is not a number"),
        ("bad\tname", 1.0, "metric name"),
        ("", 1.0, "metric name"),
    ],
    ids=["text", "bool", "none", "tab-in-name", "empty-name"],
)
def test_bad_metric_is_a_clear_error(project, name, value, message):
    with gitml.start_run() as run:
        with pytest.raises(UsageError, match=message):
            run.log_metric(name, value)
        with pytest.raises(UsageError, match="step"):
            run.log_metric("ok", 1.0, step=-1)


def test_nan_and_numpy_values_are_kept(project):
    import numpy as np

    with gitml.start_run() as run:
        run.log_metric("a", float("nan"))
        run.log_metric("b", np.float32(0.5), step=np.int64(3))
        run.log_param("n", np.int64(7))
    rec = run.record
    assert math.isnan(rec["metrics"]["a"]) and rec["metrics"]["b"] == 0.5
    assert rec["params"]["n"] == 7


def test_log_input_and_artifact_hash_and_cache_like_dvc(project):
    (project.root / "data").mkdir()
    payload = b"a,b\n1,2\n" * 1000
    (project.root / "data" / "train.csv").write_bytes(payload)
    (project.root / "model.bin").write_bytes(b"\x00model")
    with gitml.start_run() as run:
        ref = run.log_input("data/train.csv")
        run.log_artifact(project.root / "model.bin")
    md5 = hashlib.md5(payload).hexdigest()
    assert ref == {"md5": md5, "size": len(payload)}
    rec = run.record
    assert rec["inputs"] == {"data/train.csv": {"md5": md5, "size": len(payload)}}
    assert rec["outputs"]["model.bin"]["md5"] == hashlib.md5(b"\x00model").hexdigest()
    assert data.cache_path(project.root, md5).read_bytes() == payload


def test_log_input_outside_repo_or_missing_is_an_error(project, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x")
    with gitml.start_run() as run:
        with pytest.raises(ArtifactError, match="outside the repository"):
            run.log_input(outside)
        with pytest.raises(ArtifactError, match="no such file"):
            run.log_input("missing.csv")


def test_not_initialised_repository_is_a_clear_error(tmp_path, monkeypatch):
    from tests.helpers import git

    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gitml.GitmlError, match="run `gitml init` first"):
        gitml.start_run()
