"""Baselines adapted with their own routine: finetune's step size chosen on the train split,
the recurrent baseline in the protocol, and safe test-time adaptation."""

import json

import pytest
import torch
from click.testing import CliRunner
from metarobot.policies.pretrained import pretrained_path

from metarobot.cli import cli
from metarobot.evaluation import choose_finetune_lr
from metarobot.meta import MetaLearner


def test_finetune_learning_rate_is_chosen_on_the_train_split_only(monkeypatch):
    learner = MetaLearner.load(pretrained_path("cartpole", "multitask"), workers=0)
    asked = []
    original = type(learner.family).heldout_tasks

    def spy(self, split, n=100):
        asked.append(split)
        return original(self, split, n)

    monkeypatch.setattr(type(learner.family), "heldout_tasks", spy)
    try:
        lr, scores = choose_finetune_lr(learner, steps=1, episodes=1, n_tasks=1, candidates=(1e-4, 1e-3))
    finally:
        learner.close()
    assert lr in (1e-4, 1e-3) and set(scores) == {"0.0001", "0.001"}
    assert set(asked) <= {"train"} and asked


def test_safe_adaptation_hands_over_only_states_that_did_not_return_less():
    learner = MetaLearner.load(pretrained_path("cartpole", "multitask"), workers=0, ppo_lr=0.5)  # a ruinous step
    try:
        tasks = learner.family.heldout_tasks("test", 3)
        start = learner.meta_state()
        safe = learner.adapt_many(tasks, steps=2, episodes=2, seed=1, safe=True)
        unsafe = learner.adapt_many(tasks, steps=2, episodes=2, seed=1, safe=False)
    finally:
        learner.close()
    for res in safe:
        kept = [k for k in range(3) if res.returns[k] >= max(res.returns[: k + 1]) - 1e-9]
        assert kept[0] == 0
        if all(res.returns[k] < res.returns[0] for k in (1, 2)):
            assert all(torch.equal(res.final_state[n], start[n]) for n in start)  # never worse than it started
    # without the check, the ruinous step is what is handed over
    assert any(not torch.equal(r.final_state[n], start[n]) for r in unsafe for n in start)
    assert [r.returns[:2] for r in safe] == [r.returns[:2] for r in unsafe]  # k = 0, 1 ran the same


@pytest.mark.slow
def test_recurrent_baseline_runs_in_the_protocol(tmp_path):
    from metarobot.recurrent import train_recurrent

    model = train_recurrent("cartpole", env_steps=256, seed=0, n_envs=2)
    model.save(str(tmp_path / "rec.zip"))
    out = tmp_path / "eval"
    args = ["evaluate", "--family", "cartpole", "--baselines", "recurrent", "--recurrent-checkpoint"]
    args += [str(tmp_path / "rec.zip"), "--tasks", "2", "--seeds", "1", "--steps", "1", "--episodes", "1"]
    args += ["--split", "test", "--workers", "0", "--no-progress", "--out", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    rec = res["splits"]["test"]["recurrent"]
    assert len(rec["success_mean"]) == 2 and rec["inner_loop"] == "memory (no update)"
    assert all(ret > 0 for ret in rec["return_mean"])  # cartpole pays 1 per step


@pytest.mark.slow
def test_recurrent_training_resumes_from_its_partial_save(tmp_path):
    from metarobot.recurrent import train_recurrent

    partial = tmp_path / "rec.partial.zip"
    seen: list[int] = []
    # cartpole's rollout is 200 steps (its episode) x 2 envs: chunks of 400 save after every rollout
    model = train_recurrent(
        "cartpole", 800, seed=0, n_envs=2, partial=partial, chunk=400, on_chunk=lambda m: seen.append(m.num_timesteps)
    )
    assert seen == [400, 800] and partial.is_file()
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    # a longer budget continues from the save: the loaded weights are the saved ones, then updated
    seen.clear()
    model = train_recurrent(
        "cartpole", 1200, seed=0, n_envs=2, partial=partial, chunk=400, on_chunk=lambda m: seen.append(m.num_timesteps)
    )
    assert seen == [1200]
    assert any(not torch.equal(before[k], v) for k, v in model.policy.state_dict().items())
    # a budget already reached trains nothing more
    seen.clear()
    again = train_recurrent(
        "cartpole", 1200, seed=0, n_envs=2, partial=partial, chunk=400, on_chunk=lambda m: seen.append(m.num_timesteps)
    )
    assert seen == [] and again.num_timesteps == 1200
    assert all(torch.equal(model.policy.state_dict()[k], v) for k, v in again.policy.state_dict().items())
