"""`gitml import mlflow` against stores written by the real mlflow package, field by field."""

import os
import time
from pathlib import Path

import pandas as pd
import pytest

import gitml
from gitml.export import steps_frame
from gitml.registry.versions import load as load_registry
from tests.helpers import commit_all, git
from tests.helpers import gitml as gitml_cli
from tests.http.test_serve import Server

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _make_store(uri, runs, steps):
    """``runs`` runs over two experiments, ``steps`` loss steps each, two registered models."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    X, y = load_iris(return_X_y=True)
    # Artifacts beside the store: a sqlite store's default is ./mlruns in the current folder.
    artifacts = Path(uri.removeprefix("sqlite:///").removeprefix("file://")).parent
    experiments = [client.create_experiment(name, artifact_location=(artifacts / name).as_uri(),
                                            tags={"owner": f"{name}-team"})
                   for name in ("vision", "tabular")]  # fmt: skip
    base = int(time.time() * 1000) - 10_000_000
    for i in range(runs):
        team = {"team": "ml" if i % 3 else "data"}
        run = client.create_run(experiments[i % 2], start_time=base + i * 1000,
                                run_name=f"run-{i}", tags=team)  # fmt: skip
        rid = run.info.run_id
        params = [Param("lr", str(0.001 * (i + 1))), Param("layers", str(i % 5)),
                  Param("opt", "adam"), Param("warm", "True"), Param("flag", "false"),
                  Param("pad", "007"), Param("ratio", "0.50")]  # fmt: skip
        client.log_batch(rid, params=params, tags=[RunTag("seed", str(i))])
        client.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1) + i * 1e-3, base + s, s)
                                       for s in range(steps)])  # fmt: skip
        client.log_batch(rid, metrics=[Metric("accuracy", 0.5 + i / (2 * runs), base, 0)])
        status = "KILLED" if i == runs - 1 else "FINISHED"
        client.set_terminated(rid, status=status, end_time=base + i * 1000 + 500)
    formats = {1: "cloudpickle", 3: "pickle", 5: "skops"}  # MLflow's three sklearn flavors
    for name, picks in (("iris-lr", (1, 3)), ("iris-strong", (5,))):
        for i in picks:
            rid = client.search_runs(experiments, filter_string=f"tags.seed = '{i}'")[0].info.run_id
            model = LogisticRegression(C=0.1 * (i + 1), max_iter=300).fit(X, y)
            with mlflow.start_run(run_id=rid):
                # cloudpickle for one, skops (MLflow 3's default) for the other
                example = pd.DataFrame(X[:2], columns=list("0123")) if i == 5 else None
                mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                         serialization_format=formats[i],
                                         input_example=example)  # fmt: skip
            client.set_terminated(rid, status="FINISHED", end_time=base + i * 1000 + 500)
    client.set_registered_model_alias("iris-lr", "production", "2")
    client.set_registered_model_alias("iris-lr", "staging", "1")
    client.set_registered_model_alias("iris-strong", "production", "1")
    client.set_registered_model_tag("iris-lr", "task", "classification")
    client.create_registered_model("not-yet", tags={"owner": "vision"}, description="planned")
    return client


@pytest.fixture(scope="module", params=["file", "sqlite"])
def store(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    if request.param == "file":
        uri, source, runs, steps = (folder / "mlruns").as_uri(), str(folder / "mlruns"), 20, 60
    else:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        source, runs, steps = uri, 12, 40
    client = _make_store(uri, runs, steps)
    return source, client, runs, steps


def test_import_matches_mlflow_field_by_field(project, store, tmp_path):
    import mlflow
    from mlflow.entities import ViewType

    source, client, n_runs, n_steps = store
    done = gitml_cli(project.root, "import", "mlflow", source, "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    every = [e.experiment_id for e in client.search_experiments()]
    histories = {r.info.run_id: {k: len(client.get_metric_history(r.info.run_id, k))
                                 for k in r.data.metrics}
                 for r in client.search_runs(every, max_results=1000)}  # fmt: skip
    total = sum(sum(h.values()) for h in histories.values())
    assert total >= n_runs * (n_steps + 1)
    assert done.stdout.startswith(f"imported {n_runs} runs (0 already there) from 3 experiments: "
                                  f"{total} metric steps")  # fmt: skip
    assert "3 models with 3 versions and 3 aliases" in done.stdout

    theirs = mlflow.search_runs(search_all_experiments=True, run_view_type=ViewType.ALL)
    ours = gitml.runs().set_index("tags.mlflow.run_id")
    assert len(ours) == len(theirs) == n_runs
    for _, row in theirs.iterrows():
        mine = ours.loc[row["run_id"]]
        assert mine["name"] == row["tags.mlflow.runName"]
        expected_status = {"FINISHED": "finished", "KILLED": "failed"}[row["status"]]
        assert mine["status"] == expected_status
        assert mine["start_time"] == row["start_time"] and mine["end_time"] == row["end_time"]
        for key in ("lr", "layers", "opt", "warm", "flag", "pad", "ratio"):
            assert str(mine[f"params.{key}"]) == row[f"params.{key}"], key  # text kept exactly
        for key in ("loss", "accuracy"):
            assert mine[f"metrics.{key}"] == row[f"metrics.{key}"], key
        for key in ("team", "seed"):
            assert mine[f"tags.{key}"] == row[f"tags.{key}"], key
        experiment = client.get_experiment(row["experiment_id"])
        assert mine["tags.mlflow.experiment_id"] == row["experiment_id"]
        assert mine["tags.mlflow.experiment.owner"] == experiment.tags["owner"]
    steps = steps_frame(project)
    counts = steps.groupby(["run_id", "name"]).size()
    by_mlflow_id = dict(zip(ours["id"], ours.index, strict=True))
    assert {(by_mlflow_id[r], k): n for (r, k), n in counts.items()} == {
        (r, k): n for r, h in histories.items() for k, n in h.items()}  # fmt: skip

    from mlflow.models import get_model_info

    listed = {m.name: m for m in client.search_registered_models()}
    assert set(listed) == {"iris-lr", "iris-strong", "not-yet"}
    for name, model in listed.items():
        mine = load_registry(project, name)
        assert mine["aliases"] == {a: int(v) for a, v in model.aliases.items()}
        assert mine.get("tags", {}) == model.tags, name
        assert mine.get("description", "") == (model.description or ""), name
        theirs_versions = {
            int(v.version): v for v in client.search_model_versions(f"name='{name}'")
        }
        assert sorted(v["version"] for v in mine["versions"]) == sorted(theirs_versions)
        for version in mine["versions"]:
            theirs_version = theirs_versions[version["version"]]
            assert by_mlflow_id[version["run"]] == theirs_version.run_id
            info = get_model_info(theirs_version.source)
            # the file's own format, as the MLmodel's sklearn flavor says
            assert version["format"] == info.flavors["sklearn"]["serialization_format"]
            if info.signature is None:
                assert "signature" not in version
            else:  # MLflow's signature, which gitml serve and predict check
                assert version["signature"]["inputs"] == [
                    {"name": c.name, "type": c.type.name} for c in info.signature.inputs.inputs
                ]
                assert version["signature"]["output"] == {"type": "long"}
    pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=list("0123")).to_csv(project.root / "in.csv",
                                                                       index=False)  # fmt: skip
    commit_all(project.root, "import from MLflow")
    predicted = gitml_cli(
        project.root, "predict", "iris-lr@production", "in.csv", "-o", str(tmp_path / "o.csv")
    )
    assert predicted.returncode == 0, predicted.stderr
    assert pd.read_csv(tmp_path / "o.csv")["prediction"].tolist() == [0]
    skops = gitml_cli(project.root, "predict", "iris-strong@production", "in.csv", "-o",
                      str(tmp_path / "s.csv"))  # fmt: skip
    assert skops.returncode == 0, skops.stderr  # loaded as skops, through its type allow-list
    assert pd.read_csv(tmp_path / "s.csv")["prediction"].tolist() == [0]
    served = Server(project.root, "iris-strong@production", "--no-log")  # MLflow 3 default: skops
    try:
        body = {"dataframe_split": {"columns": list("0123"), "data": [[5.1, 3.5, 1.4, 0.2]]}}
        assert served.post("/invocations", body)[:2] == (200, {"predictions": [0]})
    finally:
        served.stop()

    again = gitml_cli(project.root, "import", "mlflow", source, "--no-progress")
    assert again.returncode == 0 and again.stdout.startswith(
        f"imported 0 runs ({n_runs} already there)")  # fmt: skip
    assert git(project.root, "status", "--porcelain") == "", "a second import changes nothing"


def test_a_run_the_store_will_not_give_is_named_and_the_rest_imported(project, tmp_path):
    """MLflow refuses a symlinked artifact that leads out of its run: that run comes without
    it, is said on stderr with exit 1, and nothing half-written is left behind."""
    import mlflow
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    uri = store.as_uri()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    secret = tmp_path / "outside.txt"
    secret.write_text("not the store's\n")
    ids = []
    for i in range(3):
        with mlflow.start_run(run_name=f"run-{i}") as run:
            mlflow.log_param("i", str(i))
            mlflow.log_metric("loss", 1.0 / (i + 1), step=0)
            (tmp_path / "notes.txt").write_text(f"run {i}\n")
            mlflow.log_artifact(str(tmp_path / "notes.txt"))
            ids.append(run.info.run_id)
    artifacts = Path(client.get_run(ids[1]).info.artifact_uri.removeprefix("file://"))
    (artifacts / "leak.txt").symlink_to(secret)  # resolves outside the run's folder
    with mlflow.start_run(run_name="bad-key") as run:  # a param key MLflow refuses to read
        mlflow.log_param("fine", "1")
    (artifacts.parent / ".." / run.info.run_id / "params" / "bad key!").write_text("x")

    done = gitml_cli(project.root, "import", "mlflow", str(store), "--no-progress")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"not imported: artifacts of run {ids[1]}" in done.stderr
    assert f"not imported: run {run.info.run_id} (Default): MlflowException" in done.stderr
    assert done.stdout.startswith("imported 3 runs (0 already there)")
    folders = list((project.root / ".gitml" / "runs").iterdir())
    assert len(folders) == 3 and all((f / "run.toml").is_file() for f in folders)
    by_run = {r["tags.mlflow.run_id"]: r for r in gitml.runs(repo=project.root).to_dict("records")}
    assert not any(str(v).endswith("leak.txt") for v in by_run[ids[1]].values() if v)
    assert any(k.endswith("notes.txt") and v for k, v in by_run[ids[0]].items())
    assert not list(project.root.rglob("leak.txt")), "the file outside never came in"
