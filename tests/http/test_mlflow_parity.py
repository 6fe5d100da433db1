"""The same request bodies to the real `mlflow models serve` and to `gitml serve`, side by side.

Both serve the same iris model file (the registry's production version, saved as an MLflow
model with its signature); every body shape MLflow documents, wrong and missing columns, text
in a numeric column, nulls, empty lists and broken JSON must get the same status code on
`/invocations`, and every error is MLflow's `{"error_code", "message"}` shape.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import joblib
import pandas as pd
import pytest

from tests.http.test_serve import FEATURES, ROWS, Server

RECORDS = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
BODIES = {
    "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": ROWS}},
    "dataframe_split, orient columns first": {
        "dataframe_split": {"columns": FEATURES[::-1], "data": [r[::-1] for r in ROWS]}},
    "dataframe_records": {"dataframe_records": RECORDS},
    "instances": {"instances": RECORDS},
    "inputs as records": {"inputs": RECORDS},
    "inputs as a dict of columns": {"inputs": {f: [r[i] for r in ROWS]
                                               for i, f in enumerate(FEATURES)}},
    "inputs as bare rows (the signature names columns)": {"inputs": ROWS},
    "a missing column": {"dataframe_records": [{k: v for k, v in r.items() if k != FEATURES[0]}
                                               for r in RECORDS]},
    "an extra column": {"dataframe_records": [{**r, "bogus": 1.0} for r in RECORDS]},
    "a misspelt column": {"dataframe_records": [{("sepal lenght" if k == FEATURES[0] else k): v
                                                 for k, v in r.items()} for r in RECORDS]},
    "text in a numeric column": {"dataframe_records": [{**RECORDS[0], FEATURES[0]: "abc"}]},
    "a null": {"dataframe_records": [{**RECORDS[0], FEATURES[0]: None}]},
    "an empty list of records": {"dataframe_records": []},
    "an empty inputs list": {"inputs": []},
    "no known key": {"rows": RECORDS},
    "two keys": {"dataframe_records": RECORDS, "instances": RECORDS},
    "not JSON": b"{nope",
    "a JSON list": [1, 2],
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: object) -> tuple[int, object]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + "/invocations", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def both(_served_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(gitml's URL, MLflow's URL), serving iris@production from the same file."""
    import mlflow
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("parity") / "project"
    shutil.copytree(_served_template, root, symlinks=True)
    doc = tomllib.loads((root / ".gitml/models/iris.toml").read_text())
    md5 = next(v["md5"] for v in doc["versions"] if v["version"] == doc["aliases"]["production"])
    model = joblib.load(root / ".dvc/cache/files/md5" / md5[:2] / md5[2:])
    frame = pd.DataFrame(ROWS, columns=FEATURES)
    folder = root.parent / "mlflow-model"
    mlflow.sklearn.save_model(model, str(folder),
                              signature=infer_signature(frame, model.predict(frame)))  # fmt: skip
    port = _free_port()
    theirs = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(folder), "-p", str(port),
         "-h", "127.0.0.1", "--env-manager", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ours = Server(root, "iris@production", "--max-body-mb", "1")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/ping", timeout=2).close()
            break
        except (urllib.error.URLError, ConnectionError):
            assert theirs.poll() is None and time.monotonic() < deadline, "mlflow did not start"
            time.sleep(0.2)
    yield ours.url, url
    ours.stop(signal.SIGKILL)
    theirs.terminate()
    theirs.wait(timeout=30)


def test_every_body_gets_mlflows_status_code(both) -> None:
    ours, theirs = both
    compared = []
    for name, body in BODIES.items():
        (code, payload), (their_code, their_payload) = _post(ours, body), _post(theirs, body)
        assert code == their_code, (name, payload, their_payload)
        if code == 200:
            assert payload == their_payload, name  # the same predictions, in the same shape
        else:
            assert isinstance(payload, dict) and set(payload) >= {"error_code", "message"}, name
        compared.append(name)
    assert len(compared) == len(BODIES) >= 18


def test_an_oversized_body_is_gitmls_own_413_where_mlflow_sets_no_limit(both) -> None:
    ours, theirs = both
    big = {"dataframe_records": RECORDS * 6000}  # ~1.1 MB, over gitml's 1 MiB limit here
    assert len(json.dumps(big)) > 1024 * 1024
    code, payload = _post(ours, big)
    assert code == 413 and payload["error_code"] == "REQUEST_LIMIT_EXCEEDED", payload
    their_code, _ = _post(theirs, big)
    assert their_code == 200  # mlflow models serve reads any size: the one deliberate difference
