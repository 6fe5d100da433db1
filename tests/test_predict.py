"""`gitml predict`: batch prediction streamed in chunks, with real models from the registry."""

import tomllib

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.helpers import gitml, run_ok

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _model(root, version):
    doc = tomllib.loads((root / ".gitml/models/iris.toml").read_text())
    md5 = next(v["md5"] for v in doc["versions"] if v["version"] == version)
    return joblib.load(root / ".dvc/cache/files/md5" / md5[:2] / md5[2:])


def _input(root):
    """iris with an id in front and the label still in: 150 rows, 6 columns."""
    frame = pd.read_csv(root / "iris.csv")
    frame.insert(0, "id", [f"flower-{i}" for i in range(len(frame))])
    return frame


@pytest.mark.parametrize(
    ("source", "output"), [("in.csv", "out.parquet"), ("in.parquet", "out.csv")],
    ids=["csv", "parquet"],
)  # fmt: skip
def test_predict_streams_chunks_and_matches_the_model(served, source, output):
    frame = _input(served)
    (frame.to_csv if source.endswith(".csv") else frame.to_parquet)(served / source, index=False)
    out = run_ok(served, "predict", "iris@production", source, "-o", output, "--chunk-rows", "7",
                 "--keep", "id", "--proba", "--progress")  # fmt: skip
    assert out.startswith(f"wrote 150 predictions of iris v2 to {output} in ")
    result = (pd.read_parquet if output.endswith(".parquet") else pd.read_csv)(served / output)
    assert list(result.columns) == ["id", "prediction", "proba_0", "proba_1", "proba_2"]
    model = _model(served, 2)
    assert result["id"].tolist() == frame["id"].tolist()
    assert result["prediction"].tolist() == model.predict(frame[FEATURES]).tolist()
    np.testing.assert_allclose(
        result[["proba_0", "proba_1", "proba_2"]].to_numpy(), model.predict_proba(frame[FEATURES])
    )
    leftovers = [p.name for p in served.iterdir() if "gitml-predict" in p.name]
    assert leftovers == []


def test_predict_by_version_and_progress_bar(served):
    _input(served).to_parquet(served / "in.parquet")
    done = gitml(served, "predict", "iris@1", "in.parquet", "-o", "v1.parquet", "--progress")
    assert done.returncode == 0, done.stderr
    assert "predict: 100%" in done.stderr and "150/150" in done.stderr
    result = pd.read_parquet(served / "v1.parquet")
    assert result["prediction"].tolist() == _model(served, 1).predict(
        _input(served)[FEATURES]).tolist()  # fmt: skip


def test_predict_header_only_input_writes_an_empty_output(served):
    _input(served).head(0).to_csv(served / "empty.csv", index=False)
    assert "wrote 0 predictions" in run_ok(served, "predict", "iris", "empty.csv", "-o", "e.csv")
    assert pd.read_csv(served / "e.csv").shape == (0, 1)


BAD = {
    "missing feature": (lambda f: f.drop(columns=FEATURES[2]), [],
                        "in.csv: no feature 'petal length (cm)' (columns: id, sepal length"),
    "unknown keep": (lambda f: f, ["--keep", "name"], "in.csv: no --keep column 'name'"),
    "text in a feature": (lambda f: f.assign(**{FEATURES[0]: "long"}), [],
                          "in.csv: cannot read it: row 1, column 'sepal length (cm)': 'long' is "
                          "not a double"),
    "NaN mid-file": (lambda f: f.assign(**{FEATURES[1]: f[FEATURES[1]].where(f.index != 120)}),
                     ["--chunk-rows", "50"],
                     "in.csv rows 101-150: the model cannot predict on this input: Input X "
                     "contains NaN"),
}  # fmt: skip


@pytest.mark.parametrize(("change", "args", "message"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_leaves_no_output(served, change, args, message):
    change(_input(served)).to_csv(served / "in.csv", index=False)
    (served / "out.parquet").write_bytes(b"an older output")
    done = gitml(served, "predict", "iris@production", "in.csv", "-o", "out.parquet", *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"gitml: error: {message}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (served / "out.parquet").read_bytes() == b"an older output"
    assert [p.name for p in served.iterdir() if "gitml-predict" in p.name] == []


def test_bad_arguments(served):
    for args, message in [
        (["iris.csv", "-o", "out.json"], "--output: out.json: give a .csv or .parquet file"),
        (["nope.csv", "-o", "out.csv"], "input: nope.csv: no such file"),
        (["iris.csv", "-o", "out.csv", "--chunk-rows", "0"], "--chunk-rows: 0: give a positive"),
    ]:
        done = gitml(served, "predict", "iris@production", *args)
        assert (done.returncode, done.stderr.startswith(f"gitml: error: {message}")) == (2, True)
    done = gitml(served, "predict", "iris@staging", "iris.csv", "-o", "out.csv")
    assert done.returncode == 2 and "iris@staging: no such alias" in done.stderr
