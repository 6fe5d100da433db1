import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import gitml
from gitml.errors import UsageError
from gitml.serving.models import load_model
from tests.helpers import commit_all
from tests.helpers import gitml as gitml_cli


@pytest.fixture(scope="module")
def fitted():
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y), X


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_log_model_saves_caches_and_records_format(project, fitted, fmt):
    model, X = fitted
    with gitml.start_run() as run:
        ref = run.log_model(model, f"models/clf.{fmt}", format=fmt)
    assert ref["format"] == fmt
    assert run.record["outputs"][f"models/clf.{fmt}"]["format"] == fmt
    assert (project.root / f"models/clf.{fmt}.dvc").is_file()
    loaded = load_model(project.root / f"models/clf.{fmt}", format=fmt)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_unknown_model_format(project, fitted):
    with gitml.start_run() as run, pytest.raises(UsageError, match="'onnx' is not one of"):
        run.log_model(fitted[0], "m.onnx", format="onnx")


def test_checkout_restores_an_older_runs_model_without_moving_head(project):
    script = (
        "import sys, gitml\n"
        "with gitml.start_run() as run:\n"
        "    open('model.bin', 'w').write(sys.argv[1])\n"
        "    run.log_artifact('model.bin')\n"
    )
    (project.root / "train.py").write_text(script)
    commit_all(project.root, "script")
    gitml_cli(project.root, "run", "--", "python", "train.py", "v1")
    first = commit_all(project.root, "v1")
    gitml_cli(project.root, "run", "--", "python", "train.py", "v2")
    head = commit_all(project.root, "v2")
    assert (project.root / "model.bin").read_text() == "v2"
    done = gitml_cli(project.root, "checkout", first)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "restored model.bin"
    assert (project.root / "model.bin").read_text() == "v1"
    from tests.helpers import git

    assert git(project.root, "rev-parse", "HEAD").strip() == head
