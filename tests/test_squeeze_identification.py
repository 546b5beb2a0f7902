"""grasp-v1's identified squeeze (``MetaConfig.identify_actions``): what the statistics read from
real transitions, the rule that picks the command, and that the sampler sends it."""

import math

import numpy as np
import pytest
import torch
from metarobot.envs.grasp_v1 import (
    SqueezeIdentification,
    holding_force,
    lower_edge_quantiles,
    scripted_grasp_action,
    squeeze_command,
)

import metarobot
from metarobot.config import MetaConfig
from metarobot.errors import MetarobotError
from metarobot.meta import ACTION_SUMS, MetaLearner
from metarobot.online import transition_rows

ident = SqueezeIdentification()
BETA = SqueezeIdentification.BETA


def _scripted_rows(env, task, squeeze: float) -> tuple[np.ndarray, dict]:
    """The transition rows of a scripted grasp (over the object, close, lift) at one squeeze."""
    obs, _ = env.reset(seed=0)
    rows, info = [], {}
    for k in range(env.max_episode_steps):
        a = scripted_grasp_action(obs, k, task.finger_length, squeeze)
        nxt, r, term, trunc, info = env.step(a)
        rows.append(transition_rows(obs[None], a[None], np.array([r]), nxt[None])[0])
        obs = nxt
        if term or trunc:
            break
    return np.asarray(rows), info


def test_statistics_read_held_slipped_and_broken_squeezes_off_real_grasps():
    fam = metarobot.get_family("grasp-v1")
    task = [t for t in fam.sample_tasks(40, "train", np.random.default_rng(6)) if t.object_shape == "box"][0]
    hold, crush, strength = holding_force(task), task.object_crush_force, task.grip_force
    env = fam.make_env(task)
    try:
        inside = squeeze_command(math.sqrt(1.3 * hold * crush), strength)
        rows, info = _scripted_rows(env, task, inside)
        stats = ident.statistics(rows).sum(axis=0)
        assert info["is_success"]
        assert stats[0] >= 10 and stats[3] == 0  # held for the whole hold, never broke
        # the soft minimum and maximum of the commands that held are the command sent
        assert -math.log(stats[1] / stats[0]) / BETA == pytest.approx(inside, abs=1e-6)
        assert math.log(stats[2] / stats[0]) / BETA == pytest.approx(inside, abs=1e-6)

        light = squeeze_command(0.5 * hold, strength)
        rows, info = _scripted_rows(env, task, light)
        stats = ident.statistics(rows).sum(axis=0)
        assert not info["is_success"]
        assert stats[0] == 0 and stats[3] == 0 and stats[5] >= 1  # it slipped, and only that
        assert math.log(stats[6] / stats[5]) / BETA == pytest.approx(light, abs=1e-6)

        rows, info = _scripted_rows(env, task, 1.0)
        stats = ident.statistics(rows).sum(axis=0)
        assert info["crushed"]
        assert stats[3] == 1 and stats[0] == 0  # one step broke it; the broken object never "held"
    finally:
        env.close()


def _sums(held=(), broke=(), slipped=()) -> np.ndarray:
    """Sums of statistics of transitions that held, broke and slipped at the given commands."""
    h, b, s = (np.asarray(x, np.float64) for x in (held, broke, slipped))
    return np.array(
        [
            len(h), np.exp(-BETA * h).sum(), np.exp(BETA * h).sum(),
            len(b), np.exp(-BETA * b).sum(),
            len(s), np.exp(BETA * s).sum(),
        ]
    )  # fmt: skip


def test_command_rule():
    edges = lower_edge_quantiles()
    # nothing seen: the slots spread over the training split's lower edges; one slot: the median
    spread = ident.command(np.zeros((5, 7)), 5)
    assert np.all(np.diff(spread) > 0)
    assert edges[10] - 1e-9 <= spread[0] and spread[-1] <= edges[90] + 1e-9
    assert ident.command(np.zeros((1, 7)), 1)[0] == pytest.approx(edges[50])
    # a slip: a little firmer (a slipping grip tightens step by step)
    assert ident.command(_sums(slipped=[0.4] * 3)[None], 1)[0] == pytest.approx(0.4 + ident.RAMP)
    # a slip and a break: halfway
    assert ident.command(_sums(slipped=[0.4], broke=[0.7])[None], 1)[0] == pytest.approx(0.55)
    # a break only: every slot below it, spread
    below = ident.command(np.repeat(_sums(broke=[0.7])[None], 3, axis=0), 3)
    assert np.all(np.diff(below) > 0) and below[-1] <= 0.7 - ident.MARGIN + 1e-9
    # squeezes that held: MARGIN above the lowest (a soft minimum), never above the highest
    assert ident.command(_sums(held=[0.5] * 5 + [0.6] * 5)[None], 1)[0] == pytest.approx(0.54, abs=0.01)
    assert ident.command(_sums(held=[0.5] * 5)[None], 1)[0] == pytest.approx(0.5)
    # ... nor within MARGIN of a break
    assert ident.command(_sums(held=[0.5] * 5 + [0.6] * 5, broke=[0.56])[None], 1)[0] <= 0.52 + 1e-9
    # too few held transitions are not trusted
    assert ident.command(_sums(held=[0.5], slipped=[0.3])[None], 1)[0] == pytest.approx(0.3 + ident.RAMP)


def test_only_a_closing_command_is_set():
    actions = np.array([[0.1, 0.2, 0.3, 0.4, 0.9], [0.1, 0.2, 0.3, 0.4, -0.5]], np.float32)
    out = ident.apply(actions, np.array([0.33, 0.33]))
    assert out[0, 4] == pytest.approx(0.33) and out[1, 4] == pytest.approx(-0.5)
    np.testing.assert_array_equal(out[:, :4], actions[:, :4])
    assert actions[0, 4] == pytest.approx(0.9)  # not changed in place


def _closing_learner() -> MetaLearner:
    """A small multitask learner on grasp-v1 whose policy moves down and always closes."""
    learner = MetaLearner(
        MetaConfig.resolve(
            family="grasp-v1", algo="multitask", hidden_sizes=(8,), workers=0, identify_actions=True,
            log_std_init=-4.0,
        )
    )  # fmt: skip
    with torch.no_grad():
        learner.policy.action_net.weight.zero_()
        learner.policy.action_net.bias.copy_(torch.tensor([0.0, 0.0, -1.0, 0.0, 1.0]))
    return learner


def test_the_sampler_sends_the_identified_squeeze_and_keeps_the_policys_own_action():
    learner = _closing_learner()
    try:
        task = learner.family.heldout_tasks("train", 1)[0]
        meta = learner.meta_state()

        def run(commands_held_at: float) -> object:
            state = {**meta, ACTION_SUMS: torch.as_tensor(_sums(held=[commands_held_at] * 5))}
            return learner.sampler().run([learner.make_job(task, state, 1, seed=3)])[0]

        soft, soft_again, hard = run(0.02), run(0.02), run(1.0)
        np.testing.assert_array_equal(soft.observations, soft_again.observations)
        # the fingers close on the object with a different force: what the robot did differs
        assert not np.allclose(soft.observations, hard.observations)
        # the rollout keeps what the policy sampled (PPO's log-probabilities are of it)
        np.testing.assert_allclose(soft.actions[0], hard.actions[0])
        assert soft.actions[0, 0, 4] > 0.5
        assert soft.action_stats is not None and soft.action_stats.shape == (1, 7)
    finally:
        learner.close()


def test_adaptation_gathers_the_statistics_of_every_episode_and_deploys_them():
    learner = _closing_learner()
    try:
        task = learner.family.heldout_tasks("train", 1)[0]
        res = learner.adapt_many([task], steps=2, episodes=2, seed=0)[0]
        sums = res.final_state[ACTION_SUMS]
        assert sums.shape == (7,) and torch.all(sums >= 0)
        assert ACTION_SUMS not in learner.policy_part(res.final_state)
        learner.policy.load_state_dict(learner.policy_part(res.final_state))  # only the policy's own
        # with the setting off, no statistics are gathered
        plain = learner.load_as(identify_actions=False)
        try:
            assert ACTION_SUMS not in plain.adapt_many([task], steps=1, episodes=1)[0].final_state
        finally:
            plain.close()
    finally:
        learner.close()


def test_a_family_without_an_identified_action_refuses_the_setting():
    with pytest.raises(MetarobotError, match="no identified action"):
        MetaConfig.resolve(family="reach", identify_actions=True)


def test_an_exported_adapted_policy_sends_the_squeeze_its_adaptation_found(tmp_path):
    from stable_baselines3 import PPO

    learner = _closing_learner()
    try:
        task = learner.family.heldout_tasks("train", 1)[0]
        state = {**learner.meta_state(), ACTION_SUMS: torch.as_tensor(_sums(held=[0.37] * 5))}
        zip_path = learner.save_sb3(tmp_path / "adapted.zip", state)
        model = PPO.load(zip_path)
        env = learner.family.make_env(task)
        try:
            obs, _ = env.reset(seed=0)
            action, _ = model.predict(obs, deterministic=True)
            assert action[4] == pytest.approx(0.37)  # closing, at the identified squeeze
            own, _ = PPO.load(learner.save_sb3(tmp_path / "plain.zip")).predict(obs, deterministic=True)
            assert own[4] > 0.5 and np.allclose(own[:4], action[:4])  # the policy's own command
        finally:
            env.close()
    finally:
        learner.close()


def test_a_training_phase_starts_from_what_the_earlier_phases_of_its_task_showed(monkeypatch):
    from metarobot import meta as meta_module

    learner = _closing_learner()
    priors: list[np.ndarray] = []
    own_run_chain = meta_module.run_chain

    def watching(sampler, jobs, follow):  # record every job's identification prior
        def wrapped(i, rollout):
            job = follow(i, rollout)
            if job is not None:
                priors.append(job.actions.prior.copy())
            return job

        priors.extend(job.actions.prior.copy() for job in jobs)
        return own_run_chain(sampler, jobs, wrapped)

    monkeypatch.setattr(meta_module, "run_chain", watching)
    small = learner.load_as(meta_batch=2, episodes_per_update=2, inner_steps=1)
    learner.close()
    learner = small
    try:
        learner.step()
        first, later = priors[:2], priors[2:]
        assert len(later) == 2 and all(not p.any() for p in first)
        assert any(p.any() for p in later)  # the closing policy touched, slipped or lifted something
    finally:
        learner.close()
