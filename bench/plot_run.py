"""Plot a run's metrics.csv: pre- and post-adaptation success and return per iteration.

python bench/plot_run.py runs/reach-maml bench/reach_maml_training.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def smooth(values: np.ndarray, k: int = 9) -> np.ndarray:
    if len(values) < k:
        return values
    pad = np.pad(values, (k // 2, k // 2), mode="edge")
    return np.convolve(pad, np.ones(k) / k, mode="valid")


def main(run: Path, png: Path) -> None:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    it = np.array([int(r["iteration"]) for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for key, ax, scale, label in (("success", axes[0], 100, "success (%)"), ("return", axes[1], 1, "episode return")):
        for phase, color in (("pre", "tab:blue"), ("post", "tab:red")):
            vals = np.array([float(r[f"{phase}_{key}"] or "nan") for r in rows]) * scale
            if np.isnan(vals).all():
                continue
            ax.plot(it, vals, alpha=0.2, color=color)
            ax.plot(it, smooth(vals), color=color, label=f"{phase}-adaptation (smoothed)")
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{run.name}: fresh training-split tasks each iteration, before and after one inner update")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(png)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
