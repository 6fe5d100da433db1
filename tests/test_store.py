import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gitml import store
from gitml.errors import FileFormatError, SchemaError
from gitml.tracking import journal

NOW = dt.datetime(2026, 11, 23, 8, 50, 12, tzinfo=dt.UTC)
VALID_RUN = {
    "schema_version": 1,
    "id": "20261123T085012Z-3fa9c1",
    "name": "baseline",
    "status": "finished",
    "start_time": NOW,
    "end_time": NOW,
    "params": {"lr": 0.1, "layers": [1, 2], "model": "rf", "flag": True},
    "metrics": {"acc": 0.9, "nan": float("nan")},
    "tags": {"owner": "me"},
    "code": {
        "commit": "a" * 40,
        "branch": "main",
        "dirty": True,
        "patch": "code.patch",
        "patch_sha256": "b" * 64,
    },
    "inputs": {"data/train.csv": {"md5": "c" * 32, "size": 10}},
    "outputs": {"out": {"md5": "d" * 32 + ".dir", "size": 10, "nfiles": 2}},
    "env": {"python": "3.11.7", "platform": "Linux", "packages": {"numpy": "2.0"}},
}
VALID = {
    "run": VALID_RUN,
    "config": {
        "schema_version": 1,
        "project": {"name": "p"},
        "tracking": {"summary_file": "metrics.toml", "flush_every": 10, "flush_seconds": 0.5},
        "metrics": {"accuracy": {"goal": "maximize"}},
    },
    "metrics-summary": {"schema_version": 1, "run": VALID_RUN["id"], "metrics": {"acc": 0.9}},
}
BROKEN = [
    ("run", {"status": "done"}, "status"),
    ("run", {"id": "not-an-id"}, "id"),
    ("run", {"start_time": "yesterday"}, "start_time"),
    ("run", {"metrics": {"acc": "high"}}, "metrics.acc"),
    ("run", {"code": {"dirty": "yes"}}, "code.dirty"),
    ("run", {"inputs": {"x": {"md5": "zz", "size": 1}}}, "inputs.x.md5"),
    ("run", {"surprise": 1}, "surprise"),
    ("run", {"schema_version": 2}, "schema_version"),
    ("config", {"tracking": {"flush_every": 0}}, "tracking.flush_every"),
    ("config", {"metrics": {"acc": {"goal": "up"}}}, "metrics.acc.goal"),
    ("config", {"trackin": {}}, "trackin"),
    ("metrics-summary", {"metrics": {"acc": [1]}}, "metrics.acc"),
]


@pytest.mark.parametrize("kind", sorted(store.SCHEMA_FILES))
def test_every_schema_is_a_valid_json_schema(kind):
    schema = store.load_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_files_round_trip(kind, tmp_path):
    path = tmp_path / f"{kind}.toml"
    store.write_toml(path, VALID[kind], kind=kind)
    back = store.read_toml(path, kind=kind)
    assert json.dumps(store.to_json_types(back), default=str) == json.dumps(
        store.to_json_types(VALID[kind]), default=str
    )


@pytest.mark.parametrize(
    ("kind", "change", "field"), BROKEN, ids=[f"{k}-{f}" for k, _, f in BROKEN]
)
def test_broken_file_names_file_and_field(kind, change, field, tmp_path):
    path = tmp_path / "broken.toml"
    bad = {**VALID[kind], **change}
    path.write_bytes(store.dumps_toml(bad))
    with pytest.raises(SchemaError) as err:
        store.read_toml(path, kind=kind)
    assert str(path) in str(err.value)
    assert f"field {field}:" in str(err.value)
    with pytest.raises(SchemaError):
        store.write_toml(tmp_path / "never.toml", bad, kind=kind)
    assert not (tmp_path / "never.toml").exists()


def test_missing_required_field_is_named(tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(store.dumps_toml({k: v for k, v in VALID_RUN.items() if k != "status"}))
    with pytest.raises(SchemaError, match="field status: 'status' is a required property"):
        store.read_toml(path, kind="run")


@pytest.mark.parametrize(
    "content", [b"id = ", b"\xff\xfe", b"[a\nb = 1"], ids=["toml", "utf8", "table"]
)
def test_unparsable_file_is_one_clear_error(content, tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=str(path)):
        store.read_toml(path, kind="run")


def _parquet(path, columns, metadata=None):
    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)


def test_metrics_parquet_valid_and_broken(tmp_path):
    good = tmp_path / "good.parquet"
    journal.write_parquet(good, [(0, 1_700_000_000_000, 0.5, "loss")], run_id=VALID_RUN["id"])
    assert journal.read_parquet(good).rows == [(0, 1_700_000_000_000, 0.5, "loss")]
    meta = {"gitml.schema_version": "1"}
    cases = {
        "missing": (
            {"step": pa.array([1], pa.int64())},
            meta,
            "field timestamp: column is missing",
        ),
        "type": (
            {
                "step": pa.array(["x"]),
                "timestamp": pa.array([1], pa.timestamp("ms", tz="UTC")),
                "name": pa.array(["a"]),
                "value": pa.array([1.0]),
            },
            meta,
            "field step: column has type string",
        ),
        "metadata": (
            {
                "step": pa.array([1], pa.int64()),
                "timestamp": pa.array([1], pa.timestamp("ms", tz="UTC")),
                "name": pa.array(["a"]),
                "value": pa.array([1.0]),
            },
            {},
            "field gitml.schema_version",
        ),
    }
    for name, (cols, metadata, message) in cases.items():
        path = tmp_path / f"{name}.parquet"
        _parquet(path, cols, metadata)
        with pytest.raises(SchemaError, match=message):
            journal.read_parquet(path)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really")
    with pytest.raises(FileFormatError, match="not a readable Parquet file"):
        journal.read_parquet(junk)


def test_atomic_write_failure_midway_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.toml"
    store.atomic_write(path, b"old = 1\n")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        store.atomic_write(path, b"new = 2\n" * 1000)
    assert path.read_bytes() == b"old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.toml"], "no temp file is left behind"


def test_atomic_write_killed_midway_keeps_old_file(tmp_path):
    path = tmp_path / "big.toml"
    store.atomic_write(path, b"old = 1\n")
    code = (
        "import sys; from pathlib import Path; from gitml import store\n"
        "print('go', flush=True)\n"
        "while True: store.atomic_write(Path(sys.argv[1]), b'x = 1\\n' * 20_000_000)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"go\n"
    time.sleep(0.3)  # mid-write of a 120 MB file
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    content = path.read_bytes()
    assert content in (b"old = 1\n", b"x = 1\n" * 20_000_000), "never a torn file"


def test_files_get_the_usual_mode(tmp_path):
    path = tmp_path / "f.toml"
    store.atomic_write(path, b"a = 1\n")
    assert path.stat().st_mode & 0o777 == store.file_mode()


def test_generated_validators_match_the_schemas_and_are_used():
    from gitml import store
    from gitml.validators import generated
    from gitml.validators.generate import path_of, source

    for kind in store.SCHEMA_FILES:
        path = path_of(kind)
        assert path.read_text() == source(kind), (
            f"{path.name} is stale: run `python -m gitml.validators`"
        )
        schema = (store.schema_dir() / store.SCHEMA_FILES[kind]).read_bytes()
        assert generated(kind, schema) is not None, kind
        assert generated(kind, schema + b" ") is None, "an edited schema is compiled afresh"
    store._fast_check.cache_clear()
    run_schema = (store.schema_dir() / store.SCHEMA_FILES["run"]).read_bytes()
    assert store._fast_check("run") is generated("run", run_schema)


def test_importing_gitml_leaves_the_umask_alone():
    code = (
        "import os, threading\n"
        "seen = []\n"
        "os.umask(0o027)\n"
        "import gitml.store, gitml.tracking.run, gitml.cli.main\n"
        "print(oct(os.umask(0o027)), oct(gitml.store.file_mode()), oct(os.umask(0o027)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0o27", "0o640", "0o27"]


@pytest.mark.parametrize("holder", ["gitml.store.locked", "filelock.FileLock"])
def test_the_lock_excludes_other_processes_and_filelocks_own(tmp_path, holder: str) -> None:
    from gitml.errors import FileFormatError

    lock = tmp_path / "locks" / "x.lock"
    lock.parent.mkdir()
    hold = ("from gitml.store import locked as hold\nctx = hold(path)\n"
            if holder.startswith("gitml") else
            "from filelock import FileLock\nctx = FileLock(str(path))\n")  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                              "path = Path(sys.argv[1])\n" + hold +
                              "with ctx:\n    print('held', flush=True)\n    time.sleep(1.5)\n",
                              str(lock)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    start = time.monotonic()
    with (
        pytest.raises(FileFormatError, match=r"still locked by another process after 0\.3s"),
        store.locked(lock, timeout=0.3),
    ):
        pass
    assert 0.3 <= time.monotonic() - start < 1.2
    with store.locked(lock, timeout=10):  # free once the other process lets go
        assert child.poll() is not None or time.monotonic() - start >= 1.0
    child.wait(timeout=10)
