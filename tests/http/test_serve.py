"""`gitml serve` as a real process over real HTTP on 127.0.0.1, with real registered models."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import joblib
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitml import __version__
from gitml.monitoring.monitor import read_requests
from gitml.repo import Repo
from tests.helpers import GIT_ENV, git, gitml, run_ok

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
# Rows near the class boundaries, where C=0.01 and C=1.0 disagree.
ROWS = [[7.0, 3.2, 4.7, 1.4], [6.4, 3.2, 4.5, 1.5], [5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]


class Server:
    """`gitml serve` in a subprocess on a free port of 127.0.0.1."""

    def __init__(self, root, *args):
        self.log = root.parent / f"serve-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gitml", "serve", *args, "--port", "0", "-q"],
            cwd=root,
            stderr=self.log.open("w"),
            stdout=subprocess.DEVNULL,
            env={**os.environ, **GIT_ENV, "HOME": str(root.parent)},
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"at (http://127\.0\.0\.1:\d+)", self.log.read_text())
            if found:
                url = found.group(1)
                while time.monotonic() < deadline:
                    try:
                        urllib.request.urlopen(url + "/health", timeout=5)
                        return url
                    except (urllib.error.URLError, ConnectionError):
                        time.sleep(0.05)
            if self.process.poll() is not None:
                raise AssertionError(f"gitml serve exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"gitml serve did not start: {self.log.read_text()}")

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST",
            headers={"Content-Type": content_type, **(headers or {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                payload = json.loads(text)
            except ValueError:
                payload = text.decode()
            return exc.code, payload, dict(exc.headers)

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        return self.log.read_text()


@pytest.fixture
def server_factory():
    servers = []

    def start(root, *args):
        servers.append(Server(root, *args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def shared_server(_served_template, tmp_path_factory):
    """One server for the tests that only read: iris@production, a 0.01 MiB body limit."""
    root = tmp_path_factory.mktemp("shared") / "project"
    shutil.copytree(_served_template, root, symlinks=True)
    server = Server(root, "iris@production", "--max-body-mb", "0.01")
    yield server
    server.stop(signal.SIGKILL)


def _records(rows=ROWS):
    return [dict(zip(FEATURES, row, strict=True)) for row in rows]


def _local_predictions(root, version):
    """What version N's model file predicts, loaded straight from the registry's md5."""
    import tomllib

    doc = tomllib.loads((root / ".gitml/models/iris.toml").read_text())
    md5 = next(v["md5"] for v in doc["versions"] if v["version"] == version)
    model = joblib.load(root / ".dvc/cache/files/md5" / md5[:2] / md5[2:])
    return model.predict(pd.DataFrame(ROWS, columns=FEATURES)).tolist()


def _wait_for_version(server, version, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.get("/health")["version"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"still serving {server.get('/health')}, wanted v{version}")


def test_rollback_is_served_and_logged_in_git(served, server_factory):
    v1, v2 = _local_predictions(served, 1), _local_predictions(served, 2)
    assert v1 != v2, "the two versions must disagree on ROWS for this test to mean anything"
    server = server_factory(served, "iris@production", "--reload-on-promote")
    status, body, headers = server.post("/predict", {"records": _records()})
    assert status == 200
    assert body["model"] == {"name": "iris", "version": 2}
    assert body["predictions"] == v2
    assert headers["x-request-id"] == body["request_id"]

    assert run_ok(served, "model", "rollback", "iris", "--to", "1").strip() == (
        "iris@production -> v1 (rolled back from v2)"
    )
    _wait_for_version(server, 1)
    status, body, _ = server.post("/predict", {"records": _records()})
    assert (status, body["model"]["version"], body["predictions"]) == (200, 1, v1)
    git(served, "revert", "--no-edit", "HEAD")  # reverting the rollback is a promotion again
    _wait_for_version(server, 2)
    git(served, "revert", "--no-edit", "HEAD")
    _wait_for_version(server, 1)
    log = server.stop()
    assert "gitml serve: iris@production -> v1 (was v2)" in log
    assert "gitml serve: iris@production -> v2 (was v1)" in log

    restarted = server_factory(served, "iris@production")
    assert restarted.post("/predict", {"records": _records()})[1]["predictions"] == v1
    log = git(served, "log", "--format=%an|%s", "--", ".gitml/models/iris.toml").splitlines()
    assert log[2:4] == [
        "gitml test|model iris: roll production back to v1 (from v2)",
        "gitml test|model iris: promote v2 to production: stronger C",
    ]


def test_metadata_health_and_mlflow_bodies(served, server_factory):
    server = server_factory(served, "iris@2")
    meta = server.get("/metadata")
    registry = Repo(served)
    from gitml.registry.versions import resolve

    version = resolve(registry, "iris@2").version
    for key in ("run", "md5", "commit", "code_commit", "path"):
        assert meta[key] == version[key], key
    assert (meta["name"], meta["version"]) == ("iris", 2)
    assert [c["name"] for c in meta["signature"]["inputs"]] == FEATURES
    assert server.get("/health") == {"status": "ok", "name": "iris", "version": 2}
    with urllib.request.urlopen(server.url + "/version", timeout=30) as answered:  # as MLflow's
        assert answered.read().decode() == __version__
    with urllib.request.urlopen(server.url + "/docs", timeout=30) as answered:  # works offline
        page = answered.read().decode()
    assert "POST /invocations" in page and "<script" not in page and "cdn" not in page.lower()

    expected = _local_predictions(served, 2)
    reordered = [dict(reversed(list(r.items()))) for r in _records()]
    bodies = {
        "dataframe_split": {"columns": FEATURES, "data": ROWS},
        "dataframe_records": reordered,
        "instances": _records(),
        "inputs": _records(),
        "inputs as columns": {f: [r[i] for r in ROWS] for i, f in enumerate(FEATURES)},
    }
    for key, value in bodies.items():
        status, body, _ = server.post("/invocations", {key.split()[0]: value})
        assert (status, body) == (200, {"predictions": expected}), key
    csv = pd.DataFrame(ROWS, columns=FEATURES).to_csv(index=False).encode()
    assert server.post("/invocations", csv, "text/csv")[:2] == (200, {"predictions": expected})
    status, body, _ = server.post("/predict?proba=true", {"records": _records()})
    assert status == 200 and body["classes"] == [0, 1, 2]
    assert all(abs(sum(p) - 1) < 1e-9 for p in body["probabilities"])


BAD = {
    "wrong type": (
        {"records": [{**_records()[0], "petal width (cm)": "wide"}]},
        422,
        "records[0].petal width (cm): Input should be a valid number",
    ),
    "boolean for a number": (
        {"records": [{**_records()[0], "petal width (cm)": True}]},
        422,
        "records[0].petal width (cm): Input should be a valid number",
    ),
    "missing feature": (
        {"records": [{k: v for k, v in _records()[0].items() if k != FEATURES[0]}]},
        422,
        "records[0].sepal length (cm): missing feature",
    ),
    "unknown feature": (
        {"records": [{**_records()[0], "colour": 1.0}]},
        422,
        "records[0].colour: unknown feature (the model takes sepal length (cm),",
    ),
    "null value": (
        {"records": [{**_records()[0], "sepal width (cm)": None}]},
        422,
        "records[0].sepal width (cm): Input should be a valid number",
    ),
    "no records": ({"records": []}, 422, "records: give a non-empty list of records"),
    "not a list": ({"records": {"a": 1}}, 422, "records: give a non-empty list of records"),
    "other key": ({"rows": []}, 422, "body: unknown key 'rows'"),
    "not an object": ([1, 2], 422, "body: give a JSON object"),
    "not JSON": (b'{"records": [', 400, "body: not valid JSON"),
    "NaN literal": (b'{"records": [{"a": NaN}]}', 400, "body: not valid JSON"),
}


@pytest.mark.parametrize(("body", "status", "message"), BAD.values(), ids=BAD.keys())
def test_bad_input_gets_4xx_naming_the_field(shared_server, body, status, message):
    got, payload, _ = shared_server.post("/predict", body)
    assert got == status
    assert payload["error"].startswith(message), payload["error"]


def test_bad_mlflow_bodies_and_content_types(shared_server):
    server = shared_server
    cases = [
        ({"dataframe_split": {"columns": FEATURES[:3], "data": [r[:3] for r in ROWS]}}, 422,
         "dataframe_split[0].petal width (cm): missing feature"),
        ({"dataframe_split": {"columns": FEATURES, "data": [ROWS[0][:3]]}}, 422,
         "dataframe_split.data[0]: has 3 values for 4 columns"),
        ({"dataframe_records": _records(), "instances": _records()}, 422,
         "body: give exactly one of dataframe_split"),
        ({"inputs": ROWS, "params": {"k": 1}}, 422, "params: this model takes no inference"),
    ]  # fmt: skip
    cases.append(
        (
            {"inputs": {FEATURES[0]: [1.0, 2.0], FEATURES[1]: [1.0]}},
            422,
            f"inputs: columns of different lengths ({FEATURES[0]}: 2, {FEATURES[1]}: 1)",
        )
    )
    for body, status, message in cases:
        got, payload, _ = server.post("/invocations", body)
        # MLflow's scoring server answers a body it cannot take with 400 and an error_code
        assert (got, payload["message"][: len(message)]) == (400, message), status
        assert payload["error_code"] == "BAD_REQUEST" and payload["error"] == payload["message"]
    got, payload, _ = server.post("/predict", b"a,b\n1,2\n", "text/csv")
    assert (got, payload["error"]) == (415, "content-type: 'text/csv'; send application/json")
    got, payload, _ = server.post("/invocations", b"\x00\xff", "text/csv")
    assert got == 400 and payload["error"].startswith("csv: cannot parse the body")

    big = {"records": _records() * 200}  # ~28 KB, over the 0.01 MiB limit
    assert len(json.dumps(big)) > 0.01 * 1024 * 1024
    assert server.post("/predict", big)[0] == 413
    chunked = urllib.request.Request(
        server.url + "/predict", data=iter([json.dumps(big).encode()]), method="POST",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(chunked, timeout=30)
    assert refused.value.code == 413
    assert json.loads(refused.value.read())["error"] == (
        "body: over the 10,485-byte limit; send fewer records per request"
    )
    assert server.post("/predict", {"records": _records()})[0] == 200  # still serving


def test_an_oversized_body_hears_its_413_on_a_connection_still_in_step(shared_server):
    """Answered before it was read, a 20 MB body ended in a broken pipe, not in the 413."""
    import http.client

    host, port = shared_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    answered = 0
    for route in ("/invocations", "/predict"):
        connection.request("POST", route, body=b" " * (20 * 1024 * 1024),
                           headers={"Content-Type": "application/json"})  # fmt: skip
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"].startswith("body: over the 10,485-byte")
        connection.request("GET", "/health")  # the same connection goes on
        health = connection.getresponse()
        assert health.status == 200 and json.loads(health.read())["status"] == "ok"
        answered += 1
    assert answered == 2
    connection.close()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner,
                                                                  max_size=4),
    max_leaves=20,
)  # fmt: skip
VALID_BODIES = [
    json.dumps({"records": _records()}).encode(),
    json.dumps({"dataframe_split": {"columns": FEATURES, "data": ROWS}}).encode(),
    json.dumps({"inputs": _records()}).encode(),
]


def _near(valid: bytes):
    """A valid body cut short, with one byte changed, or with a feature's value replaced."""
    return st.one_of(
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
            lambda t: valid[: t[0]] + bytes([t[1]]) + valid[t[0] + 1 :]),
        st.tuples(st.sampled_from(FEATURES), JSON_VALUES).map(
            lambda t: json.dumps({"records": [{**_records()[0], t[0]: t[1]}]},
                                 allow_nan=True).encode()),
    )  # fmt: skip


HOSTILE = st.tuples(
    st.sampled_from(["/predict", "/invocations"]),
    st.sampled_from(["application/json", "text/csv", "application/x-www-form-urlencoded"]),
    st.one_of(st.binary(max_size=400), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
              *(_near(body) for body in VALID_BODIES)),
)  # fmt: skip
HTTP_EXAMPLES = int(os.environ.get("GITML_FUZZ_EXAMPLES", "400"))


def test_hostile_bodies_get_a_one_line_error_never_a_500(shared_server):
    """Hypothesis over the HTTP API: bytes, random JSON and near-valid bodies on both routes."""
    tried = {}

    @settings(max_examples=HTTP_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(HOSTILE)
    @example(("/predict", "application/json", VALID_BODIES[0]))  # so 200 is always among them
    def check(case):
        path, content_type, body = case
        status, payload, _ = shared_server.post(path, body, content_type)
        tried[status] = tried.get(status, 0) + 1
        assert status in (200, 400, 413, 415, 422), (status, payload)
        if status != 200:
            message = payload["error"]
            assert message.strip() and "\n" not in message, payload

    check()
    print(f"\nHTTP API fuzzed with {sum(tried.values())} bodies, by status: {tried}")
    assert sum(tried.values()) >= HTTP_EXAMPLES
    assert {200, 400, 422} <= set(tried), tried  # the generator reaches every kind of answer
    assert "Traceback" not in shared_server.log.read_text()
    assert shared_server.post("/predict", {"records": _records()})[0] == 200


def test_tampered_artifact_is_refused(served, server_factory):
    import tomllib

    doc = tomllib.loads((served / ".gitml/models/iris.toml").read_text())
    md5 = doc["versions"][1]["md5"]
    obj = served / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:-1] + b"\x00")
    done = gitml(served, "serve", "iris@production", "--port", "0")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"gitml: error: iris v2 (model.pkl, md5 {md5}): refusing to load:")
    assert "DVC cache object is corrupted" in lines[0]
    iris = served / "iris.csv"
    done = gitml(served, "predict", "iris@production", str(iris), "-o", "out.parquet")
    assert done.returncode == 2 and "refusing to load" in done.stderr
    assert not (served / "out.parquet").exists()

    # A running server keeps the version it verified when the alias moves to a tampered one.
    server = server_factory(served, "iris@1", "--reload-on-promote")
    assert server.get("/health")["version"] == 1
    text = (served / ".gitml/models/iris.toml").read_text()
    (served / ".gitml/models/iris.toml").write_text(text + "\n")
    time.sleep(0.5)
    assert server.get("/health")["version"] == 1


def test_requests_are_logged_to_parquet_and_survive_a_kill(served, server_factory):
    server = server_factory(served, "iris@production")
    for _ in range(3):
        assert server.post("/predict", {"records": _records()})[0] == 200
    server.post("/invocations", {"inputs": _records(ROWS[:2])})
    server.post("/predict", {"records": [{"bad": 1}]})  # refused: not logged
    server.stop()  # SIGTERM: the live segment becomes Parquet
    folder = served / ".gitml/monitor/iris/requests"
    assert [p.suffix for p in folder.iterdir()] == [".parquet"]
    logged = read_requests(Repo(served), "iris")
    assert len(logged) == 3 * len(ROWS) + 2
    assert logged["request_id"].nunique() == 4
    assert set(logged["endpoint"]) == {"predict", "invocations"}
    assert (logged["model_version"] == 2).all()
    assert logged[[f"input.{f}" for f in FEATURES]].head(len(ROWS)).to_numpy().tolist() == ROWS
    assert logged["prediction"].head(len(ROWS)).tolist() == _local_predictions(served, 2)

    killed = server_factory(served, "iris@production")
    assert killed.post("/predict", {"records": _records()})[0] == 200
    killed.stop(signal.SIGKILL)  # no shutdown: the answered request is still readable
    assert len(read_requests(Repo(served), "iris")) == 4 * len(ROWS) + 2


def test_openapi_spec_fuzzed_by_schemathesis_finds_no_server_errors(shared_server, tmp_path):
    server = shared_server
    spec = server.get("/openapi.json")
    record = spec["components"]["schemas"]["Record"]
    assert record["required"] == FEATURES and record["additionalProperties"] is False
    assert {"/predict", "/invocations", "/health", "/metadata", "/ping"} <= set(spec["paths"])
    # Every check but positive_data_acceptance: a schema-valid number can still be refused
    # with 422 when the model cannot take it (values past float64 range for the solver).
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", server.url + "/openapi.json",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "--max-examples", "10", "--workers", "1", "--seed", "1", "--no-color"],
        capture_output=True, text=True, check=False, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    assert "No issues found" in done.stdout
    assert "Traceback" not in server.log.read_text()
