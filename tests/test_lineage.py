import json
import shutil
import subprocess
import textwrap

import pytest

from tests.helpers import commit_all, gitml

PREPARE = textwrap.dedent("""
    import gitml
    with gitml.start_run("prepare") as run:
        run.log_input("raw.csv")
        rows = open("raw.csv").read().split()
        open("clean.csv", "w").write("\\n".join(sorted(rows)) + "\\n")
        run.log_artifact("clean.csv")
""")
TRAIN = textwrap.dedent("""
    import gitml
    with gitml.start_run("train") as run:
        run.log_input("clean.csv")
        open("model.pkl", "w").write(open("clean.csv").read().upper())
        run.log_artifact("model.pkl")
""")


@pytest.fixture
def pipeline(project):
    (project.root / "raw.csv").write_text("b\na\nc\n")
    (project.root / "prepare.py").write_text(PREPARE)
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "code and raw data")
    for script in ("prepare.py", "train.py"):
        done = gitml(project.root, "run", "--", "python", script)
        assert done.returncode == 0, done.stderr
        commit_all(project.root, script)
    return project


def test_lineage_walks_model_run_commit_data_and_the_data_run(pipeline):
    done = gitml(pipeline.root, "lineage", "model.pkl", "--format", "json")
    assert done.returncode == 0, done.stderr
    tree = json.loads(done.stdout)
    assert tree["artifact"] == "model.pkl"
    train = tree["produced_by"]
    assert train["name"] == "train" and len(train["code"]["commit"]) == 40
    (clean,) = train["inputs"]
    assert clean["artifact"] == "clean.csv"
    prepare = clean["produced_by"]
    assert prepare["name"] == "prepare"
    (raw,) = prepare["inputs"]
    assert raw == {"artifact": "raw.csv", "md5": raw["md5"], "produced_by": None}


def test_text_tree_and_graph_formats(pipeline):
    text = gitml(pipeline.root, "lineage", "model.pkl").stdout
    assert text.splitlines()[0].startswith("model.pkl (md5 ")
    assert "produced by run" in text and "'train'" in text and "'prepare'" in text
    assert "raw data: no run produced these bytes" in text
    mermaid = gitml(pipeline.root, "lineage", "model.pkl", "-f", "mermaid").stdout
    assert mermaid.startswith("flowchart LR") and mermaid.count("-->|produced|") == 2
    dot = gitml(pipeline.root, "lineage", "model.pkl", "-f", "dot").stdout
    assert dot.startswith("digraph lineage {") and dot.count("->") == 6
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=dot, text=True, check=True, capture_output=True)


def test_lineage_of_a_run_and_of_changed_file(pipeline):
    run_id = json.loads(
        gitml(pipeline.root, "runs", "-f", "json", "--where", "name == 'train'").stdout
    )[0]["id"]
    by_run = json.loads(gitml(pipeline.root, "lineage", run_id[:-1], "-f", "json").stdout)
    assert by_run["run"] == run_id
    (pipeline.root / "model.pkl").chmod(0o644)
    (pipeline.root / "model.pkl").write_text("edited by hand\n")
    (pipeline.root / "model.pkl.dvc").unlink()
    changed = gitml(pipeline.root, "lineage", "model.pkl").stdout
    assert "changed since" in changed


def test_unknown_target_is_one_line_error(pipeline):
    done = gitml(pipeline.root, "lineage", "nothing-here")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "gitml: error: nothing-here: neither a file in the repository nor a run id"
    )


IMPORTED = """\
md5: {stage}
frozen: true
deps:
- path: get-started/data.xml
  repo:
    url: https://github.com/iterative/dataset-registry
    rev_lock: f31f5c4cdae787b4bdeb97a717687d44667d9e62
outs:
- md5: {data}
  size: {size}
  hash: md5
  path: data.xml
"""


def test_a_dvc_import_file_gives_its_datas_md5_not_the_stages(pipeline):
    """`dvc import` writes the stage's own md5 first; the data's is the one under outs."""
    import hashlib

    data = b"<xml>rows</xml>\n"
    (pipeline.root / "data.xml").write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    (pipeline.root / "data.xml.dvc").write_text(
        IMPORTED.format(stage="7" * 32, data=md5, size=len(data)))  # fmt: skip
    done = gitml(pipeline.root, "lineage", "data.xml", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["md5"] == md5
