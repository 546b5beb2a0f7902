"""Merge the results of several ``metarobot evaluate`` runs on the same tasks and seeds into one
``results.json`` and ``adaptation.png`` (all methods side by side), e.g. a baseline evaluated
later beside the table it completes:

    python bench/merge_results.py bench/results/navigate-v1 bench/results/navigate-v1-recurrent \\
        --out bench/results/navigate-v1-all

The protocol (family, tasks, seeds, steps, episodes) must be the same in every input; a method
present in several inputs must have the same numbers in each (the evaluation is deterministic),
else the merge is refused. Two checkpoints of one method go side by side with ``--rename``; ``--drop N:NAME`` leaves a
method of an input out:

    python bench/merge_results.py bench/results/reach-v1-rmaon-fair bench/results/reach-v1 \\
        bench/results/reach-v1-baselines --rename "2:rma-online=rma-online (from the oracle, 4.44M)" \\
        --rename "3:rma-online=rma-online (from the oracle, 4.44M)" \\
        --out bench/results/reach-v1-all
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metarobot.evaluation import write_results

PROTOCOL = ("family", "tasks", "seeds", "steps", "episodes", "same_seeds")


def merge(results: list[dict]) -> dict:
    first = results[0]
    merged = {**first, "splits": {}, "merged_from": [], "baselines": {}}
    for res in results:
        for key in PROTOCOL:
            if res.get(key, False) != first.get(key, False):  # same_seeds: absent before it existed
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
    ap.add_argument(
        "--rename", action="append", default=[], metavar="N:OLD=NEW",
        help="call method OLD of the N-th input (from 1) NEW",
    )  # fmt: skip
    ap.add_argument(
        "--drop", action="append", default=[], metavar="N:NAME", help="leave out method NAME of the N-th input"
    )
    args = ap.parse_args()
    results = [json.loads((d / "results.json").read_text()) for d in args.inputs]
    for spec in args.drop:
        number, _, name = spec.partition(":")
        if not number.isdigit() or not 1 <= int(number) <= len(results) or not name:
            sys.exit(f"Error: --drop {spec!r} is not N:NAME with N an input's number")
        splits = results[int(number) - 1]["splits"]
        if not any(name in methods for methods in splits.values()):
            sys.exit(f"Error: input {number} has no method {name!r}")
        for methods in splits.values():
            methods.pop(name, None)
    for spec in args.rename:
        number, _, names = spec.partition(":")
        old, _, new = names.partition("=")
        if not number.isdigit() or not 1 <= int(number) <= len(results) or not old or not new:
            sys.exit(f"Error: --rename {spec!r} is not N:OLD=NEW with N an input's number")
        splits = results[int(number) - 1]["splits"]
        if not any(old in methods for methods in splits.values()):
            sys.exit(f"Error: input {number} has no method {old!r}")
        for methods in splits.values():
            if old in methods:
                methods[new] = methods.pop(old)
    merged = merge(results)
    merged["merged_from"] = [str(d) for d in args.inputs]
    args.out.mkdir(parents=True, exist_ok=True)
    for path in write_results(merged, args.out):
        print(path)


if __name__ == "__main__":
    main()
