"""``identify`` on navigate-v1 (issue 12): each wheel's signed forward effect fitted online from
the base's speed, and the bearing controller that drives with it -- on real navigate physics."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from metarobot.envs.navigate import OBS_DIM, PRIOR_GAIN, BaseIdentification

import metarobot
from metarobot.online import IdentifiedContext, transition_rows


@pytest.fixture
def family():
    return metarobot.get_family("navigate-v1")


def _task(family, left: int, right: int):
    task = family.heldout_tasks("test", 1)[0]
    return dataclasses.replace(task, left_sign=left, right_sign=right, left_gain=0.9, right_gain=0.8)


def _drive(family, task, episodes: int = 1, seed: int = 0):
    """``episodes`` episodes of the identification controller, its sums carried across them:
    the last info and the final sums."""
    ident = BaseIdentification()
    env = family.make_env(task)
    prior = np.zeros(ident.stats_dim)
    try:
        for ep in range(episodes):
            stream = IdentifiedContext(family.name, prior).start(1)
            obs, _ = env.reset(seed=seed + ep)
            done, info = False, {}
            while not done:
                action = ident.action(torch.as_tensor(obs[None]), torch.as_tensor(stream.contexts()))[0].numpy()
                nxt, reward, term, trunc, info = env.step(action)
                stream.observe(np.array([0]), transition_rows(obs[None], action[None], np.array([reward]), nxt[None]))
                obs, done = nxt, term or trunc
            prior = stream.sums[0].copy()
    finally:
        env.close()
    return info, prior


def test_statistics_pair_the_commands_sent_with_the_speed_before_and_after(family):
    ident = BaseIdentification()
    env = family.make_env(family.heldout_tasks("test", 1)[0])
    rng = np.random.default_rng(0)
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(8):
            action = rng.uniform(-1.5, 1.5, 2).astype(np.float32)  # beyond the box too
            nxt, r, *_ = env.step(action)
            stats = ident.statistics(transition_rows(obs[None], action[None], np.array([r]), nxt[None]).astype(float))[
                0
            ]
            u, v, after = np.clip(action, -1, 1), obs[5], nxt[5]
            want = [v * v, v * u[0], v * u[1], u[0] ** 2, u[0] * u[1], u[1] ** 2, after * v, after * u[0], after * u[1]]
            np.testing.assert_allclose(stats, want, rtol=1e-5, atol=1e-6)
            obs = nxt
    finally:
        env.close()


def test_with_nothing_seen_the_estimate_is_a_base_wired_as_labelled():
    ident = BaseIdentification()
    np.testing.assert_allclose(ident.estimate(np.zeros((1, ident.stats_dim))), [[PRIOR_GAIN, PRIOR_GAIN]])


@pytest.mark.parametrize(("left", "right"), [(1, 1), (-1, 1), (1, -1), (-1, -1)])
def test_one_episode_finds_each_motors_wiring_and_reaches_the_goal(family, left, right):
    task = _task(family, left, right)
    info, sums = _drive(family, task, episodes=2)
    estimate = BaseIdentification().estimate(sums[None])[0]
    assert np.sign(estimate[0]) == left and np.sign(estimate[1]) == right, estimate
    assert info["is_success"]


def test_the_controller_drives_to_a_goal_behind_in_reverse():
    ident = BaseIdentification()
    wired = torch.tensor([[PRIOR_GAIN, PRIOR_GAIN]])
    obs = torch.zeros(1, OBS_DIM)
    for bearing, forward in ((0.0, True), (0.3, True), (math.pi - 0.3, False), (-math.pi + 0.2, False)):
        obs[0, 3], obs[0, 4] = math.cos(bearing), math.sin(bearing)
        left, right = ident.action(obs, wired)[0].tolist()
        assert max(abs(left), abs(right)) == pytest.approx(1.0)
        assert (left + right > 0) == forward
        # turning toward the goal (ahead), or the rear toward it (behind)
        aim = bearing if forward else math.remainder(bearing - math.pi, 2 * math.pi)
        if abs(aim) > 1e-6:
            assert np.sign(right - left) == np.sign(aim)
    # a reversed left motor: the same motion asks the opposite command of that wheel
    obs[0, 3], obs[0, 4] = math.cos(0.3), math.sin(0.3)
    normal = ident.action(obs, wired)[0]
    flipped = ident.action(obs, torch.tensor([[-PRIOR_GAIN, PRIOR_GAIN]]))[0]
    assert flipped[0] == pytest.approx(-normal[0]) and flipped[1] == pytest.approx(normal[1])


def test_navigate_v0_runs_the_same_model_with_no_iterations():
    from metarobot.config import MetaConfig

    assert isinstance(metarobot.get_family("navigate").identification(), BaseIdentification)
    assert MetaConfig.resolve(family="navigate", algo="identify").iterations == 0
    # v0's default is the method that measured best on its train split (rl2; bench/RESULTS.md),
    # as grasp's is
    default = MetaConfig.resolve(family="navigate")
    assert default.algo == "rl2" and default.fallback is None and default.inner_steps == 3
