#!/usr/bin/env bash
# Rerun every benchmark of the project, one after another, on this machine.
#   bash benchmarks/run_all.sh            full sizes (under 20 minutes on 2 cores)
#   bash benchmarks/run_all.sh --quick    CI's sizes, the same comparisons (a few minutes)
# Needs: python -m pip install -e ".[bench]". Output goes to stdout and benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
run() {
  echo; echo "### python benchmarks/$*"
  local start=$SECONDS
  python "benchmarks/$@"
  echo "### $1 took $((SECONDS - start)) s (run_all so far: $SECONDS s)"
}
if [ "$quick" = "--quick" ]; then
  for script in benchmarks/bench_*.py; do run "$(basename "$script")" --quick; done
else
  run bench_core.py
  run bench_data.py
  run bench_hooks.py
  run bench_serve.py
  run bench_drift.py
  run bench_import.py
  run bench_scale.py
  run bench_check.py
  run bench_ui.py
  run bench_sweep.py
fi
