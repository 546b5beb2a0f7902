"""The meta-gradient, first-order variant, Reptile step, clones and SB3 export -- on tiny
problems with fixed synthetic batches (no simulator) where the maths is what is tested."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from metarobot.policies import MaskedActorCriticPolicy, zero_schedule

from metarobot import adaptation as ad

INNER_LR = 0.3


def tiny_policy(mask=False, seed=0):
    torch.manual_seed(seed)
    obs_dim = 5 if mask else 3
    obs_space = gym.spaces.Box(-10, 10, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    policy = MaskedActorCriticPolicy(
        obs_space,
        act_space,
        zero_schedule,
        net_arch={"pi": [4], "vf": [4]},
        activation_fn=torch.nn.Tanh,
        log_std_init=-0.3,
        action_mask_slice=(3, 5) if mask else None,
    )
    return policy.double()


def synthetic_batch(policy, n=32, seed=1, mask=None):
    g = torch.Generator().manual_seed(seed)
    obs_dim = policy.observation_space.shape[0]
    obs = torch.randn(n, obs_dim, generator=g, dtype=torch.float64)
    if mask is not None:
        obs[:, 3:5] = torch.tensor(mask, dtype=torch.float64)
    actions = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.5
    with torch.no_grad():
        _, logp, _ = policy.evaluate_actions(obs, actions)
    # old log-probs a little off the current ones, inside the clip range
    old = logp + 0.05 * torch.randn(n, generator=g, dtype=torch.float64)
    adv = torch.randn(n, generator=g, dtype=torch.float64)
    returns = torch.randn(n, generator=g, dtype=torch.float64)
    return ad.Batch(obs, actions, old, adv, returns)


def meta_objective(policy, params, inner_batches, outer_batch, first_order=False, create_graph=True):
    for b in inner_batches:
        params = ad.inner_step(policy, params, b, INNER_LR, first_order=first_order, create_graph=create_graph)
    loss, _ = ad.ppo_surrogate(policy, params, outer_batch, clip_range=0.2, vf_coef=0.5, ent_coef=0.01)
    return loss


def flat_grad(policy, inner_batches, outer_batch, first_order=False):
    params = ad.trainable_params(policy)
    loss = meta_objective(policy, params, inner_batches, outer_batch, first_order)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params.values())]
    )


def finite_difference(policy, inner_batches, outer_batch, eps=1e-6):
    base = {k: v.detach().clone() for k, v in ad.trainable_params(policy).items()}
    out = []
    for name, value in base.items():
        flat = value.reshape(-1)
        for i in range(flat.numel()):
            vals = []
            for sign in (1, -1):
                pert = {k: b.clone().requires_grad_(True) for k, b in base.items()}
                v = flat.clone()
                v[i] += sign * eps
                pert[name] = v.reshape(value.shape).requires_grad_(True)
                vals.append(float(meta_objective(policy, pert, inner_batches, outer_batch).detach()))
            out.append((vals[0] - vals[1]) / (2 * eps))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_maml_meta_gradient_matches_central_finite_differences(inner_steps):
    policy = tiny_policy()
    inner = [synthetic_batch(policy, seed=10 + k) for k in range(inner_steps)]
    outer = synthetic_batch(policy, seed=99)
    analytic = flat_grad(policy, inner, outer)
    numeric = finite_difference(policy, inner, outer)
    assert analytic.abs().max() > 1e-3  # a real, non-trivial gradient
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_fomaml_differs_from_maml_exactly_by_the_second_order_term():
    policy = tiny_policy()
    inner = synthetic_batch(policy, seed=3)
    outer = synthetic_batch(policy, seed=4)
    g_maml = flat_grad(policy, [inner], outer)
    g_fo = flat_grad(policy, [inner], outer, first_order=True)
    # MAML: (I - a H_inner(theta)) g_outer(theta');  FOMAML: g_outer(theta')
    params = ad.trainable_params(policy)
    adapted = ad.inner_step(policy, params, inner, INNER_LR, create_graph=False)
    adapted = {k: v.detach().requires_grad_(True) for k, v in adapted.items()}
    loss, _ = ad.ppo_surrogate(policy, adapted, outer, clip_range=0.2, vf_coef=0.5, ent_coef=0.01)
    g_outer = torch.autograd.grad(loss, list(adapted.values()), allow_unused=True)
    g_outer = [g if g is not None else torch.zeros_like(p) for g, p in zip(g_outer, adapted.values())]
    torch.testing.assert_close(g_fo, torch.cat([g.reshape(-1) for g in g_outer]))
    inner_loss = ad.policy_gradient_loss(policy, params, inner)
    grads = torch.autograd.grad(inner_loss, list(params.values()), create_graph=True, allow_unused=True)
    dot = sum((g * v).sum() for g, v in zip(grads, g_outer) if g is not None)
    hvp = torch.autograd.grad(dot, list(params.values()), allow_unused=True)
    hvp_flat = torch.cat(
        [(h if h is not None else torch.zeros_like(p)).reshape(-1) for h, p in zip(hvp, params.values())]
    )
    second_order = -INNER_LR * hvp_flat
    assert second_order.abs().max() > 1e-4  # the term is really there...
    torch.testing.assert_close(g_maml - g_fo, second_order, rtol=1e-6, atol=1e-9)  # ...and is the whole difference


def test_inner_step_does_not_touch_the_meta_parameters():
    policy = tiny_policy()
    before = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    params = ad.trainable_params(policy)
    new = ad.inner_step(policy, params, synthetic_batch(policy), INNER_LR)
    assert any(not torch.equal(new[k], params[k]) for k in params)
    for k, v in policy.state_dict().items():
        assert torch.equal(v, before[k])


def test_clone_output_equals_original_before_adaptation():
    policy = tiny_policy(mask=True)
    batch = synthetic_batch(policy, mask=[1.0, 0.0])
    v1, lp1, e1 = policy.evaluate_actions(batch.obs, batch.actions)
    v2, lp2, e2 = ad.evaluate_with(policy, ad.trainable_params(policy), batch.obs, batch.actions)
    torch.testing.assert_close(v1.flatten(), v2)
    torch.testing.assert_close(lp1, lp2)
    torch.testing.assert_close(e1, e2)


def test_masked_action_dims_do_not_enter_the_log_probability():
    policy = tiny_policy(mask=True)
    batch = synthetic_batch(policy, mask=[1.0, 0.0])
    other = batch.actions.clone()
    other[:, 1] += 5.0  # change only the padded action dimension
    _, lp1, _ = policy.evaluate_actions(batch.obs, batch.actions)
    _, lp2, _ = policy.evaluate_actions(batch.obs, other)
    torch.testing.assert_close(lp1, lp2)
    batch.obs[:, 4] = 1.0  # unmask it: now it counts
    _, lp3, _ = policy.evaluate_actions(batch.obs, other)
    assert not torch.allclose(lp1, lp3)
