"""`gitml monitor labels`: live metric per window from labels joined to the request log."""

import tomllib

import numpy as np
import pandas as pd

from gitml.monitoring.monitor import RequestLog, requests_dir
from gitml.repo import Repo
from tests.helpers import gitml

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _serve_requests(root, n_requests=20):
    """What `gitml serve` logs for 20 requests of 3 records each, predictions 0, 1, 2."""
    log = RequestLog(requests_dir(Repo(root), "iris"))
    frame = pd.DataFrame(np.ones((3, 4)), columns=FEATURES)
    for i in range(n_requests):
        log.append(request_id=f"r{i}", endpoint="predict", version=2, frame=frame,
                   predictions=np.array([0, 1, 2]))  # fmt: skip
    log.close()


def test_labels_join_the_request_log_and_flag_degradation(served):
    _serve_requests(served)
    registered = tomllib.loads((served / ".gitml/models/iris.toml").read_text())
    accuracy = registered["versions"][1]["metrics"]["accuracy"]
    right = pd.DataFrame({"request_id": [f"r{i}" for i in range(20) for _ in range(3)],
                          "row": [0, 1, 2] * 20, "label": [0, 1, 2] * 20})  # fmt: skip
    right.to_csv(served / "good.csv", index=False)
    done = gitml(served, "monitor", "labels", "good.csv", "--model", "iris")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "60 labels matched a served prediction" in done.stdout
    assert "no degradation" in done.stdout

    wrong = right.assign(label=[1, 1, 1] * 20)  # a third right: accuracy 0.33
    wrong.loc[len(wrong)] = ["r999", 0, 2]  # a label for a request never served
    wrong.to_parquet(served / "later.parquet")
    done = gitml(served, "monitor", "labels", "later.parquet")  # the only served model
    assert done.returncode == 1, done.stdout + done.stderr
    assert "60 labels matched a served prediction, 1 did not" in done.stdout
    assert "DEGRADED" in done.stdout and "degraded in 1 window(s)" in done.stdout
    reports = sorted((served / ".gitml/monitor/iris").glob("performance-*.parquet"))
    latest = pd.read_parquet(reports[-1]).iloc[0]
    assert abs(latest["value"] - 1 / 3) < 1e-9
    assert latest["registered"] == accuracy and latest["degraded"]


def test_bad_label_files_are_one_line(served):
    _serve_requests(served, 1)
    pd.DataFrame({"id": ["r0"], "label": [0]}).to_csv(served / "bad.csv", index=False)
    pd.DataFrame({"request_id": ["r0"], "label": [0]}).to_csv(served / "good.csv", index=False)
    for args, message in [
        (["bad.csv"], "bad.csv: no 'request_id' column (columns: request_id, row, label)"),
        (["nope.csv"], "labels: nope.csv: no such file"),
        (["good.csv", "--metric", "auc"], "--metric: 'auc': live performance knows accuracy,"),
    ]:
        done = gitml(served, "monitor", "labels", *args)
        assert done.returncode == 2
        assert done.stderr.startswith(f"gitml: error: {message}"), done.stderr
    assert not (served / ".gitml/monitor/iris/labels").exists()


def test_report_shows_drift_and_live_performance(served):
    _serve_requests(served)
    labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(20) for _ in range(3)],
                           "row": [0, 1, 2] * 20, "label": [0, 1, 1] * 20})  # fmt: skip
    labels.to_csv(served / "labels.csv", index=False)
    assert gitml(served, "monitor", "labels", "labels.csv").returncode == 1  # 2/3 < registered
    # every logged record is all-ones: far from iris, so every feature drifts
    assert gitml(served, "drift", "-r", "iris@production", "-c", "requests").returncode == 1
    done = gitml(served, "report", "-o", "report.html")
    assert done.returncode == 0, done.stderr
    page = (served / "report.html").read_text()
    for section in ("Drift of served and incoming data", "Live performance once labels arrived"):
        assert f"<h2>{section}</h2>" in page
    for figure in ('id="drift-iris"', 'id="performance-iris"'):
        start = page.index(figure)
        assert "<svg" in page[start : start + 400]
    assert (served / "report_files" / "performance-iris.png").stat().st_size > 5000
