"""Scenarios and the VmasEnv wrapper: shapes, seeding, PMS reward, shuffles, resets, registry."""
import pytest
import torch

from marl_backends.envs import VecMultiAgentEnv, VmasEnv, list_envs, make_env
from marl_backends.envs.pms import PMS_TASKS, PmsScenario
from marl_backends.envs.scenario_base import make_perms


@pytest.mark.parametrize("name,n,obs_dim,groups", [
    ("pms_15a_3c", 15, 11, (5, 5, 5)),
    ("pms_30a_3c", 30, 11, (10, 10, 10)),
    ("pms_15a_5c", 15, 15, (3, 3, 3, 3, 3)),
    ("pms_30a_5c_shuffle", 30, 15, (3, 3, 3, 12, 9)),
    ("spread_v0", 4, 14, (2, 2)),
    ("spread_v6", 4, 14, (2, 2)),
])
@pytest.mark.parametrize("continuous", [False, True])
def test_shapes(name, n, obs_dim, groups, continuous):
    env = make_env(name, num_envs=3, continuous=continuous)
    assert isinstance(env, VecMultiAgentEnv)
    s = env.spec
    assert (s.n_agents, s.obs_dim, s.local_state_dim, s.max_steps) == (n, obs_dim, 4, 50)
    assert tuple(torch.bincount(torch.tensor(s.groups)).tolist()) == groups
    assert list(s.groups) == sorted(s.groups)  # colour 0 agents first, etc.
    n_lm = len(groups)
    assert s.state_dim == 4 * n + 2 * n_lm
    o = env.reset(seed=0)
    assert o.obs.shape == (3, n, obs_dim) and o.state.shape == (3, s.state_dim) and o.local_state.shape == (3, n, 4)
    a = env.heuristic_actions(o, 0.3, torch.Generator().manual_seed(0))
    assert a.shape == ((3, n, 2) if continuous else (3, n))
    assert (not continuous and a.dtype == torch.long) or (continuous and a.abs().max() <= 1)
    r = env.step(a)
    assert r.reward.shape == (3, n) and r.terminated.shape == (3,) and r.truncated.dtype == torch.bool
    assert torch.isfinite(r.reward).all() and torch.isfinite(r.next.obs).all()


def test_spawn_ranges():
    env = make_env("pms_15a_3c", num_envs=64)
    o = env.reset(seed=1)
    pos = o.local_state[..., :2]
    lms = o.state[:, 60:].view(64, 3, 2)
    assert pos.abs().max() <= 1 and lms.abs().max() <= 3 and lms.abs().max() > 1.5
    assert (o.local_state[..., 2:] == 0).all()


def test_reset_seed_reproducible():
    a, b = make_env("spread_v3", num_envs=4, seed=5), make_env("spread_v3", num_envs=4, seed=9)
    oa, ob = a.reset(seed=7), b.reset(seed=7)
    assert torch.equal(oa.state, ob.state)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for _ in range(5):
        ra, rb = a.step(a.heuristic_actions(oa, 0.5, g1)), b.step(b.heuristic_actions(ob, 0.5, g2))
        oa, ob = ra.obs, rb.obs
        assert torch.equal(ra.reward, rb.reward) and torch.equal(oa.obs, ob.obs)
    assert not torch.equal(a.reset(seed=8).state, b.reset(seed=7).state)


def _hand_env(groups):
    return VmasEnv(PmsScenario(), "pms_hand", num_envs=1, groups=groups)


def test_pms_reward_formula_with_bonus():
    env = _hand_env((2, 1))
    lms = torch.tensor([[[1.0, 1.0], [-2.0, 0.5]]])
    pos = torch.tensor([[[1.1, 1.0], [0.9, 1.0], [-2.0, 0.0]]])
    env.set_state(pos, torch.zeros_like(pos), lms)
    r = env.step(torch.zeros(1, 3, dtype=torch.long)).reward[0]  # no-op from rest: state unchanged
    # colour 0 complete near its landmark: bonus = 2 ordered pairs * 0.1/(0.2+0.05) / 2 = 0.4
    assert torch.allclose(r, torch.tensor([-0.1 + 0.4, -0.1 + 0.4, -0.5]), atol=1e-6)
    pos[0, 1] = torch.tensor([1.0, 1.2])  # agent 1 now 0.2 > 0.15 away: no bonus for colour 0
    env.set_state(pos, torch.zeros_like(pos), lms)
    r = env.step(torch.zeros(1, 3, dtype=torch.long)).reward[0]
    assert torch.allclose(r, torch.tensor([-0.1, -0.2, -0.5]), atol=1e-6)


def test_pms_bonus_three_members_and_single():
    env = _hand_env((3, 1))
    lms = torch.tensor([[[0.0, 0.0], [2.0, 2.0]]])
    pos = torch.tensor([[[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [2.0, 2.0]]])
    env.set_state(pos, torch.zeros_like(pos), lms)
    r = env.step(torch.zeros(1, 4, dtype=torch.long)).reward[0]
    p = pos[0, :3]
    d = torch.cdist(p, p)
    pair = (0.1 / (d + 0.05)).sum() - 3 * 0.1 / 0.05  # ordered pairs, no self-pairs
    want = torch.tensor([-0.1, -0.1, -0.1]) + pair / 3
    assert torch.allclose(r[:3], want, atol=1e-5)
    assert r[3].abs() < 1e-6  # a lone agent on its landmark: distance 0, no pairs


def test_shuffle_permutes_per_colour():
    plain, shuf = make_env("pms_15a_5c", num_envs=2, seed=4), make_env("pms_15a_5c_shuffle", num_envs=2, seed=4)
    o, s = plain.reset(seed=4).obs, shuf.reset(seed=4).obs
    perm = shuf.scenario.types.perm
    groups = torch.tensor(shuf.spec.groups)
    assert torch.equal(s, torch.gather(o, -1, perm.expand(o.shape)))
    assert torch.equal(perm, make_perms(5, 15, 0)[groups])  # fixed and deterministic
    per_colour = [perm[groups == c] for c in range(5)]
    assert all((pc == pc[0]).all() for pc in per_colour)
    assert len({tuple(pc[0].tolist()) for pc in per_colour}) == 5
    assert all(not torch.equal(pc[0], torch.arange(15)) for pc in per_colour)


def test_truncation_and_auto_reset():
    env = make_env("spread_v0", num_envs=3, seed=0)
    o = env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    for t in range(1, 51):
        r = env.step(env.heuristic_actions(o, 0.2, g))
        assert not r.terminated.any()
        if t < 50:
            assert not r.truncated.any() and torch.equal(r.obs.state, r.next.state)
        o = r.obs
    assert r.truncated.all()
    assert not torch.equal(r.obs.state, r.next.state)
    assert (r.obs.local_state[..., 2:] == 0).all() and r.obs.local_state[..., :2].abs().max() <= 1
    assert r.next.local_state[..., 2:].abs().sum() > 0  # the true last state, before the reset


def test_partial_auto_reset():
    env = make_env("pms_15a_3c", num_envs=3, seed=0)
    o = env.reset(seed=0)
    for _ in range(3):
        o = env.step(torch.full((3, 15), 2)).obs
    env._t[1] = env.spec.max_steps - 1  # env 1 reaches its limit on the next step
    r = env.step(torch.full((3, 15), 2))
    assert r.truncated.tolist() == [False, True, False]
    assert torch.equal(r.obs.state[[0, 2]], r.next.state[[0, 2]])
    assert not torch.equal(r.obs.state[1], r.next.state[1]) and (r.obs.local_state[1, :, 2:] == 0).all()
    assert env._t.tolist() == [4, 0, 4]


def test_registry_and_unknown_name():
    envs = list_envs()
    for task in PMS_TASKS:
        assert f"pms_{task}" in envs and f"pms_{task}_shuffle" in envs
    assert all(f"spread_v{i}" in envs for i in range(7))
    assert "vmas_balance" in envs and "vmas_navigation" in envs
    assert all(isinstance(v, str) and v for v in envs.values())
    with pytest.raises(ValueError, match="pms_15a_3c") as e:
        make_env("pms_15a_3", num_envs=2)
    assert "'pms_15a_3'" in str(e.value) and "spread_v0" in str(e.value)


@pytest.mark.parametrize("name", ["vmas_balance", "vmas_navigation"])
@pytest.mark.parametrize("continuous", [False, True])
def test_vmas_builtins(name, continuous):
    env = make_env(name, num_envs=4, continuous=continuous)
    assert env.model is None and env.spec.groups is None
    o = env.reset(seed=0)
    n, s = env.spec.n_agents, env.spec
    assert o.obs.shape == (4, n, s.obs_dim) and o.state.shape == (4, s.state_dim) and o.local_state.shape == (4, n, 4)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        a = env.heuristic_actions(o, 0.3, g)
        assert a.shape == ((4, n, s.action_dim) if continuous else (4, n))
        r = env.step(a)
        assert r.reward.shape == (4, n) and torch.isfinite(r.reward).all()
        o = r.obs
