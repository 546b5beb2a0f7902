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
        for key, title, scale in (("success", "success rate (%)", 100), ("return", "mean episode return", 1)):
            print(f"**{split}** — {title} after k updates\n")
            print("| method | " + " | ".join(f"k={k}" for k in ks) + " |")
            print("|---|" + "---|" * len(ks))
            for name, m in methods.items():
                pairs = zip(m[f"{key}_mean"], m[f"{key}_ci95"])
                print(f"| {name} | " + " | ".join(f"{scale * mu:.1f} ± {scale * ci:.1f}" for mu, ci in pairs) + " |")
            print()


if __name__ == "__main__":
    main(sys.argv[1])
