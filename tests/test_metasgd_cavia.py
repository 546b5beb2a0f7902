"""Better gradient adaptation (issue 11): Meta-SGD (learned per-element inner step sizes) and
CAVIA (the inner loop adapts a context vector of the policy's input only), on real cartpole
episodes: outer gradients against central finite differences in float64, what each inner step
may change, the meta-state in checkpoints, determinism, safe adaptation and the CLI end to end."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from stable_baselines3 import PPO
from tiny import cli_args, tiny, tiny_evaluate_args

import metarobot
from metarobot import adaptation as ad
from metarobot.algorithms import algorithm_names, get_algorithm
from metarobot.algorithms.cavia import CAVIA
from metarobot.algorithms.context import CONTEXT_KEY
from metarobot.algorithms.maml import MAML
from metarobot.algorithms.metasgd import STEP_SIZES_KEY, MetaSGD
from metarobot.cli import cli
from metarobot.config import MetaConfig
from metarobot.errors import MetarobotError
from metarobot.meta import MetaLearner, _halfway
from metarobot.training import Run

TINY = tiny(context_dim=3)
TINY_CLI = [*cli_args({**TINY, "iterations": 2}), "--no-progress"]
#: the gradient checks: a tiny network (one hidden layer of 4) in float64
GRAD = {**TINY, "hidden_sizes": (4,), "inner_lr": 0.5}


def _double(batch: ad.Batch) -> ad.Batch:
    return ad.Batch(
        *(t.double() for t in (batch.obs, batch.actions, batch.old_log_prob, batch.advantages, batch.returns))
    )


def _rollouts(learner, n_phases: int):
    """Episodes of one training task for ``n_phases`` phases (all under the meta-parameters)."""
    task = learner.family.heldout_tasks("train", 1)[0]
    meta = learner.meta_state()
    jobs = [learner.make_job(task, meta, 2, seed=11 + k) for k in range(n_phases)]
    return learner.sampler().run(jobs)


def _central_differences(loss_fn, tensors, eps=1e-6):
    """d loss / d every element of ``tensors`` (edited in place and restored)."""
    out = []
    for t in tensors:
        flat = t.data.view(-1)  # edits outside autograd; the loss itself needs it (inner steps)
        for i in range(flat.numel()):
            flat[i] += eps
            up = float(loss_fn().detach())
            flat[i] -= 2 * eps
            down = float(loss_fn().detach())
            flat[i] += eps
            out.append((up - down) / (2 * eps))
    return torch.tensor(out, dtype=torch.float64)


def _flat(grads, tensors):
    return torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(-1) for g, t in zip(grads, tensors)])


# -- registry ---------------------------------------------------------------------------------
def test_both_are_registered_classes_listed_by_the_cli():
    assert {"metasgd", "cavia"} <= set(algorithm_names())
    assert get_algorithm("metasgd") is MetaSGD and get_algorithm("cavia") is CAVIA
    assert metarobot.MetaSGD is MetaSGD and metarobot.CAVIA is CAVIA
    assert MetaSGD.updates_parameters and CAVIA.updates_parameters  # so safe adaptation checks them
    r = CliRunner().invoke(cli, ["algorithms"])
    assert r.exit_code == 0
    lines = {line.split()[0]: line for line in r.output.splitlines() if line.strip()}
    assert "MetaSGD" in lines["metasgd"] and "CAVIA" in lines["cavia"]


# -- Meta-SGD ---------------------------------------------------------------------------------
@pytest.mark.parametrize("inner_steps", [1, 2])
def test_metasgd_outer_gradient_wrt_the_step_sizes_matches_finite_differences(inner_steps):
    with MetaSGD(**GRAD) as learner:
        learner.policy.double()
        for p in learner.log_step_sizes.values():
            p.data = p.data.double()
        # step sizes that differ per element, so a gradient that mixed them up would show
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in learner.log_step_sizes.values():
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        ros = _rollouts(learner, inner_steps + 1)
        batches = [_double(learner._batch(ro)) for ro in ros]
        steps = list(learner.log_step_sizes.values())
        weights = list(learner.policy.parameters())

        def loss():
            return learner.task_loss(batches[:-1], batches[-1])[0]

        analytic = torch.autograd.grad(loss(), steps + weights, allow_unused=True)
        for tensors, grads in ((steps, analytic[: len(steps)]), (weights, analytic[len(steps) :])):
            flat = _flat(grads, tensors)
            assert flat.abs().max() > 1e-4  # a real gradient
            torch.testing.assert_close(flat, _central_differences(loss, tensors), rtol=1e-5, atol=1e-8)
        # the value network is out of the inner loss's reach: its step sizes get no gradient
        reached = {k for k, gr in zip(learner.log_step_sizes, analytic[: len(steps)]) if gr is not None}
        assert reached and not any(k.startswith(("value_net", "mlp_extractor.value_net")) for k in reached)


def test_an_untrained_metasgd_takes_exactly_mamls_step():
    with MetaSGD(**TINY) as learner:
        (ro,) = _rollouts(learner, 1)
        meta = learner.meta_state()
        mine = learner.inner_update(meta, ro)
        with MAML(**{k: v for k, v in TINY.items() if k != "context_dim"}) as maml:
            maml.policy.load_state_dict(meta)
            theirs = maml.inner_update(meta, ro)
    for k in meta:
        torch.testing.assert_close(mine[k], theirs[k], rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(mine[k], meta[k]) for k in meta)


def test_metasgd_step_sizes_are_learned_saved_restored_and_used_at_test_time(tmp_path):
    with MetaSGD(**TINY) as learner:
        before = {k: v.detach().clone() for k, v in learner.log_step_sizes.items()}
        np.testing.assert_allclose(
            torch.cat([v.reshape(-1) for v in before.values()]).numpy(), np.log(learner.config.inner_lr), rtol=1e-6
        )
        row = learner.step()
        after = {k: v.detach().clone() for k, v in learner.log_step_sizes.items()}
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed and "action_net.weight" in changed and "log_std" in changed
        assert not any("value_net" in k for k in changed)  # the inner loss never reaches them
        assert np.isfinite(row["inner_lr_mean"]) and row["inner_lr_mean"] != pytest.approx(0.1, abs=1e-9)
        learner.save(tmp_path / "m.pt")
        (ro,) = _rollouts(learner, 1)
        meta = learner.meta_state()
        adapted = learner.inner_update(meta, ro)
        maml_step = ad.inner_step(
            learner.policy, learner.inner_params(meta), learner._batch(ro), learner.config.inner_lr, create_graph=False
        )
        opt = learner.optimizer.state_dict()
    data = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(data["algo_state"][STEP_SIZES_KEY]) == set(after)
    loaded = MetaLearner.load(tmp_path / "m.pt")
    try:
        assert type(loaded) is MetaSGD
        for k, v in after.items():
            assert torch.equal(loaded.log_step_sizes[k].detach(), v)
        opt2 = loaded.optimizer.state_dict()  # Adam's moments of the step sizes come back too
        assert len(opt2["state"]) == len(opt["state"]) > len(list(learner.policy.parameters()))
        for pid, s in opt["state"].items():
            for key, value in s.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt2["state"][pid][key]))
        again = loaded.inner_update(meta, ro)  # test time adapts with the learned step sizes...
        for k in meta:
            assert torch.equal(again[k], adapted[k])
        # ...not with inner_lr
        assert any(not torch.allclose(adapted[k], maml_step[k].detach()) for k in maml_step)
        copy = loaded.load_as(workers=0)
        try:
            for k, v in after.items():
                assert torch.equal(copy.log_step_sizes[k].detach(), v)
        finally:
            copy.close()
    finally:
        loaded.close()


def test_a_resumed_metasgd_run_equals_an_uninterrupted_one(tmp_path):
    cfg = MetaConfig.resolve({**TINY, "algo": "metasgd", "iterations": 3})
    Run(tmp_path / "straight", cfg).train(progress=False)
    Run(tmp_path / "resumed", cfg.replace(iterations=1)).train(progress=False)
    Run(tmp_path / "resumed", cfg, resume=True).train(progress=False)
    a = torch.load(tmp_path / "straight/meta_policy.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed/meta_policy.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 3
    for key in ("policy_state",):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    sa, sb = a["algo_state"][STEP_SIZES_KEY], b["algo_state"][STEP_SIZES_KEY]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# -- CAVIA ------------------------------------------------------------------------------------
@pytest.mark.parametrize("inner_steps", [1, 2])
def test_cavia_outer_gradient_wrt_the_weights_through_the_context_step_matches_finite_differences(inner_steps):
    with CAVIA(**GRAD) as learner:
        learner.policy.double()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():  # a gate that depends on the context (it starts at zero weights)
            learner.policy.context_gate.weight.normal_(0.0, 1.0, generator=g)
        ros = _rollouts(learner, inner_steps + 1)
        batches = [_double(learner._batch(ro)) for ro in ros]
        weights = list(learner.policy.parameters())

        def loss():
            return learner.task_loss(batches[:-1], batches[-1])[0]

        analytic = _flat(torch.autograd.grad(loss(), weights, allow_unused=True), weights)
        assert analytic.abs().max() > 1e-4
        torch.testing.assert_close(analytic, _central_differences(loss, weights), rtol=1e-5, atol=1e-8)

        # the path through the context step is really in it: without it the gradient differs
        def loss_context_detached():
            params = ad.trainable_params(learner.policy)
            context = torch.zeros(learner.context_dim, dtype=torch.float64, requires_grad=True)
            for b in batches[:-1]:
                context = learner.context_step(params, context, b).detach().requires_grad_(True)
            post = learner.with_context(batches[-1], context)
            return ad.ppo_surrogate(learner.policy, params, post, 0.2, 0.5, 0.0)[0]

        first_order = _flat(torch.autograd.grad(loss_context_detached(), weights, allow_unused=True), weights)
        assert (analytic - first_order).abs().max() > 1e-6


def test_cavia_inner_step_changes_the_context_only():
    with CAVIA(**TINY) as learner:
        (ro,) = _rollouts(learner, 1)
        meta = learner.meta_state()
        task = learner.family.heldout_tasks("train", 1)[0]
        assert np.all(learner.job_context(task, meta) == 0)  # every task starts at zeros
        np.testing.assert_array_equal(ro.observations[..., learner.obs_dim :], 0.0)
        adapted = learner.inner_update(meta, ro)
        assert set(adapted) == set(meta) | {CONTEXT_KEY}
        for k, v in meta.items():  # the network: bit-identical (the very same tensors)
            assert torch.equal(adapted[k], v)
        assert adapted[CONTEXT_KEY].shape == (3,) and adapted[CONTEXT_KEY].abs().sum() > 0
        twice = learner.inner_update(adapted, ro)
        assert not torch.equal(twice[CONTEXT_KEY], adapted[CONTEXT_KEY])
        job = learner.make_job(task, twice, 1, seed=0)
        assert set(job.params) == set(meta)
        np.testing.assert_array_equal(job.context, twice[CONTEXT_KEY].numpy())
        # the adaptation run at test time, two updates: weights as they were, a new context
        (res,) = learner.adapt_many([task], steps=2, episodes=2, seed=4, safe=False)
        for k, v in meta.items():
            assert torch.equal(res.final_state[k], v)
        assert res.final_state[CONTEXT_KEY].abs().sum() > 0


def test_cavia_trains_the_weights_and_an_adapted_policy_exports_as_a_plain_sb3_zip(tmp_path):
    with CAVIA(**TINY) as learner:
        before = learner.meta_state()
        row = learner.step()
        after = learner.meta_state()
        assert np.isfinite(row["post_return"]) and row["env_steps"] == 2 * 2 * 2 * 200
        assert any(not torch.equal(before[k], after[k]) for k in before)
        assert set(after) == set(before)  # no context among the meta-parameters
        with torch.no_grad():
            learner.policy.context_gate.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(2))
        task = learner.family.heldout_tasks("test", 1)[0]
        (res,) = learner.adapt_many([task], steps=1, episodes=2, seed=1, safe=False)
        state = res.final_state
        path = learner.save_sb3(tmp_path / "adapted.zip", state)
        (ro,) = _rollouts(learner, 1)
        env_obs = ro.observations[:20, 0, : learner.obs_dim]
        exported, _ = PPO.load(path, device="cpu").predict(env_obs, deterministic=True)
        with torch.no_grad():
            learner.policy.load_state_dict(learner.policy_part(state))
            full = torch.cat([torch.as_tensor(env_obs), state[CONTEXT_KEY].expand(20, -1)], dim=1)
            reference, _, _ = learner.policy(full, deterministic=True)
    np.testing.assert_allclose(exported, np.clip(reference.numpy(), -1, 1), rtol=1e-4, atol=1e-5)


def test_a_safe_step_back_halves_the_context_and_leaves_the_weights_bit_identical():
    with CAVIA(**TINY) as learner:
        meta = learner.meta_state()
        kept = {**meta, CONTEXT_KEY: torch.tensor([0.5, -1.0, 2.0])}
        rejected = {**meta, CONTEXT_KEY: torch.tensor([1.5, 1.0, -2.0])}
        half = _halfway(kept, rejected)
    for k, v in meta.items():
        assert torch.equal(half[k], v)
    torch.testing.assert_close(half[CONTEXT_KEY], torch.tensor([1.0, 0.0, 0.0]))


# -- both -------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["metasgd", "cavia"])
def test_safe_adaptation_keeps_an_update_only_where_its_episodes_did_not_return_less(algo):
    """The same episodes with and without the check (same seeds, same states at k = 0, 1): a
    task whose update returned less hands over its starting state when safe, the update when not."""
    with MetaLearner(algo=algo, **{**TINY, "inner_lr": 1.0}) as learner:
        tasks = learner.family.heldout_tasks("test", 6)
        meta = learner.meta_state()
        safe = learner.adapt_many(tasks, steps=1, episodes=2, seed=2, safe=True)
        unsafe = learner.adapt_many(tasks, steps=1, episodes=2, seed=2, safe=False)
    kinds = set()
    for s, u in zip(safe, unsafe):
        assert s.returns == u.returns  # the same episodes
        worse = s.returns[1] < s.returns[0]
        kinds.add(worse)
        start = {**meta, CONTEXT_KEY: torch.zeros(3)} if algo == "cavia" else meta
        expected = start if worse else u.final_state
        assert set(s.final_state) == set(expected)
        assert all(torch.equal(s.final_state[k], expected[k]) for k in expected)
        assert any(not torch.equal(u.final_state[k], start[k]) for k in start)  # the update did move
    assert kinds == {True, False}  # both branches ran


@pytest.mark.parametrize("algo", ["metasgd", "cavia"])
def test_the_same_seed_gives_the_same_checkpoint_and_another_seed_does_not(algo, tmp_path):
    def run(seed, name):
        with MetaLearner(algo=algo, **{**TINY, "iterations": 2, "seed": seed}) as learner:
            learner.train()
            learner.save(tmp_path / name)
        return torch.load(tmp_path / name, weights_only=True)

    a, b, c = run(0, "a.pt"), run(0, "b.pt"), run(1, "c.pt")
    assert a["history"] == b["history"]
    assert all(torch.equal(a["policy_state"][k], b["policy_state"][k]) for k in a["policy_state"])
    if algo == "metasgd":
        sa, sb = a["algo_state"][STEP_SIZES_KEY], b["algo_state"][STEP_SIZES_KEY]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    for pid, s in a["optimizer_state"]["state"].items():
        for key, value in s.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer_state"]["state"][pid][key]))
    assert not all(torch.equal(a["policy_state"][k], c["policy_state"][k]) for k in a["policy_state"])


@pytest.mark.parametrize("algo", ["metasgd", "cavia"])
def test_cli_meta_train_then_adapt_and_evaluate_with_the_checkpoint(algo, tmp_path):
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["meta-train", "--algo", algo, *TINY_CLI, "--out", str(run)])
    assert r.exit_code == 0, r.output
    ckpt = run / "meta_policy.pt"
    data = torch.load(ckpt, weights_only=True)
    assert data["config"]["algo"] == algo and data["iteration"] == 2
    if algo == "metasgd":
        assert set(data["algo_state"][STEP_SIZES_KEY]) == set(data["policy_state"])
    r = CliRunner().invoke(
        cli,
        ["adapt", "--checkpoint", str(ckpt), "--split", "test", "--index", "1", "--steps", "2", "--episodes", "2"]
        + ["--workers", "0", "--out", str(tmp_path / "adapt")],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "adapt" / "adaptation.json").read_text())
    assert report["algo"] == algo and len(report["return"]) == 3 and report["env_steps"] == 3 * 2 * 200
    model = PPO.load(tmp_path / "adapt" / "adapted_policy.zip", device="cpu")
    assert model.observation_space.shape == (4,)  # the env's own observation: any context is folded in
    action, _ = model.predict(np.zeros(4, np.float32), deterministic=True)
    assert action.shape == (1,) and np.isfinite(action).all()
    r = CliRunner().invoke(cli, tiny_evaluate_args(ckpt, tmp_path / "ev"))
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    for methods in res["splits"].values():
        assert set(methods) == {algo, "scratch"}
        assert len(methods[algo]["success_mean"]) == 2


def test_a_metasgd_checkpoint_without_usable_step_sizes_is_a_one_line_error(tmp_path):
    with MetaSGD(**TINY) as learner:
        learner.save(tmp_path / "m.pt")
    data = torch.load(tmp_path / "m.pt", weights_only=True)
    sizes = data["algo_state"][STEP_SIZES_KEY]
    bad = {
        "none": ({**data, "algo_state": {}}, "lacks its learned step sizes"),
        "nan": (
            {**data, "algo_state": {STEP_SIZES_KEY: {**sizes, "log_std": torch.full_like(sizes["log_std"], np.nan)}}},
            "log_std holds NaN or infinite values",
        ),
        "shape": (
            {**data, "algo_state": {STEP_SIZES_KEY: {**sizes, "log_std": torch.zeros(7)}}},
            r"step sizes of 'log_std' have shape \(7,\)",
        ),
        "names": (
            {**data, "algo_state": {STEP_SIZES_KEY: {k: v for k, v in sizes.items() if k != "log_std"}}},
            "do not match its policy",
        ),
    }
    for name, (content, message) in bad.items():
        torch.save(content, tmp_path / f"{name}.pt")
        with pytest.raises(MetarobotError, match=message):
            MetaLearner.load(tmp_path / f"{name}.pt")


def test_cavia_adapted_states_share_the_network_so_it_travels_once_per_worker(monkeypatch):
    from metarobot.sampling import LocalSampler

    sent = []
    original = LocalSampler._send

    def spy(self, w, msg):
        sent.append(len(msg[2]))  # how many parameter dicts this message carries
        original(self, w, msg)

    monkeypatch.setattr(LocalSampler, "_send", spy)
    with CAVIA(**{**TINY, "workers": 2, "meta_batch": 4}) as learner:
        learner.step()  # 4 tasks x 2 phases: the meta-parameters, then 4 adapted contexts on them
    assert len(sent) == 8
    # at most two dicts (before and after adapting) per worker; one per adapted task would be 5+
    assert sum(sent) <= 4
