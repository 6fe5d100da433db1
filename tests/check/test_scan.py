"""The static model-file scan on real scikit-learn models and real payloads, never loaded."""

import os
import pickle

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gitml.check.pickles import scan_file


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture(scope="module")
def forest():
    X, y = load_wine(return_X_y=True)
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)


def _rules(issues):
    return [(i.rule, i.detail) for i in issues]


@pytest.mark.parametrize("compress", [0, 3, ("xz", 3), ("gzip", 3), ("bz2", 3)])
def test_fitted_models_scan_clean_in_every_joblib_compression(forest, tmp_path, compress):
    path = tmp_path / "model.joblib"
    joblib.dump(forest, path, compress=compress)
    assert scan_file(path, "joblib", path.name) == []
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        *load_wine(return_X_y=True)
    )
    joblib.dump(pipe, path, compress=compress)
    assert scan_file(path, "joblib", path.name) == []


@pytest.mark.parametrize(
    "payload",
    [
        lambda m: Payload(),  # the whole file
        lambda m: {"model": m, "zz": Payload()},  # after the forest's arrays
        lambda m: [np.zeros(1000), Payload()],  # right after an array's raw bytes
        lambda m: np.array([1, "a", Payload()], dtype=object),  # inside an object array
    ],
    ids=["plain", "after-model", "after-array", "object-array"],
)
@pytest.mark.parametrize("compress", [0, 3])
def test_os_system_is_found_wherever_joblib_puts_it(forest, tmp_path, payload, compress):
    path = tmp_path / "model.pkl"
    joblib.dump(payload(forest), path, compress=compress)
    assert _rules(scan_file(path, "joblib", path.name)) == [("unsafe-pickle", "posix.system")]
    assert not (tmp_path / "PWNED").exists() and not os.path.exists("PWNED")


def test_plain_pickles_and_files_that_cannot_be_read(forest, tmp_path):
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps(forest))
    assert scan_file(plain, "pickle", plain.name) == []
    plain.write_bytes(pickle.dumps({"a": Payload()}, protocol=2))
    assert _rules(scan_file(plain, "pickle", plain.name)) == [("unsafe-pickle", "posix.system")]

    whole = tmp_path / "whole.joblib"
    joblib.dump(forest, whole)
    data = whole.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "garbage": bytes(range(256)) * 4,
        "empty": b"",
        "trailing": data + b"\x80\x04junk after the end",
        # joblib.load would np.load(allow_pickle=True) the file an old-format wrapper names
        "side-file": b"\x80\x02cjoblib.numpy_pickle_compat\nNDArrayWrapper\n)\x81}b.",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.joblib"
        path.write_bytes(content)
        issues = scan_file(path, "joblib", path.name)
        assert [i.rule for i in issues] == ["unscannable-model"], (name, issues)
        assert issues[0].message.startswith("not a pickle that can be read statically")
    side = scan_file(tmp_path / "side-file.joblib", "joblib", "side-file.joblib")[0]
    assert "a joblib < 0.10 array kept in another file" in side.detail


def test_skops_files_list_their_untrusted_types(forest, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    sio.dump(forest, path)
    issues = scan_file(path, "skops", path.name)
    assert _rules(issues) == [("untrusted-skops-type", t) for t in sorted(
        sio.get_untrusted_types(file=path))]  # fmt: skip
    assert issues, "a fitted forest needs sklearn.tree._tree.Tree trusted"
    sio.dump(make_pipeline(StandardScaler()).fit(np.ones((3, 2))), path)
    assert scan_file(path, "skops", path.name) == []


def test_array_bytes_that_pickle_load_would_run_are_found(tmp_path):
    """joblib writing to a stream without tell() leaves out the alignment padding, so the
    array's bytes follow its wrapper's opcodes directly: `pickle.load` would run them."""
    import io

    class Sink(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

        def tell(self):
            raise io.UnsupportedOperation

    ops = b"cposix\nsystem\n(S'touch PWNED'\ntR."
    sink = Sink()
    joblib.dump([np.frombuffer(ops, dtype=np.uint8).copy()], sink)
    path = tmp_path / "model.joblib"
    path.write_bytes(bytes(sink.data))
    (issue,) = scan_file(path, "joblib", path.name)
    assert (issue.rule, issue.detail) == ("unsafe-pickle", "posix.system")
    assert "when read with pickle.load" in issue.message
    assert joblib.load(path)[0].tobytes() == ops, "to joblib it is only an array"
