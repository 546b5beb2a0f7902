"""Markdown table of an ``evaluate`` results.json (success % and return, mean ± 95% CI).

python bench/results_table.py bench/results/reach/results.json
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    res = json.loads(open(path).read())
    ks = range(res["steps"] + 1)
    print(
        f"{res['family']}: {res['tasks']} tasks x {res['seeds']} seeds per split, {res['episodes']} episodes per "
        f"update, K = {res['steps']}; mean ± 95% CI ({res['ci']})\n"
    )
    for split, methods in res["splits"].items():
        print(f"**{split}** — success rate (%) after k updates\n")
        print("| method | " + " | ".join(f"k={k}" for k in ks) + " |")
        print("|---|" + "---|" * len(ks))
        for name, m in methods.items():
            cells = [f"{100 * mu:.1f} ± {100 * ci:.1f}" for mu, ci in zip(m["success_mean"], m["success_ci95"])]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print(f"\n**{split}** — mean episode return after k updates\n")
        print("| method | " + " | ".join(f"k={k}" for k in ks) + " |")
        print("|---|" + "---|" * len(ks))
        for name, m in methods.items():
            cells = [f"{mu:.1f} ± {ci:.1f}" for mu, ci in zip(m["return_mean"], m["return_ci95"])]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
