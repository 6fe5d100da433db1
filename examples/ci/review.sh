#!/usr/bin/env bash
# Compare a pull request with its base and write what CI posts and keeps:
#   <out>/comment.md    the PR comment: `gitml diff <base> <head> --md`
#   <out>/report.html   `gitml report` over both histories, with <out>/plots/*.png
# Usage: review.sh <base-ref> [head-ref | workspace]   (out: $GITML_REVIEW_DIR, default
# gitml-review); `workspace` compares with the run just trained and not committed.
set -euo pipefail
base="${1:?usage: review.sh <base-ref> [head-ref]}"
head="${2:-HEAD}"
out="${GITML_REVIEW_DIR:-gitml-review}"
mkdir -p "$out"

if table=$(gitml diff "$base" "$head" --md 2>&1); then
  note="Plots and every run: the \`gitml-review\` artifact of this CI run (report.html)."
else
  table="No comparison: $table"
  note="Commit a finished run (its metrics.toml) on both sides to compare them."
fi
if [ "${REPRODUCED:-}" = failure ]; then
  table="**The base commit's run did not reproduce** (see the job log).

$table"
fi
cat > "$out/comment.md" <<COMMENT
<!-- gitml-review -->
### gitml: \`$head\` against \`$base\`

$table

<sub>$note</sub>
COMMENT
if [ "$head" = workspace ]; then  # a run trained in this job, not committed: every run
  gitml report -o "$out/report.html" --png-dir "$out/plots"
else
  gitml report --rev "$base" --rev "$head" -o "$out/report.html" --png-dir "$out/plots"
fi
echo "wrote $out/comment.md and $out/report.html"
