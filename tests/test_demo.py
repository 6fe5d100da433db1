import json
import re

import pytest

from gitml.monitoring.monitor import read_requests
from gitml.repo import Repo
from tests.helpers import git, gitml


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    done = gitml(tmp_path, "demo", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    listing = done.stdout.split("gitml runs --sort -metrics.accuracy")[1]
    names = [re.split(r"\s{2,}", line)[1] for line in listing.splitlines()[3:]
             if line.startswith("2")]  # fmt: skip
    assert names == ["forest", "watch: retrain on wine-2.csv", "small-forest", "stumps",
                     "prepare"], listing  # fmt: skip
    project = tmp_path / "demo" / "wine"
    assert git(project, "log", "--format=%s").count("Train ") == 3
    assert git(project, "status", "--porcelain") == "", "every run was committed"
    assert "wine@production -> v2 (was v1)" in done.stdout
    assert "wine@production -> v1 (rolled back from v2)" in done.stdout
    assert "gitml check all history: ok: 0 error(s), 0 warning(s), 0 note(s)" in done.stdout
    assert git(project, "log", "--format=%s").count("model wine: ") == 8
    drift = done.stdout.split("$ gitml drift --reference wine@production --current requests")[1]
    drift = drift.split("$ cp wine-2.csv")[0]
    assert "drift in 2 of 14 features: alcohol, color_intensity" in drift  # 13 + predictions
    watched = done.stdout.split("--model wine@production --once")[1]
    assert "wine-2.csv: drift in alcohol, color_intensity" in watched
    assert "promoted wine v3 to production: accuracy" in watched
    assert "wrote 178 predictions of wine v1 to ../predictions.parquet" in done.stdout
    served = done.stdout.split("--reload-on-promote -q &")[1]
    answers = [json.loads(line)["model"]["version"]
               for line in re.findall(r'^\{"predictions".*$', served, flags=re.M)]  # fmt: skip
    assert answers == [1, 2, 3]
    logged = read_requests(Repo(project), "wine")
    assert logged["model_version"].tolist()[-3:] == [3, 3, 3] and len(logged) >= 69
    tracked = git(project, "ls-files", ".gitml/monitor/wine/requests").split()
    assert tracked and all(p.endswith(".parquet") for p in tracked)
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
