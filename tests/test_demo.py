import json
import re

from gitml.monitor import read_requests
from gitml.repo import Repo
from tests.helpers import git, gitml


def test_demo_end_to_end(tmp_path):
    done = gitml(tmp_path, "demo", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    listing = done.stdout.split("gitml runs --sort -metrics.accuracy")[1]
    names = [line.split()[1] for line in listing.splitlines()[3:] if line.startswith("2")]
    assert names == ["forest", "small-forest", "stumps", "prepare"], listing
    project = tmp_path / "demo" / "wine"
    assert git(project, "log", "--format=%s").count("Train ") == 3
    assert git(project, "status", "--porcelain") == "", "every run was committed"
    assert "wine@production -> v2 (was v1)" in done.stdout
    assert "wine@production -> v1 (rolled back from v2)" in done.stdout
    assert git(project, "log", "--format=%s").count("model wine: ") == 6
    assert "wrote 178 predictions of wine v1 to ../predictions.parquet" in done.stdout
    served = done.stdout.split("--reload-on-promote -q &")[1]
    first, second = re.findall(r'^\{"predictions".*$', served, flags=re.M)
    assert json.loads(first)["model"] == {"name": "wine", "version": 1}
    assert json.loads(second)["model"] == {"name": "wine", "version": 2}
    logged = read_requests(Repo(project), "wine")
    assert logged["model_version"].tolist()[-3:] == [2, 2, 2] and len(logged) >= 6
    assert git(project, "ls-files", ".gitml/monitor").strip().endswith(".parquet")
    assert "object(s) referenced by 4 run(s)" in done.stdout
    lineage = done.stdout.split("$ gitml lineage model.pkl")[1]
    assert "'forest'" in lineage and "input data/wine.csv" in lineage and "'prepare'" in lineage
    assert "(small-forest) from code commit" in done.stdout and ": reproduced" in done.stdout


def test_demo_refuses_a_folder_that_holds_a_project_already(tmp_path):
    (tmp_path / "wine").mkdir()
    (tmp_path / "wine" / "mine.txt").write_text("keep me\n")
    done = gitml(tmp_path, "demo", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"gitml: error: --dir: {tmp_path / 'wine'} exists already; give another folder or remove it"
    )
    assert (tmp_path / "wine" / "mine.txt").read_text() == "keep me\n"
