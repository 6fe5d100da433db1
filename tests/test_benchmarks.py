"""Every benchmark runs in its `--quick` mode, as it ships: a benchmark that crashes fails CI.

The figures of a quick run are not checked (CI's machine is not the one in the docs); that each
script finishes, compares what it says it compares and writes its results file is.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))


def test_run_all_runs_every_benchmark():
    script = (ROOT / "benchmarks" / "run_all.sh").read_text()
    listed = set(re.findall(r"\brun (bench_[a-z_]+)\.py", script))
    assert len(BENCHMARKS) >= 9 and listed == set(BENCHMARKS), (listed, BENCHMARKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_benchmark_runs_in_quick_mode(name, tmp_path):
    env = {**os.environ, "GITML_BENCH_RESULTS": str(tmp_path), "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run([sys.executable, f"benchmarks/{name}.py", "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, (
        f"{name} --quick failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
    )
    saved = json.loads((tmp_path / f"{name.removeprefix('bench_')}.json").read_text())
    assert saved["measured"]["quick"] is True and saved["measured"]["versions"]["gitml"]
    assert saved["tables"] and all(t["rows"] for t in saved["tables"].values()), saved
