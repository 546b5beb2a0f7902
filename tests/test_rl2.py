"""rl2: a recurrent policy meta-trained over trials of one task's episodes; adapting is running
the episodes with the memory carried from each to the next."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from stable_baselines3.common.vec_env import DummyVecEnv
from tiny import cli_args, tiny

from metarobot.algorithms.rl2 import MEMORY_KEYS, RL2, guard_choice
from metarobot.cli import cli
from metarobot.errors import MetarobotError
from metarobot.meta import FALLBACK_KEY, MetaLearner, job_seed
from metarobot.registry import get_family
from metarobot.wrappers import Trials

# an iteration: one rollout of 16 x 200 steps
TINY = tiny(algo="rl2", hidden_sizes=(8, 8), episodes_per_update=4, rl2_envs=16, ppo_minibatches=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    where = tmp_path_factory.mktemp("rl2")
    learner = RL2(**TINY)
    learner.step()
    path = learner.save(where / "rl2.pt")
    yield learner, path
    learner.close()


def test_a_trial_runs_episodes_of_one_task_and_shows_the_last_action_reward_and_episode_start():
    fam = get_family("cartpole")
    task = fam.heldout_tasks("train", 1)[0]
    env = Trials("cartpole", 3, task=task)
    plain = fam.make_env(task)
    n_obs, n_act = plain.observation_space.shape[0], plain.action_space.shape[0]
    assert env.observation_space.shape == (n_obs + n_act + 2,)
    env.episode_seeds = [5, 6, 7]
    obs, _ = env.reset()
    first, _ = plain.reset(seed=5)
    np.testing.assert_allclose(obs[:n_obs], first, rtol=1e-6)
    assert np.all(obs[n_obs:-1] == 0) and obs[-1] == 1.0
    starts, steps, done = [0], 0, False
    while not done:
        action = np.full(n_act, 5.0)  # beyond the action space: the observation shows it clipped
        obs, reward, term, trunc, _ = env.step(action)
        steps += 1
        done = term or trunc
        np.testing.assert_allclose(obs[n_obs : n_obs + n_act], plain.action_space.high)
        assert obs[-2] == pytest.approx(np.clip(reward, -10, 10))
        if obs[-1] == 1.0:
            starts.append(steps)
    assert len(starts) == 3, "two episode starts inside the trial, after the first"
    assert len(env.trial_log) == 1 and len(env.trial_log[0]) == 3
    # each episode of the trial is the plain env's episode of its seed, the same task throughout
    for i, seed in enumerate([5, 6, 7]):
        length = (starts[i + 1] if i + 1 < len(starts) else steps) - starts[i]
        plain.reset(seed=seed)
        ret, n = 0.0, 0
        while True:
            _, r, term, trunc, _ = plain.step(plain.action_space.high)
            ret, n = ret + r, n + 1
            if term or trunc:
                break
        assert n == length and env.trial_log[0][i][1] == pytest.approx(ret)
    env.close()
    plain.close()


def test_training_resets_the_memory_only_between_trials():
    venv = DummyVecEnv([lambda: Trials("cartpole", 2, seed=3)])
    venv.reset()
    dones, steps = 0, 0
    while dones == 0:
        _, _, done, _ = venv.step(np.zeros((1, 1), dtype=np.float32))
        dones += int(done[0])
        steps += 1
    trials = venv.envs[0].trial_log
    assert len(trials) == 1 and len(trials[0]) == 2, "the vec env saw one done: the end of a 2-episode trial"
    venv.close()


def test_an_iteration_trains_the_lstm_policy_for_its_env_steps(trained):
    learner, _ = trained
    before = {k: v.clone() for k, v in learner.meta_state().items()}
    row = learner.step()
    per_iteration = learner.config.steps_per_iteration(learner.episode_steps)
    assert row["iteration"] == 2 and row["env_steps"] >= 2 * per_iteration
    assert row["env_steps"] < 2 * per_iteration + learner.n_envs * max(learner.episode_steps, 128)
    assert any(not torch.equal(before[k], v) for k, v in learner.meta_state().items())
    assert any("lstm" in k for k in before), "the meta-parameters are the LSTM policy's"
    assert np.isfinite(row["value_loss"]) and 0 <= row["clip_fraction"] <= 1


def test_adapting_carries_the_memory_across_the_episodes(trained):
    learner, _ = trained
    tasks = learner.family.heldout_tasks("test", 4)
    carried = learner.adapt_many(tasks, steps=2, episodes=2, seed=0, same_seeds=True, safe=False)
    reset = learner.adapt_many(tasks, steps=2, episodes=2, seed=0, update=False, same_seeds=True)
    for c, r in zip(carried, reset):
        assert len(c.success) == 3 and c.ran == ["rl2"] * 3
        assert r.returns[0] == r.returns[1] == r.returns[2], "memory reset and the same seeds: the same episodes"
        assert c.returns[0] == r.returns[0], "k = 0 is the same fresh policy on the same episodes"
        assert set(MEMORY_KEYS) <= set(c.final_state)
    assert any(c.returns[1:] != r.returns[1:] for c, r in zip(carried, reset)), "the memory changed nothing"


def test_the_guard_runs_whichever_did_best_memory_first_on_ties():
    assert guard_choice({}, None) == "reset", "rl2's first episodes run from its start state"
    assert guard_choice({}, None, fallback_first=True) == "fallback"
    assert guard_choice({"reset": (0.8, 5.0)}, (0.8, 5.0)) == "carry", "an untried memory is tried"
    assert guard_choice({"reset": (0.8, 5.0), "carry": (0.6, 9.0)}, (0.6, 9.0)) == "reset", "success first"
    assert guard_choice({"reset": (0.8, 5.0), "carry": (0.8, 4.0)}, (0.8, 4.0)) == "reset", "then return"
    assert guard_choice({"reset": (0.8, 5.0), "carry": (0.8, 5.0)}, (0.8, 5.0)) == "carry", "ties: the memory"
    # a reset that then did worse than the dropped memory gives the memory back
    assert guard_choice({"reset": (0.4, 1.0), "carry": (0.6, 9.0)}, (0.4, 1.0)) == "carry"
    fb = {"fallback": (1.0, 0.0), "reset": (0.8, 5.0)}
    assert guard_choice(fb, (0.8, 5.0)) == "fallback"
    assert guard_choice({"fallback": (0.8, 5.0), "reset": (0.8, 5.0)}, (0.8, 5.0)) == "carry"


def _replay(result, fallback=False):
    """The guard's choices, replayed from the scores an adaptation recorded."""
    scores, latest, picks = {}, None, []
    for k, (succ, ret, ran) in enumerate(zip(result.success, result.returns, result.ran)):
        pick = guard_choice(scores, latest, fallback_first=fallback and k == 0)
        picks.append(pick)
        assert (ran == "fallback") == (pick == "fallback")
        assert (ran == "rl2 (memory reset)") == (pick == "reset" and latest is not None)
        scores[pick] = (succ, ret)
        if pick != "fallback":
            latest = (succ, ret)
    return picks, guard_choice(scores, latest)


def test_the_guard_keeps_the_memory_only_while_it_does_as_well_as_a_fresh_start(trained):
    learner, _ = trained
    tasks = learner.family.heldout_tasks("test", 6)
    guarded = learner.adapt_many(tasks, steps=3, episodes=2, seed=1)  # the config's safe adaptation: on
    dropped = 0
    for i, res in enumerate(guarded):
        picks, last = _replay(res)
        assert picks[0] == "reset" and len(res.success) == 4
        for k, pick in enumerate(picks):
            if pick == "reset":  # a fresh trial on this k's episodes: the policy used as it is
                seeds = [int(s) for s in np.random.SeedSequence(job_seed(1, 7_777, k, i)).generate_state(2)]
                eps, _, _ = learner.trial(res.task, seeds, None, noise_seed=job_seed(1, 8_888, k, i))
                assert res.returns[k] == pytest.approx(np.mean([e[1] for e in eps]))
                dropped += k > 0
        assert (MEMORY_KEYS[0] in res.final_state) == (last == "carry")
    assert dropped > 0, "on 6 robots x 3 k the untrained policy's memory never did worse than a fresh start"
    # the same episodes at every k: a reset is k = 0's fresh trial again, to the digit
    same = learner.adapt_many(tasks, steps=3, episodes=2, seed=1, same_seeds=True)
    for res in same:
        picks, _ = _replay(res)
        for k, pick in enumerate(picks):
            if pick == "reset":
                assert res.returns[k] == res.returns[0] and res.success[k] == res.success[0]


def test_with_a_fallback_it_runs_first_and_is_kept_where_it_did_best(trained, tmp_path):
    learner, path = trained
    again = MetaLearner.load(path)
    mt = MetaLearner(**tiny(algo="multitask"))
    try:
        again.set_fallback(mt)
        tasks = again.family.heldout_tasks("test", 4)
        results = again.adapt_many(tasks, steps=2, episodes=2, seed=2)
        for res in results:
            picks, last = _replay(res, fallback=True)
            assert res.ran[:2] == ["fallback", "rl2"]
            assert (FALLBACK_KEY in res.final_state) == (last == "fallback")
            runner, _ = again.runner_for(res.final_state)
            assert runner is (mt if last == "fallback" else again)
        with pytest.raises(MetarobotError, match="same seeds"):
            again.adapt_many(tasks, steps=1, episodes=2, same_seeds=True)
        saved = MetaLearner.load(again.save(tmp_path / "with-fb.pt"))
        assert saved.fallback is not None and saved.fallback.config.algo == "multitask"
        saved.close()
    finally:
        again.close()


def test_a_checkpoint_restores_the_same_policy(trained):
    learner, path = trained
    tasks = learner.family.heldout_tasks("test", 2)
    again = MetaLearner.load(path)
    try:
        assert isinstance(again, RL2)
        a = again.adapt_many(tasks, steps=1, episodes=2, seed=4)
        saved = torch.load(path, weights_only=True)["policy_state"]
        for k, v in again.meta_state().items():
            assert torch.equal(v, saved[k])
        assert all(len(r.success) == 2 for r in a)
    finally:
        again.close()


def test_rl2_refuses_what_it_cannot_do(trained, tmp_path):
    learner, path = trained
    with pytest.raises(MetarobotError, match="init-from"):
        RL2(**TINY, init_from=str(path))
    with pytest.raises(MetarobotError, match="ray"):
        RL2(**TINY, sampler="ray")
    fresh = MetaLearner(**tiny(algo="multitask")).meta_state()
    with pytest.raises(MetarobotError, match="scratch"):
        learner.adapt_many(learner.family.heldout_tasks("test", 1), 1, 2, state=fresh)


def test_meta_train_resume_adapt_evaluate_and_render_on_the_command_line(tmp_path):
    run = tmp_path / "run"
    base = ["meta-train", *cli_args(TINY), "--out", str(run), "--no-progress"]
    r = CliRunner().invoke(cli, [*base, "--iterations", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*base, "--iterations", "2", "--resume"])
    assert r.exit_code == 0, r.output
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # header and two iterations, the second after resuming
    from sb3_contrib import RecurrentPPO

    model = RecurrentPPO.load(str(run / "meta_policy.zip"), device="cpu")
    assert model.observation_space.shape == Trials("cartpole", 1).observation_space.shape
    ckpt = run / "meta_policy.pt"
    r = CliRunner().invoke(
        cli, ["adapt", "--checkpoint", str(ckpt), "--steps", "1", "--episodes", "2"] + ["--out", str(tmp_path / "a")]
    )
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "a" / "adaptation.json").read_text())
    assert len(info["success"]) == 2 and info["algo"] == "rl2"
    assert "its memory carries across the 4 episodes, kept while it does at least as well as a fresh start" in r.output
    # the adapted memory beside the zip (k = 0 alone: the guard keeps the memory it has not tried)
    r = CliRunner().invoke(
        cli, ["adapt", "--checkpoint", str(ckpt), "--steps", "0", "--episodes", "2", "--out", str(tmp_path / "a0")]
    )
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "a0" / "adaptation.json").read_text())
    memory = np.load(info["memory"])
    assert set(memory.files) == {"lstm_h", "lstm_c", "last_action", "last_reward"}
    assert memory["lstm_h"].shape == (1, 1, TINY["hidden_sizes"][0])
    adapted = RecurrentPPO.load(info["policy"], device="cpu")
    env = Trials("cartpole", 1, task=get_family("cartpole").heldout_tasks("test", 1)[0])
    obs, _ = env.reset(options={"last_action": memory["last_action"], "last_reward": float(memory["last_reward"])})
    assert obs[-2] == pytest.approx(float(memory["last_reward"]))
    start = np.zeros(1, dtype=bool)
    _, went_on = adapted.predict(obs[None], state=(memory["lstm_h"], memory["lstm_c"]), episode_start=start)
    _, fresh = adapted.predict(obs[None], state=None, episode_start=np.ones(1, dtype=bool))
    assert not np.allclose(went_on[0], fresh[0]), "the memory the adaptation left is what the zip goes on from"
    env.close()
    r = CliRunner().invoke(
        cli,
        ["evaluate", "--checkpoint", str(ckpt), "--tasks", "2", "--seeds", "1", "--steps", "1", "--episodes", "2"]
        + ["--baselines", "scratch", "--workers", "0", "--no-progress", "--out", str(tmp_path / "e")],
    )
    assert r.exit_code == 0, r.output
    assert "no scratch baseline" in r.output
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert set(results["splits"]["test"]) == {"rl2"}
    out = tmp_path / "rl2.mp4"
    r = CliRunner().invoke(
        cli,
        ["render", "--checkpoint", str(ckpt), "--before-after", "--steps", "1", "--adapt-episodes", "2"]
        + ["--episodes", "2", "--width", "96", "--height", "64", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    frames = iio.imread(out, index=None)
    assert frames.shape[0] >= 4 and frames.shape[1:3] == (64 + 28, 2 * 96)


def test_a_trial_env_draws_its_task_pool_at_its_first_reset_the_same_draw():
    fam = get_family("cartpole")
    env = Trials("cartpole", 1, seed=7, pool=20)
    assert len(env._tasks) == 1, "nothing drawn but the env's first task until a reset"
    env.reset()
    assert env._tasks == fam.sample_tasks(20, "train", np.random.default_rng(7))
    env.close()
