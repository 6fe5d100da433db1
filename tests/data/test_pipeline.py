import sys

from gitml import store
from gitml.data import cache_path
from tests.helpers import commit_all, dvc, gitml


def test_gitml_run_dvc_repro_records_stage_deps_and_outs(project):
    root = project.root
    (root / "raw.txt").write_text("3\n1\n2\n")
    (root / "sort.py").write_text(
        "open('sorted.txt','w').write(''.join(sorted(open('raw.txt'))))\n"
    )
    (root / "count.py").write_text(
        "open('count.txt','w').write(str(len(open('sorted.txt').readlines())))\n"
    )
    dvc(
        root,
        "stage",
        "add",
        "-n",
        "sort",
        "-d",
        "sort.py",
        "-d",
        "raw.txt",
        "-o",
        "sorted.txt",
        "python sort.py",
    )
    dvc(
        root,
        "stage",
        "add",
        "-n",
        "count",
        "-d",
        "count.py",
        "-d",
        "sorted.txt",
        "-o",
        "count.txt",
        "python count.py",
    )
    commit_all(root, "pipeline")
    done = gitml(root, "run", "--name", "pipeline", "--", sys.executable, "-m", "dvc", "repro")
    assert done.returncode == 0, done.stderr
    (run_dir,) = list(project.runs_dir.iterdir())
    rec = store.read_toml(run_dir / "run.toml", kind="run")
    assert set(rec["inputs"]) == {"raw.txt", "sort.py", "count.py"}
    assert set(rec["outputs"]) == {"sorted.txt", "count.txt"}
    for ref in [*rec["inputs"].values(), *rec["outputs"].values()]:
        assert cache_path(root, ref["md5"]).is_file(), "every recorded file is restorable by hash"
    assert (root / "count.txt").read_text() == "3"
