#!/usr/bin/env bash
# The evaluation tables of bench/RESULTS.md: every trained algorithm of a family, plus the
# scratch and multitask baselines given the same adaptation (the maml inner loop), on 20 test
# and 20 ood tasks, 3 seeds, K = 0..5 updates.
#   bash bench/evaluate_all.sh FAMILY [RUNS_DIR]
set -euo pipefail
family=$1
RUNS=${2:-runs}
MR=${MR:-.venv/bin/metarobot}
$MR evaluate --checkpoint "$RUNS/$family-maml/meta_policy.pt" --checkpoint "$RUNS/$family-fomaml/meta_policy.pt" \
  --checkpoint "$RUNS/$family-reptile/meta_policy.pt" --multitask-checkpoint "$RUNS/$family-multitask/meta_policy.pt" \
  --baselines scratch,multitask --tasks 20 --seeds 3 --steps 5 --workers 2 --no-progress \
  --out "bench/results/$family"
