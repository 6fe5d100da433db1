"""Hostile input to every reader: only gitml's own errors come out, never a traceback.

Hypothesis generates bytes, and mutations of valid files (truncated, bytes flipped, spliced),
for each reader; a reader must return or raise a `GitmlError` with a message. Each test counts
the inputs it tried and prints them (pytest -s shows the counts).
"""

import os
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitml import store
from gitml.check.files import parse
from gitml.data.add import parse_pointer, pointer_md5
from gitml.errors import GitmlError
from gitml.monitoring.profile import profile_frame, read_profile, write_profile
from gitml.query.where import compile_where
from gitml.tracking import journal

EXAMPLES = int(os.environ.get("GITML_FUZZ_EXAMPLES", "400"))  # 5000+ for a long soak
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip
VALID_RUN = b"""schema_version = 1
id = "20261123T085012Z-3fa9c1"
name = "rf"
status = "finished"
start_time = 2026-11-23T08:50:12Z
params = { lr = 0.1, depth = 3 }
metrics = { accuracy = 0.93 }
tags = {}
outputs = { "model.pkl" = { md5 = "0123456789abcdef0123456789abcdef", size = 10 } }
"""
VALID_MODEL = b"""schema_version = 1
name = "wine"
aliases = { production = 1 }
[[versions]]
version = 1
run = "20261123T085012Z-3fa9c1"
path = "model.pkl"
md5 = "0123456789abcdef0123456789abcdef"
size = 10
created_at = 2026-11-23T08:50:12Z
[[history]]
at = 2026-11-23T08:50:12Z
action = "register"
version = 1
"""
tried: dict[str, int] = {}


def mutations(valid: bytes):
    """Bytes near a valid file: cut short, a byte changed, a slice repeated, or anything."""
    return st.one_of(
        st.binary(max_size=600),
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
            lambda t: valid[: t[0]] + bytes([t[1]]) + valid[t[0] + 1 :]),
        st.tuples(st.integers(0, len(valid)), st.integers(0, len(valid))).map(
            lambda t: valid[: t[0]] + valid[min(t): max(t)] + valid[t[0]:]),
    )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    total = sum(tried.values())
    print(f"\nfuzzed {total} inputs: " + ", ".join(f"{k} {v}" for k, v in sorted(tried.items())))
    assert all(v >= EXAMPLES for v in tried.values()), tried


def _count(name):
    tried[name] = tried.get(name, 0) + 1


def _fuzz_file(label, valid, path, *readers):
    """Write mutations of ``valid`` to ``path``; every reader must end well or in our error."""

    @FUZZ
    @given(mutations(valid))
    def check(data):
        _count(label)
        path.write_bytes(data)
        for read in readers:
            _only_own_errors(lambda read=read: read(path))

    check()


def _only_own_errors(call):
    try:
        call()
    except GitmlError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), repr(exc)


@pytest.mark.parametrize(("kind", "valid"), [("run", VALID_RUN), ("model", VALID_MODEL)])
def test_toml_records(tmp_path, kind, valid):
    store.validate(kind, tomllib.loads(valid.decode()), source="the valid example")
    _fuzz_file(
        f"{kind}.toml", valid, tmp_path / f"{kind}.toml", lambda p: store.read_toml(p, kind=kind)
    )


def test_config(project):
    _fuzz_file(
        "config.toml",
        project.config_path.read_bytes(),
        project.config_path,
        lambda p: store.read_toml(p, kind="config"),
    )


def test_metrics_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    journal.write_parquet(good, [(s, 1_700_000_000_000 + s, 1.0 / (s + 1), "loss")
                                 for s in range(20)], run_id="20261123T085012Z-3fa9c1")  # fmt: skip
    _fuzz_file(
        "metrics.parquet", good.read_bytes(), tmp_path / "metrics.parquet", journal.read_parquet
    )


def test_profiles(tmp_path):
    import pandas as pd

    good = tmp_path / "good.parquet"
    write_profile(good, profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": list("abc")})))
    _fuzz_file("profile", good.read_bytes(), tmp_path / "profile.parquet", read_profile)


def test_dvc_pointers(tmp_path):
    valid = b"outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 10\n  path: data.csv\n"
    _fuzz_file(
        ".dvc",
        valid,
        tmp_path / "data.csv.dvc",
        pointer_md5,
        lambda p: parse_pointer(p.read_bytes().decode(errors="replace")),
        lambda p: parse("dvc", "data.csv.dvc", p.read_bytes()),
    )


def test_where_parser():
    words = st.sampled_from(["metrics.accuracy", "params.lr", "status", "and", "or", "not",
                             "in", "(", ")", "[", "]", ">", "<=", "==", "!=", "'rf'", "0.9",
                             "1e9", "-", ",", "AND", "=", "import", "__class__", "lambda", ";",
                             "metrics['val-loss']", "tags.x", "\\", "\"", "'"])  # fmt: skip

    @FUZZ
    @given(st.one_of(st.text(max_size=80), st.lists(words, max_size=12).map(" ".join)))
    def check(text):
        _count("--where")
        _only_own_errors(lambda: compile_where(text))

    check()


def test_model_scan(tmp_path):
    """A model file near a real joblib one: the scan ends in a verdict, never an exception,
    and never runs anything the bytes name (it imports nothing but numpy.dtype)."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from gitml.check.pickles import scan_file

    model = LogisticRegression().fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
    good = tmp_path / "good.joblib"
    joblib.dump({"model": model, "weights": np.ones(8)}, good)
    assert scan_file(good, "joblib", good.name) == []

    def scanned(path):
        issues = scan_file(path, "joblib", path.name)
        assert all(i.rule in ("unsafe-pickle", "unscannable-model") for i in issues), issues

    _fuzz_file("model.joblib", good.read_bytes(), tmp_path / "model.joblib", scanned)
