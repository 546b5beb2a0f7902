"""How long a run takes to recover from a killed Ray sampling actor, and to stop with an error
when the actor cannot be restarted (issue 10: "within 60 s, never a hang").

    python bench/ray_recovery.py

On a local 2-CPU Ray instance: a maml cartpole learner with 2 actors samples one iteration, one
actor is killed with SIGKILL, and the next iteration is timed (Ray restarts the actor and
retries its call); then an actor with ``max_restarts=0`` is killed and the time until the
sampler's one-line error is printed. Prints one JSON line per case.
"""

from __future__ import annotations

import json
import os
import signal
import time

import ray

from metarobot.errors import MetarobotError
from metarobot.meta import MetaLearner
from metarobot.ray_sampler import RaySampler
from metarobot.sampling import Job

SETTINGS = dict(family="cartpole", meta_batch=2, episodes_per_update=2, iterations=2, workers=2)


def main() -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        learner = MetaLearner(algo="maml", sampler="ray", **SETTINGS)
        try:
            start = time.perf_counter()
            learner.step()
            normal = time.perf_counter() - start
            sampler = learner.sampler()
            assert isinstance(sampler, RaySampler)
            os.kill(ray.get(sampler.actors[0].pid.remote()), signal.SIGKILL)
            start = time.perf_counter()
            learner.step()
            recovered = time.perf_counter() - start
        finally:
            learner.close()
        print(
            json.dumps(
                {
                    "case": "actor killed, restarted",
                    "iteration_s": round(normal, 2),
                    "recovered_iteration_s": round(recovered, 2),
                }
            )
        )

        learner = MetaLearner(algo="maml", **{**SETTINGS, "workers": 0})
        task, state, spec = learner.family.heldout_tasks("train", 1)[0], learner.meta_state(), learner.spec
        learner.close()
        sampler = RaySampler(spec, workers=1, max_restarts=0, timeout_s=60)
        os.kill(ray.get(sampler.actors[0].pid.remote()), signal.SIGKILL)
        start = time.perf_counter()
        try:
            sampler.run([Job(task, state, 1, 5, 0, 0.9)])
            outcome = "no error"
        except MetarobotError as exc:
            outcome = str(exc)
        print(
            json.dumps(
                {
                    "case": "actor killed, no restarts",
                    "error_after_s": round(time.perf_counter() - start, 2),
                    "error": outcome,
                }
            )
        )
        sampler.close()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
