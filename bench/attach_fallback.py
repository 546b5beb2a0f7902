"""Make a checkpoint carry a fallback policy (``MetaLearner.set_fallback``), so that adapting it
runs the fallback first and keeps whichever did better, without ``--fallback`` each time.

    python bench/attach_fallback.py policies/pretrained/navigate-rma-online.pt \\
        policies/pretrained/navigate-multitask.pt

Rewrites METHOD in place (atomically): its own parameters, history and settings stay as they
are, and the fallback checkpoint is stored inside it. A provenance record ``METHOD.json``
beside it, where there is one, gains a ``fallback`` entry naming the file it came from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    from metarobot.meta import MetaLearner, read_checkpoint

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method", type=Path)
    ap.add_argument("fallback", type=Path)
    args = ap.parse_args()
    data = read_checkpoint(args.method)
    fallback = read_checkpoint(args.fallback)
    fallback.pop("fallback", None)
    # refused here, before anything is written, if the two do not go together
    with MetaLearner.load(args.method, workers=0) as method:
        method.set_fallback(MetaLearner.load(args.fallback, workers=0))
    data["fallback"] = fallback
    tmp = args.method.with_name(f".{args.method.name}.tmp")
    torch.save(data, tmp)
    tmp.replace(args.method)
    with MetaLearner.load(args.method, workers=0) as check:
        assert check.fallback is not None
        print(f"{args.method}: adapts with fallback {args.fallback} ({check.fallback.config.algo})")
    record_path = args.method.with_suffix(".json")
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        record["fallback"] = {
            "checkpoint": args.fallback.name,
            "env_steps": int(fallback["env_steps"]),
            "attached_by": f"python bench/attach_fallback.py {args.method} {args.fallback}",
        }
        record_path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
