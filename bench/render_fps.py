"""Offscreen rendering speed: frames per second of PyBullet's TinyRenderer (DIRECT mode) at
320x240 on one core, stepping the env between frames as a rollout video does.

    python bench/render_fps.py [--frames 300]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import metarobot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    out = {}
    reach = metarobot.get_family("reach")
    seven = next(t for t in reach.sample_tasks(100, "ood", np.random.default_rng(0)) if t.n_joints == 7)
    cases = {"reach (7 joints)": seven, "cartpole": metarobot.get_family("cartpole").task("test", 0)}
    for name, task in cases.items():
        env = metarobot.make_env(task, render_mode="rgb_array")
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        render_s = 0.0
        for _ in range(args.frames):
            _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            if term or trunc:
                env.reset()
            t0 = time.perf_counter()
            frame = env.render_frame(args.width, args.height)
            render_s += time.perf_counter() - t0
        assert frame.shape == (args.height, args.width, 3)
        out[name] = {"frames_per_s": round(args.frames / render_s, 1), "size": f"{args.width}x{args.height}"}
        env.close()
    out["machine"] = "1 core pinned, PyBullet ER_TINY_RENDERER, DIRECT mode"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
