"""What a grasp-v1 policy does with the squeeze: on 10 train-split tasks x 2 seeds, with sampled
and with deterministic actions, how many episodes succeed and how many crush the object, how
many steps both fingers touch it, and the squeeze command ``a[4]`` it sends (mean, spread, share
of steps that squeeze at all). For an oracle checkpoint (the context is the task's hidden
parameters).

    python bench/grasp_v1_diagnose.py runs/grasp-v1-oracle/meta_policy.pt
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from metarobot.meta import MetaLearner


def main():
    ck = sys.argv[1]
    with MetaLearner.load(ck, workers=0) as L:
        fam = L.family
        tasks = fam.heldout_tasks("train", 10)
        for det in (False, True):
            crushed = succ = touched = 0; n = 0; a4 = []
            for i, t in enumerate(tasks):
                env = fam.make_env(t)
                ctx = np.asarray(fam.hidden_params(t), np.float32)
                for s in range(2):
                    obs, _ = env.reset(seed=s); done = False; info = {}
                    while not done:
                        x = torch.as_tensor(np.concatenate([obs, ctx])[None])
                        with torch.no_grad():
                            a = L.policy(x, deterministic=det)[0].numpy()[0]
                        a4.append(a[4])
                        obs, r, te, tr, info = env.step(np.clip(a, -1, 1)); done = te or tr
                        touched += bool(info.get("contact_left") and info.get("contact_right"))
                    crushed += info.get("crushed", False); succ += info["is_success"]; n += 1
                env.close()
            a4 = np.array(a4)
            print("det" if det else "sto", "success", succ, "crushed", crushed, "of", n, "both-touch steps", touched, "a4 mean %.2f std %.2f frac>0 %.2f" % (a4.mean(), a4.std(), (a4 > 0).mean()))

if __name__ == "__main__":
    main()
