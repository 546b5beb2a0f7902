"""Context-conditioned algorithms: proto (task inference from transitions) and the oracle."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from tiny import tiny

import metarobot
from metarobot.algorithms.context import CONTEXT_KEY
from metarobot.algorithms.oracle import Oracle
from metarobot.algorithms.proto import COUNT, SUM, Proto, transitions
from metarobot.meta import MetaLearner

TINY = tiny(outer_epochs=1, outer_minibatches=1, context_dim=3)


@pytest.fixture(scope="module")
def proto_and_rollout():
    learner = Proto(**TINY)
    task = learner.family.heldout_tasks("train", 1)[0]
    (rollout,) = learner.sampler().run([learner.make_job(task, learner.meta_state(), 2, seed=5)])
    yield learner, task, rollout
    learner.close()


def test_the_prototype_is_permutation_invariant(proto_and_rollout):
    learner, _, rollout = proto_and_rollout
    trans = transitions(rollout, learner.obs_dim)
    assert trans.shape[0] > 100  # cartpole episodes of two slots, boundary steps left out
    with torch.no_grad():
        z = learner.encoder(trans).mean(0)
        shuffled = learner.encoder(trans[torch.randperm(len(trans), generator=torch.Generator().manual_seed(0))])
    torch.testing.assert_close(shuffled.mean(0), z, rtol=1e-5, atol=1e-6)
    # adapting in two halves (two updates) gives the prototype of all transitions
    state = learner.inner_update(learner.meta_state(), rollout)
    torch.testing.assert_close(learner.context_of(state)[:-1], z, rtol=1e-5, atol=1e-6)
    assert learner.context_of(state)[-1] == 1.0 and float(state[COUNT]) == len(trans)


def test_proto_adapts_the_context_only(proto_and_rollout):
    learner, task, rollout = proto_and_rollout
    meta = learner.meta_state()
    assert np.all(learner.job_context(task, meta) == 0)  # nothing known before the first episodes
    adapted = learner.inner_update(meta, rollout)
    for k, v in meta.items():
        assert torch.equal(adapted[k], v)
    assert set(adapted) - set(meta) == {SUM, COUNT}
    job = learner.make_job(task, adapted, 1, seed=0)
    assert set(job.params) == set(meta) and job.context.shape == (learner.context_dim,)


def test_proto_outer_gradient_reaches_the_encoder_and_matches_finite_differences(proto_and_rollout):
    learner, task, rollout = proto_and_rollout
    learner.policy.double()
    learner.encoder.double()
    learner.aux_head.double()
    try:
        batches = [learner._batch(rollout), learner._batch(rollout)]
        batches = [
            type(b)(
                b.obs.double(), b.actions.double(), b.old_log_prob.double(), b.advantages.double(), b.returns.double()
            )
            for b in batches
        ]
        trans = [transitions(rollout, learner.obs_dim).double()[:64]]
        hidden = torch.as_tensor(learner.family.hidden_params(task), dtype=torch.float64)
        weight = learner.encoder.net[0].weight

        def loss() -> torch.Tensor:
            params = {k: v for k, v in learner.policy.named_parameters()}
            return learner.task_loss(params, batches, trans, hidden)[0]

        (grad,) = torch.autograd.grad(loss(), [weight])
        assert grad.abs().sum() > 0
        eps = 1e-6
        for idx in [(0, 0), (3, 5), (10, 2)]:
            with torch.no_grad():
                weight[idx] += eps
                up = float(loss())
                weight[idx] -= 2 * eps
                down = float(loss())
                weight[idx] += eps
            assert (up - down) / (2 * eps) == pytest.approx(float(grad[idx]), rel=1e-4, abs=1e-8)
    finally:
        learner.policy.float()
        learner.encoder.float()
        learner.aux_head.float()


def test_proto_trains_saves_and_reloads_its_encoder(tmp_path):
    with Proto(**TINY) as learner:
        before = {k: v.clone() for k, v in learner.encoder.state_dict().items()}
        row = learner.step()
        assert np.isfinite(row["aux_loss"]) and np.isfinite(row["post_return"])
        after = learner.encoder.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
        learner.save(tmp_path / "p.pt")
    loaded = MetaLearner.load(tmp_path / "p.pt")
    try:
        assert type(loaded) is Proto
        for k, v in after.items():
            assert torch.equal(loaded.encoder.state_dict()[k], v)
    finally:
        loaded.close()


def test_the_oracle_sees_exactly_the_hidden_parameters_and_no_other_method_does():
    family = metarobot.get_family("cartpole")
    task = family.heldout_tasks("test", 1)[0]
    with Oracle(**{k: v for k, v in TINY.items() if k != "context_dim"}) as oracle:
        job = oracle.make_job(task, oracle.meta_state(), 1, seed=3)
        np.testing.assert_array_equal(job.context, family.hidden_params(task))
        (ro,) = oracle.sampler().run([job])
        env_dim = family.observation_space_example()[0].shape[0]
        np.testing.assert_array_equal(
            ro.observations[:, 0, env_dim:], np.broadcast_to(family.hidden_params(task), (200, family.hidden_dim))
        )
    for algo in ("maml", "multitask", "reptile"):
        with MetaLearner(algo=algo, **{k: v for k, v in TINY.items() if k != "context_dim"}) as learner:
            job = learner.make_job(task, learner.meta_state(), 1, seed=3)
            assert job.context is None and learner.spec.context_dim == 0
    with Proto(**TINY) as proto:
        assert proto.job_context(task, proto.meta_state()).shape == (4,)  # inferred, never the truth


def test_an_adapted_context_policy_exports_as_a_plain_sb3_zip(proto_and_rollout, tmp_path):
    learner, task, rollout = proto_and_rollout
    with torch.no_grad():  # a gate that depends on the context (it starts at zero weights)
        learner.policy.context_gate.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(2))
    state = learner.deployed_state(task, learner.inner_update(learner.meta_state(), rollout))
    path = learner.save_sb3(tmp_path / "adapted.zip", state)
    model = PPO.load(path, device="cpu")
    env_obs = rollout.observations[:20, 0, : learner.obs_dim]
    exported, _ = model.predict(env_obs, deterministic=True)
    with torch.no_grad():
        learner.policy.load_state_dict(learner.policy_part(state))
        full = torch.cat([torch.as_tensor(env_obs), state[CONTEXT_KEY].expand(20, -1)], dim=1)
        reference, _, _ = learner.policy(full, deterministic=True)
    np.testing.assert_allclose(exported, np.clip(reference.numpy(), -1, 1), rtol=1e-4, atol=1e-5)


def test_the_encoder_input_statistics_merge_like_one_big_batch():
    from metarobot.algorithms.proto import TransitionEncoder

    enc = TransitionEncoder(obs_dim=2, act_dim=1, context_dim=3)
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(n, 6, generator=g) * 5 + 3 for n in (7, 40, 1, 13)]
    for part in parts:
        enc.update_statistics(part)
    allx = torch.cat(parts)
    torch.testing.assert_close(enc.in_mean, allx.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(enc.in_var, allx.var(0, unbiased=False), rtol=1e-4, atol=1e-4)


def test_rma_keeps_the_teachers_policy_and_learns_to_estimate_the_hidden_parameters(tmp_path):
    from metarobot.algorithms.rma import RMA

    settings = {**TINY, "context_aux_steps": 5}
    with Oracle(**{k: v for k, v in settings.items() if k != "context_aux_steps"}) as teacher:
        teacher.step()
        teacher.save(tmp_path / "oracle.pt")
        taught = teacher.meta_state()
    with RMA(init_from=str(tmp_path / "oracle.pt"), **settings) as student:
        for k, v in taught.items():
            assert torch.equal(student.meta_state()[k], v)
        row = student.step()
        assert np.isfinite(row["aux_loss"])
        for k, v in taught.items():  # the teacher's policy is not trained further
            assert torch.equal(student.meta_state()[k], v)
        task = student.family.heldout_tasks("test", 1)[0]
        meta = student.meta_state()
        assert np.all(student.job_context(task, meta) == 0)
        (ro,) = student.sampler().run([student.make_job(task, meta, 2, seed=1)])
        estimate = student.job_context(task, student.inner_update(meta, ro))
        assert estimate.shape == (student.family.hidden_dim,) and np.any(estimate != 0)
        student.save(tmp_path / "rma.pt")
    (tmp_path / "oracle.pt").unlink()
    loaded = MetaLearner.load(tmp_path / "rma.pt")
    try:
        assert type(loaded) is RMA
        np.testing.assert_allclose(loaded.job_context(task, loaded.inner_update(meta, ro)), estimate, rtol=1e-5)
    finally:
        loaded.close()


def test_rma_without_a_teacher_trains_one_first_then_keeps_it(tmp_path):
    """Without --init-from, the first teacher_fraction of the iterations are the oracle's (truth
    in the observation, the policy trained); then the policy stays as it is."""
    from metarobot.algorithms.rma import RMA

    settings = {**TINY, "context_aux_steps": 2, "iterations": 4, "teacher_fraction": 0.5}
    with RMA(**settings) as learner:
        assert learner.teacher_iterations == 2
        assert learner.training_context_dropout == 0.2  # rma's default: the teacher learns the unknown case too
        task = learner.family.heldout_tasks("train", 1)[0]
        np.testing.assert_array_equal(
            learner.job_context(task, learner.meta_state()), learner.family.hidden_params(task)
        )
        before = learner.meta_state()
        rows = [learner.step() for _ in range(2)]
        assert [r["teacher"] for r in rows] == [1.0, 1.0]
        taught = learner.meta_state()
        assert any(not torch.equal(before[k], taught[k]) for k in before)  # stage 1 trains the policy
        assert np.all(learner.job_context(task, taught) == 0)  # stage 2: estimates, from nothing yet
        assert learner.training_context_dropout == 0.0  # stage 2 runs on its own estimates
        jobs = learner._jobs([task] * 8, [taught] * 8, 0, 1)
        assert all(not j.context.any() for j in jobs)  # nothing estimated yet: all zero, none dropped
        row = learner.step()
        assert row["teacher"] == 0.0 and np.isfinite(row["aux_loss"])
        for k, v in taught.items():
            assert torch.equal(learner.meta_state()[k], v)
        learner.save(tmp_path / "rma.pt")
    loaded = MetaLearner.load(tmp_path / "rma.pt")
    try:
        assert loaded.iteration == 3 and not loaded.in_teacher_stage
    finally:
        loaded.close()


def test_context_dropout_zeroes_a_share_of_training_contexts_decided_by_each_jobs_seed():
    from metarobot.algorithms.context import drop_contexts
    from metarobot.sampling import Job

    task = metarobot.get_family("cartpole").heldout_tasks("train", 1)[0]
    jobs = [Job(task, {}, 1, 5, seed, 0.9, context=np.ones(3, np.float32)) for seed in range(400)]
    dropped = drop_contexts(jobs, 0.25)
    zeroed = [not j.context.any() for j in dropped]
    assert 0.18 < np.mean(zeroed) < 0.32
    assert zeroed == [not j.context.any() for j in drop_contexts(list(reversed(jobs)), 0.25)][::-1]
    assert all(j.context.all() for j in drop_contexts(jobs, 0.0))
    assert all(d.seed == j.seed and d.task == j.task for d, j in zip(dropped, jobs))
