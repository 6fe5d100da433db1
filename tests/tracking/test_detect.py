"""`gitml run` learns what a command read and wrote: declared (-i/-o) and detected."""

from __future__ import annotations

import textwrap

from gitml import store
from tests.helpers import git, gitml


def _only_run(project):
    (run_dir,) = list(project.runs_dir.iterdir())
    return store.read_toml(run_dir / "run.toml", kind="run")


def test_python_reads_and_writes_are_found_and_kept_out_of_git(project):
    root = project.root
    (root / "data").mkdir()
    (root / "data" / "table.csv").write_text("a,b\n1,2\n")
    (root / "data" / "weights.npy").write_bytes(b"\x93NUMPY" + b"\0" * 100)
    (root / "settings.json").write_text('{"scale": 2}')
    (root / ".env").write_text("TOKEN=secret\n")
    (root / "out").mkdir()  # an existing folder: its new files are outputs one by one
    (root / "out" / ".gitkeep").write_text("")
    (root / "job.py").write_text(
        textwrap.dedent("""
        import json, os, pathlib
        rows = open("data/table.csv").read()
        weights = pathlib.Path("data/weights.npy").read_bytes()
        settings = json.load(open("settings.json"))
        secret = open(".env").read()
        os.makedirs("out/shards", exist_ok=True)
        for i in range(25):  # a new folder of many files: one output, as `dvc add` would
            open(f"out/shards/{i}.bin", "wb").write(bytes([i]) * 10)
        open("out/model.bin", "wb").write(b"\\0model")
        open("out/summary.txt", "w").write("ok\\n")
    """)
    )
    done = gitml(root, "run", "--", "python", "job.py")
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert set(rec["inputs"]) == {"data/table.csv", "data/weights.npy", "settings.json"}
    assert set(rec["outputs"]) == {"out/shards", "out/model.bin", "out/summary.txt"}
    assert rec["outputs"]["out/shards"]["nfiles"] == 25
    assert all(ref["detected"] == "written" for ref in rec["outputs"].values())
    # Every output and the binary input go to DVC: pointers in git, bytes ignored.
    git(root, "add", "-A")
    staged = git(root, "diff", "--cached", "--name-only").split()
    for path in ("out/model.bin.dvc", "out/summary.txt.dvc", "out/shards.dvc",
                 "data/weights.npy.dvc", "data/table.csv.dvc"):  # fmt: skip
        assert path in staged, path
    for path in ("out/model.bin", "out/summary.txt", "data/weights.npy", "data/table.csv"):
        assert path not in staged, path
    assert "settings.json" in staged  # small text config: git's
    assert ".env" not in rec["inputs"] and "recorded 3 inputs" in done.stderr


def test_declared_files_and_no_detect(project):
    root = project.root
    (root / "in.txt").write_text("hello\n")
    (root / "job.sh").write_text("cat in.txt > made.txt\necho noise > other.txt\n")
    done = gitml(root, "run", "--no-detect", "-i", "in.txt", "-o", "made.txt", "--",
                 "bash", "job.sh")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert list(rec["inputs"]) == ["in.txt"] and list(rec["outputs"]) == ["made.txt"]
    assert "detected" not in rec["inputs"]["in.txt"]
    assert "recorded 1 input (in.txt) and 1 output (made.txt)" in done.stderr


def test_a_shell_command_gets_its_argument_files_and_writes(project):
    root = project.root
    (root / "source.csv").write_text("x\n1\n")
    done = gitml(root, "run", "--", "bash", "-c", 'cp "$0" copy.csv', "source.csv")
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert list(rec["inputs"]) == ["source.csv"] and list(rec["outputs"]) == ["copy.csv"]


def test_a_declared_output_not_written_fails_the_run(project):
    root = project.root
    done = gitml(root, "run", "-o", "model.pkl", "--", "python", "-c", "pass")
    assert done.returncode == 1, done.stderr
    assert "declared output model.pkl was not written" in done.stderr
    assert _only_run(project)["status"] == "failed"


def test_declared_paths_outside_the_repository_are_refused(project, tmp_path):
    for option, path in (("-i", str(tmp_path / "elsewhere.csv")), ("-o", ".git/config"),
                         ("-o", "../escape.bin")):  # fmt: skip
        done = gitml(project.root, "run", option, path, "--", "python", "-c", "pass")
        assert done.returncode == 2, (option, path, done.stderr)
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"gitml: error: {'--input' if option == '-i' else '--output'}")
    assert not project.runs_dir.exists() or not list(project.runs_dir.iterdir())


def test_autolog_records_a_scikit_learn_fit_without_code_changes(project):
    root = project.root
    (root / "fit.py").write_text(
        textwrap.dedent("""
        from sklearn.datasets import load_iris
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        X, y = load_iris(return_X_y=True)
        model = make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, random_state=0))
        model.fit(X, y)
    """)
    )
    done = gitml(root, "run", "--autolog", "--", "python", "-W", "ignore", "fit.py")
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert rec["params"]["estimator"] == "Pipeline"
    assert rec["params"]["mlpclassifier__max_iter"] == 30
    assert 0 < rec["metrics"]["training_accuracy"] <= 1
    assert "models/pipeline.pkl" in rec["outputs"]
    # the inner MLP's fit is not logged on its own; its loss curve is not there either
    assert "training_loss" not in rec["metrics"]


def test_autolog_in_process_logs_per_iteration_curves(project):
    root = project.root
    (root / "fit.py").write_text(
        textwrap.dedent("""
        import gitml
        gitml.autolog()
        from sklearn.datasets import load_iris
        from sklearn.neural_network import MLPClassifier
        X, y = load_iris(return_X_y=True)
        MLPClassifier(max_iter=15, random_state=0).fit(X, y)
    """)
    )
    done = gitml(root, "run", "--no-detect", "--", "python", "-W", "ignore", "fit.py")
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert rec["params"]["estimator"] == "MLPClassifier"
    from gitml.tracking.journal import read_parquet

    rows = read_parquet(project.run_dir(rec["id"]) / "metrics.parquet").rows
    losses = [r for r in rows if r[3] == "training_loss"]
    assert len(losses) == 15 and [r[0] for r in losses] == list(range(15))


def test_parquet_read_by_pyarrow_in_cpp_is_an_input_too(project):
    import pandas as pd

    root = project.root
    pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}).to_parquet(root / "features.parquet")
    pd.DataFrame({"x": [3.0]}).to_parquet(root / "extra.parquet")
    (root / "job.py").write_text(
        textwrap.dedent("""
        import pandas as pd
        import pyarrow.parquet as pq
        frame = pd.read_parquet("features.parquet")   # pyarrow opens it in C++
        more = pq.ParquetFile(source="extra.parquet").read()
        frame.to_parquet("scored.parquet")
    """)
    )
    done = gitml(root, "run", "--", "python", "job.py")
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert set(rec["inputs"]) == {"features.parquet", "extra.parquet"}
    assert set(rec["outputs"]) == {"scored.parquet"}


def test_configured_inputs_are_recorded_for_every_run(project):
    root = project.root
    (root / "params.yaml").write_text("lr: 0.1\n")
    config = root / ".gitml" / "config.toml"
    config.write_text(config.read_text().replace(
        "[tracking]\n", '[tracking]\ninputs = ["params.yaml", "absent.yaml"]\n', 1))  # fmt: skip
    done = gitml(root, "run", "--no-detect", "--", "python", "-c", "pass")
    assert done.returncode == 0, done.stderr
    assert list(_only_run(project)["inputs"]) == ["params.yaml"]
