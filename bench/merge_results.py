"""Merge the results of several ``metarobot evaluate`` runs on the same tasks and seeds into one
``results.json`` and ``adaptation.png`` (all methods side by side), e.g. a baseline evaluated
later beside the table it completes:

    python bench/merge_results.py bench/results/navigate-v1 bench/results/navigate-v1-recurrent \\
        --out bench/results/navigate-v1-all

The protocol (family, tasks, seeds, steps, episodes) must be the same in every input; a method
present in several inputs must have the same numbers in each (the evaluation is deterministic),
else the merge is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metarobot.evaluation import write_results

PROTOCOL = ("family", "tasks", "seeds", "steps", "episodes")


def merge(results: list[dict]) -> dict:
    first = results[0]
    merged = {**first, "splits": {}, "merged_from": [], "baselines": {}}
    for res in results:
        for key in PROTOCOL:
            if res[key] != first[key]:
                sys.exit(f"Error: {key} differs between the inputs ({first[key]!r} vs {res[key]!r})")
        merged["baselines"].update(res.get("baselines", {}))
        for split, methods in res["splits"].items():
            into = merged["splits"].setdefault(split, {})
            for name, values in methods.items():
                if name in into and into[name]["success_mean"] != values["success_mean"]:
                    sys.exit(f"Error: {split}/{name} differs between the inputs: not the same tasks and seeds")
                into[name] = values
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", type=Path, help="evaluate output directories (with results.json)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results = [json.loads((d / "results.json").read_text()) for d in args.inputs]
    merged = merge(results)
    merged["merged_from"] = [str(d) for d in args.inputs]
    args.out.mkdir(parents=True, exist_ok=True)
    for path in write_results(merged, args.out):
        print(path)


if __name__ == "__main__":
    main()
