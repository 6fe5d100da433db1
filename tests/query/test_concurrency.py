import json
import subprocess
import sys

import gitml
from tests.helpers import commit_all


def test_parallel_queries_share_the_index(project):
    for i in range(20):
        with gitml.start_run(f"r{i}") as run:
            run.log_metric("accuracy", i / 20)
    commit_all(project.root, "runs")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gitml", "runs", "--format", "json"],
            cwd=project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len(json.loads(out)) == 20
