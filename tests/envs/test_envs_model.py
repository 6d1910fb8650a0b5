"""Model access: agreement with the simulator, bitwise identity of identical agents, and which
kinds separate the two groups of every spread version."""
from dataclasses import replace

import pytest
import torch

from hetero.protocols import ModelAccess
from marl_backends.envs import make_env
from marl_backends.envs.scenario_base import others_index
from marl_backends.envs.spread import VERSIONS

KINDS = ("obs", "response", "effect", "objective")
MODEL_ENVS = ["pms_15a_3c", "pms_30a_5c_shuffle"] + [f"spread_{v}" for v in VERSIONS]


def _every_agent(pool, n):
    rows = torch.arange(pool.rows).repeat_interleave(n)
    return rows, torch.arange(n).repeat(pool.rows)


@pytest.mark.parametrize("name", MODEL_ENVS)
@pytest.mark.parametrize("continuous", [False, True])
def test_model_matches_simulator(pools, name, continuous):
    """Every agent as ego, every pool row: the model's one-step prediction = VMAS's real step."""
    env, pool = pools(name, continuous)
    n, m = env.spec.n_agents, env.model
    assert isinstance(m, ModelAccess) and m.kinds == frozenset(KINDS)
    rows, ego = _every_agent(pool, n)
    b = torch.arange(rows.numel())
    _, y = m.evaluate("response", pool, rows, ego)
    torch.testing.assert_close(y[b, ego], pool.next_local_state[rows, ego], atol=1e-5, rtol=0)
    _, y = m.evaluate("effect", pool, rows, ego)
    others = pool.next_local_state[rows[:, None], others_index(n)[ego]].flatten(1)
    torch.testing.assert_close(y[b, ego], others, atol=1e-5, rtol=0)
    _, y = m.evaluate("obs", pool, rows, ego)
    torch.testing.assert_close(y[b, ego], pool.obs[rows, ego], atol=1e-5, rtol=0)
    # VMAS rewards after the step: r_t = R(s_{t+1}); evaluate the reward function there
    nxt = replace(pool, state=pool.next_state, local_state=pool.next_local_state)
    _, y = m.evaluate("objective", nxt, rows, ego)
    torch.testing.assert_close(y[b, ego, 0], pool.reward[rows, ego], atol=1e-5, rtol=0)


def test_v3_forces_are_exercised(pools):
    """The v3 check above is only meaningful if agents do push each other in the pool."""
    env, pool = pools("spread_v3")
    free = make_env("spread_v0", num_envs=2).model  # same physics without forces
    rows, ego = _every_agent(pool, 4)
    _, y3 = env.model.evaluate("effect", pool, rows, ego)
    _, y0 = free.evaluate("effect", pool, rows, ego)
    assert (y3 - y0).abs().amax(-1).gt(1e-3).float().mean() > 0.3


def test_pms_bonus_reached_in_pool(pools):
    env, pool = pools("pms_15a_3c", True)
    assert (pool.reward > 0).any()  # the heuristic brings whole colours onto their landmarks


def _pattern(env, pool, count=400):
    g = torch.Generator().manual_seed(0)
    n = env.spec.n_agents
    rows = torch.randint(0, pool.rows, (count,), generator=g)
    ego = torch.randint(0, n, (count,), generator=g)
    groups = torch.tensor(env.spec.groups)
    out = {}
    for kind in KINDS:
        x, y = env.model.evaluate(kind, pool, rows, ego)
        assert x.shape == (count, env.model.x_dim(kind)) and y.shape == (count, n, env.model.y_dim(kind))
        assert torch.isfinite(y).all()
        for i in range(n):
            j = int((groups == groups[i]).nonzero()[0])
            assert torch.equal(y[:, i], y[:, j]), f"{kind}: agents {i} and {j} of one group differ"
        reps = [int((groups == gr).nonzero()[0]) for gr in groups.unique()]
        out[kind] = any(not torch.equal(y[:, a], y[:, c]) for a in reps for c in reps if a < c)
    return out


@pytest.mark.parametrize("version", list(VERSIONS))
def test_spread_kinds_separate_exactly_the_changed_functions(pools, version):
    env, pool = pools(f"spread_{version}")
    differs = _pattern(env, pool)
    assert {k for k, v in differs.items() if v} == set(VERSIONS[version])


@pytest.mark.parametrize("name", ["pms_15a_3c", "pms_30a_5c_shuffle"])
def test_pms_kinds(pools, name):
    env, pool = pools(name)
    differs = _pattern(env, pool)
    assert differs == {"obs": True, "response": False, "effect": False, "objective": True}


def test_x_layout_and_ego_slot(pools):
    env, pool = pools("spread_v6")
    rows, ego = torch.tensor([5, 5, 7]), torch.tensor([0, 3, 2])
    x, _ = env.model.evaluate("response", pool, rows, ego)
    s = pool.state[rows]
    assert torch.equal(x[:, :4], pool.local_state[rows, ego])  # ego (p, v)
    assert torch.equal(x[:, 4:9], pool.action[rows, ego])  # ego action (one-hot)
    assert torch.equal(x[1, 9:21], s[1, :12])  # ego 3: others are agents 0, 1, 2
    assert torch.equal(x[:, -4:], s[:, -4:])  # landmarks last
    xo, _ = env.model.evaluate("obs", pool, rows, ego)
    assert xo.shape[1] == pool.state.shape[1] and torch.equal(xo[0], s[0])  # ego 0: x = s


def test_bad_pool_rejected(pools):
    _, pool = pools("spread_v0")
    other = make_env("pms_15a_3c", num_envs=2).model
    with pytest.raises(ValueError, match="expects 15 agents"):
        other.evaluate("obs", pool, torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="not evaluable"):
        make_env("spread_v0", num_envs=2).model.evaluate("meta", pool, torch.tensor([0]), torch.tensor([0]))
