"""rma-online (issue 11): an estimate of the hidden parameters re-made after every step, within
the episode, by the sampling workers and by render -- on real cartpole episodes."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tiny import cli_args, tiny, tiny_evaluate_args

from metarobot.algorithms.proto import COUNT, SUM, transitions
from metarobot.algorithms.rma_online import OnlineRMA, column_transitions
from metarobot.cli import cli
from metarobot.online import ConstantContext, OnlineEstimator
from metarobot.render import rollout_frames

TINY = tiny(context_dim=3, context_aux_steps=3)


def student(**extra):
    """An rma-online learner in its estimator stage (no teacher iterations left)."""
    learner = OnlineRMA(**{**TINY, "iterations": 2, "teacher_fraction": 0.0, **extra})
    assert not learner.in_teacher_stage
    return learner


def expected_contexts(learner, rollout, prior_sum, prior_count):
    """What each step's context must be: the head on the running mean of the embeddings of the
    slot's transitions so far (across its episodes), on top of the prior -- computed here from
    the stored rollout."""
    n_steps, n = rollout.rewards.shape
    out = np.zeros((n_steps, n, learner.context_dim), np.float32)
    went_on = rollout.episode_starts[1:] == 0  # (T-1, n): step t's transition was seen
    for j, col in enumerate(column_transitions(rollout, learner.obs_dim)):
        with torch.no_grad():
            emb = learner.encoder(col)
            cum = torch.cat([torch.zeros(1, emb.shape[1]), torch.cumsum(emb, 0)])
            counts = prior_count + torch.arange(len(cum), dtype=cum.dtype)[:, None]
            est = learner.aux_head((prior_sum + cum) / counts.clamp(min=1e-12))
        est[counts[:, 0] == 0] = 0.0  # nothing seen yet: the empty estimate
        seen_before = np.concatenate([[0], np.cumsum(went_on[:, j])])  # transitions before step t
        out[:, j] = est.numpy()[seen_before]
    return out


@pytest.mark.parametrize("with_prior,head", [(False, 0), (True, 0), (True, 16)])
def test_each_steps_context_is_the_estimate_from_every_transition_before_it(with_prior, head):
    with student(context_head=head) as learner:
        task = learner.family.heldout_tasks("test", 1)[0]
        state = learner.meta_state()
        if with_prior:  # an earlier phase's episodes, as adapt accumulates them
            first = learner.sampler().run([learner.make_job(task, state, 2, seed=3)])[0]
            state = learner.inner_update(state, first)
        job = learner.make_job(task, state, 2, seed=5)
        assert job.online is not None
        rollout = learner.sampler().run([job])[0]
        prior_sum = state.get(SUM, torch.zeros(learner.config.context_dim))
        prior_count = float(state[COUNT]) if COUNT in state else 0.0
        seen = rollout.observations[..., learner.obs_dim :]
        want = expected_contexts(learner, rollout, prior_sum, prior_count)
        np.testing.assert_allclose(seen, want, atol=1e-5)
        assert np.abs(np.diff(seen, axis=0)).max() > 0  # it does move within the episode
        if not with_prior:
            assert not seen[0].any()  # nothing seen before the first step


def test_the_teacher_stage_runs_on_the_truth_not_on_an_estimate():
    with OnlineRMA(**{**TINY, "iterations": 4, "teacher_fraction": 0.5, "context_dropout": 0.0}) as learner:
        task = learner.family.heldout_tasks("train", 1)[0]
        job = learner.make_job(task, learner.meta_state(), 2, seed=1)
        assert job.online is None
        np.testing.assert_array_equal(job.context, learner.family.hidden_params(task))


def test_column_transitions_are_protos_transitions_kept_apart_per_slot():
    with student() as learner:
        task = learner.family.heldout_tasks("test", 1)[0]
        rollout = learner.sampler().run([learner.make_job(task, learner.meta_state(), 3, seed=2)])[0]
        cols = column_transitions(rollout, learner.obs_dim)
        assert len(cols) == 3
        flat = transitions(rollout, learner.obs_dim)
        assert sum(len(c) for c in cols) == len(flat)
        # proto's rows are time-major across slots: the same set, one slot at a time
        key = lambda t: sorted(map(tuple, t.numpy().round(6)))  # noqa: E731
        assert key(torch.cat(cols)) == key(flat)


def test_the_estimator_stage_fits_prefix_estimates_and_leaves_the_teacher_alone():
    with student(iterations=3, context_aux_steps=10) as learner:
        before = {k: v.clone() for k, v in learner.policy.state_dict().items()}
        enc_before = {k: v.clone() for k, v in learner.encoder.state_dict().items()}
        rows = [learner.step() for _ in range(3)]
        assert all(np.isfinite(r["aux_loss"]) and r["teacher"] == 0.0 for r in rows)
        for k, v in learner.policy.state_dict().items():
            assert torch.equal(v, before[k]), k
        assert any(not torch.equal(v, enc_before[k]) for k, v in learner.encoder.state_dict().items())


def test_an_online_stream_without_anything_seen_is_all_zeros_and_a_constant_one_is_constant():
    with student() as learner:
        spec = OnlineEstimator(
            encoder_state=learner.encoder.state_dict(),
            head_state=learner.aux_head.state_dict(),
            obs_dim=learner.obs_dim,
            act_dim=1,
            embed_dim=3,
            prior_sum=torch.zeros(3),
            prior_count=0.0,
        )
        stream = spec.start(4)
        assert stream.contexts().shape == (4, learner.context_dim) and not stream.contexts().any()
        row = np.ones((1, 2 * learner.obs_dim + 2), np.float32)
        stream.observe(np.array([2]), row)
        ctx = stream.contexts()
        assert ctx[2].any() and not np.delete(ctx, 2, axis=0).any()
    const = ConstantContext(np.array([1.0, 2.0]), 3)
    const.observe(np.array([0]), np.zeros((1, 5)))
    np.testing.assert_array_equal(const.contexts(), [[1, 2]] * 3)
    assert ConstantContext(None, 2).contexts().shape == (2, 0)


def test_render_runs_the_estimator_online_as_sampling_does():
    with student() as learner:
        task = learner.family.heldout_tasks("test", 1)[0]
        frames, outcomes = rollout_frames(learner, task, learner.meta_state(), 1, 32, 24)
        assert len(outcomes) == 1 and len(frames[0]) > 2 and frames[0][0].shape == (24, 32, 3)


def test_cli_meta_train_adapt_and_evaluate_rma_online(tmp_path):
    run = tmp_path / "run"
    args = ["meta-train", "--algo", "rma-online"]
    args += [*cli_args(tiny(outer_epochs=1, context_dim=3, iterations=2)), "--no-progress"]
    r = CliRunner().invoke(cli, [*args, "--out", str(run)])
    assert r.exit_code == 0, r.output
    ckpt = run / "meta_policy.pt"
    assert torch.load(ckpt, weights_only=True)["config"]["algo"] == "rma-online"
    r = CliRunner().invoke(cli, tiny_evaluate_args(ckpt, tmp_path / "ev"))
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(res["splits"]["test"]) == {"rma-online", "scratch"}
    r = CliRunner().invoke(
        cli,
        ["render", "--checkpoint", str(ckpt), "--index", "0", "--episodes", "1", "--steps", "1"]
        + ["--out", str(tmp_path / "v.gif"), "--format", "gif", "--width", "48", "--height", "32"],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "v.gif").stat().st_size > 0


def test_init_from_an_rma_run_takes_its_estimator_and_from_an_oracle_a_fresh_one(tmp_path):
    with student() as trained:
        trained.step()
        trained.save(tmp_path / "rma.pt")
        theirs = {k: v.clone() for k, v in trained.encoder.state_dict().items()}
    with OnlineRMA(**{**TINY, "iterations": 2, "init_from": str(tmp_path / "rma.pt")}) as warm:
        for k, v in warm.encoder.state_dict().items():
            assert torch.equal(v, theirs[k]), k
    from metarobot.algorithms.oracle import Oracle

    with Oracle(**{k: v for k, v in TINY.items() if k != "context_aux_steps"}) as oracle:
        oracle.save(tmp_path / "oracle.pt")
    with OnlineRMA(**{**TINY, "iterations": 2, "init_from": str(tmp_path / "oracle.pt")}) as fresh:
        assert not torch.equal(fresh.encoder.net[0].weight, theirs["net.0.weight"])


def _per_slot_prefix_loss(learner, phases, hidden):
    """The first step's loss of ``_fit_online``, computed slot by slot as it was before the
    batched version: the reference the batch must equal."""
    from torch import nn

    from metarobot.meta import job_seed

    cfg, head = learner.config, learner.aux_head
    rng = np.random.default_rng(job_seed(cfg.seed, 95, learner.iteration))
    space = learner.policy.action_space
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    cols = [[column_transitions(ph[i], learner.obs_dim) for ph in phases] for i in range(len(phases[0]))]
    loss = torch.zeros(())
    for i, target in enumerate(hidden):
        k = int(rng.integers(len(phases)))
        prior = [c for phase in cols[i][:k] for c in phase if len(c)]
        prior_sum, prior_count = torch.zeros(cfg.context_dim), 0.0
        if prior:
            emb = learner.encoder(torch.cat(prior))
            prior_sum, prior_count = emb.sum(0), float(len(emb))
        rollout = phases[k][i]
        went_on = rollout.episode_starts[1:] == 0
        estimates, acted, obs = [], [], []
        for j, col in enumerate(cols[i][k]):
            cum = torch.cumsum(learner.encoder(col), dim=0) if len(col) else torch.zeros((0, cfg.context_dim))
            cum = torch.cat([torch.zeros((1, cfg.context_dim)), cum])
            counts = prior_count + torch.arange(len(cum), dtype=cum.dtype)[:, None]
            known = counts[:, 0] > 0
            est = (prior_sum + cum[known]) / counts[known]
            estimates.append(est)
            before = np.concatenate([[0], np.cumsum(went_on[:, j])])
            steps = np.flatnonzero(known.numpy()[before])
            acted.append(est[torch.as_tensor(before[steps] - int((~known).sum()))])
            obs.append(torch.as_tensor(rollout.observations[steps, j, : learner.obs_dim]))
        pred = head(torch.cat(estimates))
        if len(pred):
            loss = loss + nn.functional.mse_loss(pred, target.expand_as(pred)) / len(hidden)
        if cfg.context_action_coef > 0 and any(len(a) for a in acted):
            o = torch.cat(obs)
            mine = learner._action_mean(torch.cat([o, head(torch.cat(acted))], dim=1), low, high)
            truth = learner._action_mean(torch.cat([o, target.expand(len(o), -1)], dim=1), low, high)
            loss = loss + cfg.context_action_coef * nn.functional.mse_loss(mine, truth) / len(hidden)
    return float(loss)


@pytest.mark.parametrize("action_coef", [0.0, 0.5])
def test_the_batched_prefix_fit_equals_the_slot_by_slot_one(action_coef):
    # two adaptation phases before the last (priors), and cartpole episodes that end early: a
    # slot holds several episodes of different lengths
    with student(context_aux_steps=1, context_action_coef=action_coef, inner_steps=2) as learner:
        seen = {}
        fit = learner._fit_online

        def spy(phases, hidden):
            assert len(phases) == 3
            with torch.no_grad():
                seen["reference"] = _per_slot_prefix_loss(learner, phases, hidden)
            seen["batched"] = fit(phases, hidden)
            return seen["batched"]

        learner._fit_online = spy
        learner.step()
        assert seen["batched"] == pytest.approx(seen["reference"], rel=1e-5, abs=1e-7)
        assert seen["reference"] > 0


def test_a_linear_head_averages_per_transition_estimates_and_a_nonlinear_one_need_not():
    """Why ``context_head`` exists: a linear head on the mean embedding is the mean of one
    estimate per transition, so two histories with the same per-transition estimates on average
    get the same estimate; a one-layer head on the mean can tell them apart."""
    from metarobot.algorithms.proto import estimator_head, head_from_state, head_out_dim

    torch.manual_seed(0)
    emb = torch.randn(6, 4)
    linear, mlp = estimator_head(4, 3), estimator_head(4, 3, width=8)
    with torch.no_grad():
        torch.testing.assert_close(linear(emb.mean(0)), linear(emb).mean(0))
        assert not torch.allclose(mlp(emb.mean(0)), mlp(emb).mean(0), atol=1e-4)
        for head in (linear, mlp):
            copy = head_from_state(head.state_dict())
            assert head_out_dim(head.state_dict()) == 3
            torch.testing.assert_close(copy(emb), head(emb))


def test_without_carry_context_every_step_infers_the_robot_afresh():
    # grasp (v0)'s rma-online: its estimator reads nothing across episodes there (bench/RESULTS.md)
    with student() as carried, student(carry_context=False) as fresh:
        tasks = carried.family.heldout_tasks("test", 2)
        on = carried.adapt_many(tasks, steps=2, episodes=1, seed=3)
        off = fresh.adapt_many(tasks, steps=2, episodes=1, seed=3)
        start = fresh.meta_state()
    for a, b in zip(on, off):
        assert a.returns[0] == b.returns[0]  # k = 0 runs the same state either way
        assert float(a.final_state[COUNT]) > 0  # carried: the earlier episodes' transitions
        assert COUNT not in b.final_state or float(b.final_state[COUNT]) == 0
        assert all(torch.equal(b.final_state[k], v) for k, v in start.items())  # the start state, deployed


def test_carry_context_leaves_gradient_methods_alone_and_must_be_a_boolean():
    from metarobot.config import MetaConfig
    from metarobot.errors import MetarobotError
    from metarobot.meta import MetaLearner

    with MetaLearner(**tiny(algo="maml", carry_context=False)) as learner:
        start = learner.meta_state()
        res = learner.adapt_many(learner.family.heldout_tasks("test", 1), steps=1, episodes=1, safe=False)
    assert any(not torch.equal(res[0].final_state[k], v) for k, v in start.items())  # still updated
    with pytest.raises(MetarobotError, match="carry-context must be true or false"):
        MetaConfig.resolve(**tiny(carry_context="yes"))
