"""Copy finished runs into ``policies/pretrained`` (package data) with a provenance record.

    python bench/ship_pretrained.py runs/reach-maml runs/reach-multitask runs/cartpole-maml ...

``SHIP_NOTE="..."`` adds a free-text note to each record.

For each run: ``meta_policy.pt`` becomes ``policies/pretrained/FAMILY.pt`` (maml) or
``FAMILY-ALGO.pt`` (other algorithms), and ``FAMILY[-ALGO].json`` records how it was made:
the command, seed, env steps, wall time, the git commit, and the run's held-out summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from metarobot.config import MetaConfig

ROOT = Path(__file__).resolve().parents[1]


def main(runs: list[str]) -> None:
    dest = ROOT / "policies" / "pretrained"
    dest.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    for run in map(Path, runs):
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        summary = json.loads((run / "summary.json").read_text())
        name = cfg["family"] if cfg["algo"] == "maml" else f"{cfg['family']}-{cfg['algo']}"
        shutil.copyfile(run / "meta_policy.pt", dest / f"{name}.pt")
        command = f"metarobot meta-train --family {cfg['family']} --algo {cfg['algo']}"
        # every setting the run changed from what those two resolve to (a warm start's
        # --init-from too: then the budget adds up with the run it started from)
        defaults = MetaConfig.resolve(family=cfg["family"], algo=cfg["algo"]).to_dict()
        for key, value in cfg.items():
            if key not in ("family", "algo", "eval_tasks") and value != defaults.get(key):
                shown = ",".join(map(str, value)) if isinstance(value, list) else value
                command += f" --{key.replace('_', '-')} {shown}"
        record = {
            "command": command,
            "seed": cfg["seed"],
            "settings": cfg,
            "env_steps": summary["env_steps"],
            "iterations": summary["iterations"],
            "wall_s": summary["wall_s"],
            "machine": f"2-core x86_64 CPU VM, {cfg['workers']} sampling worker(s)",
            "git_commit_when_shipped": commit,
            "heldout_summary": summary.get("heldout_test"),
        }
        if os.environ.get("SHIP_NOTE"):  # e.g. what else ran on the machine during training
            record["note"] = os.environ["SHIP_NOTE"]
        (dest / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"shipped {run} -> {dest / (name + '.pt')}")


if __name__ == "__main__":
    main(sys.argv[1:])
