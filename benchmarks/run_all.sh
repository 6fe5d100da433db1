#!/usr/bin/env bash
# Rerun every benchmark of the project, one after another, on this machine.
#   bash benchmarks/run_all.sh            full sizes (about 45 minutes on 2 cores)
#   bash benchmarks/run_all.sh --quick    smaller sizes, the same comparisons (a few minutes)
# Needs: python -m pip install -e ".[bench]". Output goes to stdout and benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
run() { echo; echo "### python benchmarks/$*"; python "benchmarks/$@"; }
if [ "$quick" = "--quick" ]; then
  run bench_core.py --quick
  run bench_data.py --mib 256 --repeat 1
  run bench_hooks.py --repeat 5
  run bench_serve.py --rows 1000000 --requests 500 --seconds 5
  run bench_drift.py --rows 100000
  run bench_import.py --runs 50 --steps 200
  run bench_scale.py --runs 10000 --commits 200 --repeat 3
  run bench_check.py --runs 200 --artifacts 10 --mib 10 --repeat 3
else
  run bench_core.py
  run bench_data.py
  run bench_hooks.py
  run bench_serve.py
  run bench_drift.py
  run bench_import.py
  run bench_scale.py
  run bench_check.py
fi
