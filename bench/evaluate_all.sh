#!/usr/bin/env bash
# The evaluation tables of bench/RESULTS.md: every trained algorithm of a family (those whose
# run finished), plus the scratch and multitask baselines given the same adaptation (the maml
# inner loop), on 20 test and 20 ood tasks, 3 seeds, K = 0..5 updates.
#   bash bench/evaluate_all.sh FAMILY [RUNS_DIR]
set -euo pipefail
family=$1
RUNS=${2:-runs}
MR=${MR:-.venv/bin/metarobot}
args=()
for algo in maml fomaml reptile; do
  ck="$RUNS/$family-$algo/meta_policy.pt"
  if [ -f "$ck" ]; then args+=(--checkpoint "$ck"); else echo "note: no finished $algo run for $family" >&2; fi
done
$MR evaluate "${args[@]}" --multitask-checkpoint "$RUNS/$family-multitask/meta_policy.pt" \
  --baselines scratch,multitask --tasks 20 --seeds 3 --steps 5 --workers 2 --no-progress \
  --out "bench/results/$family"
