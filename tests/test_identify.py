"""``identify`` (issue 12): classic online identification of each joint's direction and gain on
reach-v2, the controller that uses it, and a residual network on top -- on real reach-v2 physics."""

import numpy as np
import pybullet as p
import pytest
import torch
from click.testing import CliRunner
from metarobot.envs.reach import MAX_JOINTS, VEL_SCALE
from metarobot.envs.reach_v2 import RESIDUAL_SCALE, ArmIdentification
from stable_baselines3 import PPO
from tiny import cli_args, tiny

from metarobot.algorithms.identify import SUMS, Identify
from metarobot.cli import cli, main
from metarobot.errors import MetarobotError
from metarobot.online import IdentifiedContext, transition_rows

TINY = tiny(family="reach-v2", algo="identify", hidden_sizes=(16,))


def test_statistics_recompute_the_command_the_env_sent_and_the_speed_it_caused():
    import metarobot

    family = metarobot.get_family("reach-v2")
    task = family.heldout_tasks("test", 1)[0]
    env = family.make_env(task)
    ident = ArmIdentification()
    rng = np.random.default_rng(0)
    n = task.n_joints
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(10):
            action = rng.uniform(-1.5, 1.5, MAX_JOINTS).astype(np.float32)  # beyond the box too
            sent = np.clip(env.unwrapped._nominal + RESIDUAL_SCALE * np.clip(action[:n], -1, 1), -1, 1)
            nxt, r, *_ = env.step(action)
            u = env.unwrapped
            speed = np.array([s[1] for s in p.getJointStates(u.robot, u._joints, physicsClientId=u.sim.client)])
            stats = ident.statistics(transition_rows(obs[None], action[None], np.array([r]), nxt[None]).astype(float))
            np.testing.assert_allclose(stats[0, :n], np.clip(speed / VEL_SCALE, -20, 20) * VEL_SCALE * sent, atol=1e-4)
            np.testing.assert_allclose(stats[0, MAX_JOINTS : MAX_JOINTS + n], sent * sent, atol=1e-6)
            assert not stats[0, n:MAX_JOINTS].any() and not stats[0, MAX_JOINTS + n :].any()  # padding
            obs = nxt
    finally:
        env.close()


def test_one_episode_identifies_each_pushed_joints_direction():
    with Identify(**TINY) as learner:
        tasks = learner.family.heldout_tasks("test", 4)
        rollouts = learner.sampler().run(
            [learner.make_job(t, learner.meta_state(), 1, seed=i) for i, t in enumerate(tasks)]
        )
        checked = 0
        for task, rollout in zip(tasks, rollouts):
            state = learner.inner_update(learner.meta_state(), rollout)
            pushed = state[SUMS].numpy()[MAX_JOINTS:]
            estimate = learner.job_context(task, state)
            for j in range(task.n_joints):
                if pushed[j] > 1.0:
                    assert np.sign(estimate[j]) == task.actuator_signs[j], (task, j, estimate)
                    checked += 1
        assert checked >= 8


def test_each_steps_context_is_the_estimate_from_every_transition_before_it():
    with Identify(**TINY) as learner:
        task = learner.family.heldout_tasks("test", 1)[0]
        first = learner.sampler().run([learner.make_job(task, learner.meta_state(), 2, seed=3)])[0]
        state = learner.inner_update(learner.meta_state(), first)  # a prior, as adapt makes it
        job = learner.make_job(task, state, 2, seed=5)
        assert isinstance(job.online, IdentifiedContext)
        rollout = learner.sampler().run([job])[0]
        ident = learner.identification
        seen = rollout.observations[..., learner.obs_dim :]
        went_on = rollout.episode_starts[1:] == 0
        for j in range(rollout.observations.shape[1]):
            obs = rollout.observations[:, j, : learner.obs_dim]
            rows = transition_rows(obs[:-1], rollout.actions[:-1, j], rollout.rewards[:-1, j], obs[1:]).astype(float)
            stats = ident.statistics(rows) * went_on[:, j, None]  # the reset's step is not a transition
            sums = state[SUMS].numpy()[None] + np.concatenate([np.zeros((1, ident.stats_dim)), np.cumsum(stats, 0)])
            np.testing.assert_allclose(seen[:, j], ident.estimate(sums), rtol=1e-4, atol=1e-4)
        assert np.abs(np.diff(seen, axis=0)).max() > 0  # it moves within the episode


def test_an_untrained_residual_leaves_the_identified_controller():
    with Identify(**TINY) as learner:
        with torch.no_grad():
            learner.policy.action_net.weight.zero_()
            learner.policy.action_net.bias.zero_()
        task = learner.family.heldout_tasks("test", 1)[0]
        rollout = learner.sampler().run([learner.make_job(task, learner.meta_state(), 1, seed=0)])[0]
        seen = torch.as_tensor(rollout.observations[:, 0])
        with torch.no_grad():
            mean = learner.policy(seen, deterministic=True)[0]
        want = ArmIdentification().action(seen[:, : learner.obs_dim], seen[:, learner.obs_dim :])
        torch.testing.assert_close(mean, want)
        assert want.abs().max() > 0.1  # it does steer


def test_adapting_moves_only_the_estimate_and_the_export_is_the_deployed_controller(tmp_path):
    with Identify(**TINY) as learner:
        task = learner.family.heldout_tasks("test", 1)[0]
        meta = learner.meta_state()
        res = learner.adapt(task, steps=1, episodes=2)
        final = res.final_state
        for k, v in meta.items():
            torch.testing.assert_close(final[k], v)
        context = final["context.value"]
        assert context.shape == (MAX_JOINTS,) and (context != 1.5).any()  # something was identified
        path = learner.save_sb3(tmp_path / "adapted", final)
        model = PPO.load(path)
        env = learner.family.make_env(task)
        try:
            obs, _ = env.reset(seed=1)
            for _ in range(5):
                theirs, _ = model.predict(obs, deterministic=True)
                with torch.no_grad():
                    seen = torch.as_tensor(np.concatenate([obs, context.numpy()])[None], dtype=torch.float32)
                    mine = learner.policy(seen, deterministic=True)[0].numpy()[0]
                np.testing.assert_allclose(theirs, np.clip(mine, -1, 1), atol=1e-5)
                obs, *_ = env.step(theirs)
        finally:
            env.close()


def test_a_family_without_an_identification_model_is_refused():
    # (the CLI's one-line error: tests/test_bad_inputs.py)
    with pytest.raises(MetarobotError, match="no identification model"):
        Identify(**tiny(algo="identify"))


def test_cli_meta_train_and_evaluate_identify(tmp_path):
    run = tmp_path / "run"
    args = ["meta-train", "--algo", "identify", *cli_args(tiny(family="reach-v2", iterations=1)), "--no-progress"]
    r = CliRunner().invoke(cli, [*args, "--out", str(run)])
    assert r.exit_code == 0, r.output
    ckpt = run / "meta_policy.pt"
    assert torch.load(ckpt, weights_only=True)["config"]["algo"] == "identify"
    out = tmp_path / "ev"
    r = CliRunner().invoke(
        cli,
        ["evaluate", "--checkpoint", str(ckpt), "--tasks", "2", "--seeds", "1", "--steps", "1", "--episodes", "1"]
        + ["--baselines", "none", "--workers", "0", "--out", str(out), "--no-progress"],
    )
    assert r.exit_code == 0, r.output
    assert (out / "results.json").exists()


def test_evaluate_refuses_to_train_a_baseline_on_a_budget_of_zero(tmp_path, capsys):
    """identify's shipped policy has 0 env steps: a baseline "of the same budget" would be an
    untrained network, so evaluate asks for its checkpoint instead of measuring one."""
    out = tmp_path / "ev"
    args = ["evaluate", "--family", "reach-v2", "--baselines", "multitask", "--tasks", "1", "--seeds", "1"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--workers", "0", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1, err
    assert "trained with 0 env steps" in err and "--multitask-checkpoint" in err
    assert not out.exists()


def test_reach_v2s_default_run_is_the_untrained_identification_controller():
    from metarobot.config import MetaConfig

    cfg = MetaConfig.resolve(family="reach-v2")
    assert cfg.algo == "identify" and cfg.iterations == 0
    assert MetaConfig.resolve(family="reach-v2", algo="oracle").iterations >= 1  # others still train
    with pytest.raises(MetarobotError, match="iterations=0 is out of range"):
        MetaConfig.resolve(family="reach-v2", algo="oracle", iterations=0)
