#!/usr/bin/env bash
# Trains every policy the evaluation tables compare, one after the other (2 cores: running
# them side by side would only slow each one), with the default settings of each family.
# All algorithms of a family share the same env-step budget: same iterations, meta-batch,
# episodes and inner steps, so the same env steps per iteration.
#   bash bench/train_all.sh [RUNS_DIR] [FAMILY ...]
set -euo pipefail
RUNS=${1:-runs}
shift || true
FAMILIES=${*:-cartpole reach navigate grasp}
MR=${MR:-.venv/bin/metarobot}
for family in $FAMILIES; do
  algos="maml multitask fomaml reptile"
  # the navigate and grasp tables compare maml with the multitask and scratch baselines only
  if [ "$family" = navigate ] || [ "$family" = grasp ]; then algos="maml multitask"; fi
  for algo in $algos; do
    out="$RUNS/$family-$algo"
    if [ -f "$out/meta_policy.pt" ]; then echo "skip $out (done)"; continue; fi
    if [ -f "$out/checkpoints/last.pt" ]; then
      $MR meta-train --resume --out "$out" --no-progress
    else
      $MR meta-train --family "$family" --algo "$algo" --out "$out" --no-progress
    fi
  done
done
