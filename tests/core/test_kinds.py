"""Model-free conditions are ego-centric (hetero/kinds.py, issue 10.4).

Two agents of one type must be one function of x: in agent-index order they are not (each reads
its own data from a different slot), so a CVAE that fits well pushes same-type agents apart.
"""
from dataclasses import replace

import pytest
import torch

from hetero.kinds import model_free_xy
from hetero.samples import SamplePool

ENV_KINDS = ("obs", "response", "effect", "objective")
PER_AGENT = ("local_state", "obs", "action", "reward", "next_local_state", "next_obs")


def typed_pool(groups=(0, 0, 1, 1), rows=64, seed=0, env_dim=3, local_dims=None) -> SamplePool:
    """Agents whose functions depend on their type only: o_i = W_g s_i + V_g S^E,
    s_i' = s_i + 0.1 B_g a_i, r_i = -|s_i' - c_g|. ``local_dims`` (per type) pads smaller local
    states to the largest with garbage (7.0), which a mask marks as padding."""
    g = torch.Generator().manual_seed(seed)
    grp = torch.tensor(groups)
    n, k = len(groups), int(grp.max()) + 1
    dl = 4
    s = torch.randn(rows, n, dl, generator=g)
    a = torch.nn.functional.one_hot(torch.randint(5, (rows, n), generator=g), 5).float()
    env = torch.randn(rows, env_dim, generator=g)
    w, v = torch.randn(k, dl, 6, generator=g), torch.randn(k, env_dim, 6, generator=g)
    b, c = torch.randn(k, 5, dl, generator=g), torch.randn(k, dl, generator=g)
    mask = torch.ones(n, dl, dtype=torch.bool)
    if local_dims is not None:
        mask = torch.arange(dl)[None, :] < torch.tensor(local_dims)[grp][:, None]
        s = s * mask
    s2 = (s + 0.1 * torch.einsum("tna,nad->tnd", a, b[grp])) * mask
    o = torch.einsum("tnd,nde->tne", s, w[grp]) + torch.einsum("td,nde->tne", env, v[grp])
    r = -(s2 - c[grp] * mask).norm(dim=-1)
    garbage = lambda x: x.masked_fill(~mask, 7.0)  # noqa: E731 - padding holds junk; masks must hide it
    return SamplePool(state=torch.cat([s.flatten(1), env], -1), next_state=torch.cat([s2.flatten(1), env], -1),
                      local_state=garbage(s), obs=o, action=a, reward=r, next_local_state=garbage(s2),
                      next_obs=o, local_state_mask=mask, env_state=env, next_env_state=env.clone())


def swap_agents(pool: SamplePool, i: int, j: int) -> SamplePool:
    """The same rows with agents i and j exchanging all their data (types stay with the slots)."""
    perm = torch.arange(pool.n_agents)
    perm[i], perm[j] = j, i
    kw = {f: getattr(pool, f)[:, perm] for f in PER_AGENT}
    tail = pool.state[:, pool.local_state[0].numel():]  # the env part of the global state
    return replace(pool, **kw, state=torch.cat([kw["local_state"].flatten(1), tail], -1))


@pytest.mark.parametrize("kind", ENV_KINDS + ("meta",))
@pytest.mark.parametrize("with_env", [True, False])
def test_same_type_agents_in_different_slots_are_one_function(kind, with_env):
    """Agent 0's (x, y) at row t reappear as agent 1's when the two (same type) swap their data:
    so no slot of x tells the agents apart."""
    pool = typed_pool()
    swapped = swap_agents(pool, 0, 1)
    if not with_env:
        pool, swapped = (replace(p, env_state=None, next_env_state=None) for p in (pool, swapped))
    x, y, m = model_free_xy(kind, pool)
    xs, ys, ms = model_free_xy(kind, swapped)
    assert torch.equal(xs[:, 1], x[:, 0]) and torch.equal(ys[:, 1], y[:, 0])
    assert torch.equal(m[0], m[1])  # same type, same real dims


@pytest.mark.parametrize("kind", ("obs", "response"))
def test_same_type_agents_have_the_same_least_squares_map(kind):
    """o_i and s_i' are linear in x: fit y ~ x per agent (minimum-norm least squares). The map of
    agent 1 predicts agent 0's y exactly (same type), agent 2's map does not. With x in agent-index
    order the two type-0 agents read their state from different slots and their maps differ."""
    pool = typed_pool(rows=400)
    x, y, _ = model_free_xy(kind, pool)
    x = torch.cat([x, torch.ones_like(x[..., :1])], -1).double().transpose(0, 1)  # [N, T, Dx+1]
    y = y.double().transpose(0, 1)
    fit = torch.linalg.pinv(x) @ y  # [N, Dx+1, Dy]
    err = lambda partner: (x @ fit[partner] - y).pow(2).mean((1, 2)) / y.var()  # noqa: E731
    assert (err([1, 0, 3, 2]) < 1e-9).all(), err([1, 0, 3, 2])  # each agent through its same-type partner's map
    assert (err([2, 3, 0, 1]) > 1e-2).all(), err([2, 3, 0, 1])  # through another type's map


def test_layout_own_slot_then_others_then_env():
    pool = typed_pool(groups=(0, 1, 2), rows=5)
    s, a, e = pool.local_state, pool.action, pool.env_state
    x, _, _ = model_free_xy("obs", pool)
    assert torch.equal(x[:, 2], torch.cat([s[:, 2], s[:, 0], s[:, 1], e], -1))
    x, y, m = model_free_xy("effect", pool)
    assert torch.equal(x[:, 1], torch.cat([s[:, 1], a[:, 1], s[:, 0], s[:, 2], a[:, 0], a[:, 2], e], -1))
    nxt = pool.next_local_state
    assert torch.equal(y[:, 1], torch.cat([nxt[:, 0], nxt[:, 2], pool.next_env_state], -1))
    assert m.shape == (3, 2 * 4 + 3) and m.all()
    no_env = replace(pool, env_state=None, next_env_state=None)
    assert model_free_xy("effect", no_env)[1].shape[-1] == 2 * 4


def test_padding_is_masked_and_the_same_for_same_type_agents():
    """Local states of 4 and 2 real dims with junk in the padding: x carries 0 there, y_mask
    leaves the padding out, and same-type agents' x have padding at the same places."""
    pool = typed_pool(groups=(0, 0, 1, 1, 1), local_dims=(4, 2), rows=32)
    lm = pool.local_state_mask
    assert not lm[2:, 2:].any() and (pool.local_state[:, 2:, 2:] == 7.0).all()
    for kind in ("obs", "response", "effect", "objective", "meta"):
        x, y, m = model_free_xy(kind, pool)
        assert not (x == 7.0).any(), f"{kind}: padding of the local states leaked into x"
        zero = (x == 0).all(0)  # [N, Dx] dims that are 0 in every row
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[2], zero[3]) and torch.equal(zero[3], zero[4])
        assert not torch.equal(zero[0], zero[2])  # the two types' own slots differ
        xs, ys, _ = model_free_xy(kind, swap_agents(pool, 2, 3))
        assert torch.equal(xs[:, 3], x[:, 2]) and torch.equal(ys[:, 3], y[:, 2])
    x, y, m = model_free_xy("effect", pool)
    others_of_0 = torch.cat([lm[1], lm[2], lm[3], lm[4], torch.ones(3, dtype=torch.bool)])
    assert torch.equal(m[0], others_of_0)
    assert (y[:, 0][:, ~others_of_0] == 7.0).all()  # junk stays in y, where the mask drops it from the loss
    _, _, m = model_free_xy("response", pool)
    assert torch.equal(m, lm)


def test_env_state_fields_validated_and_carried():
    pool = typed_pool(rows=10)
    with pytest.raises(ValueError, match="next_env_state"):
        replace(pool, next_env_state=None).validate()
    with pytest.raises(ValueError, match="env_state"):
        replace(pool, env_state=pool.env_state[:5], next_env_state=pool.next_env_state[:5]).validate()
    with pytest.raises(ValueError, match="NaN"):
        bad = pool.env_state.clone()
        bad[3, 1] = float("nan")
        replace(pool, env_state=bad).validate()
    sub = pool.subset(torch.tensor([4, 2]))
    assert torch.equal(sub.env_state, pool.env_state[[4, 2]]) and torch.equal(sub.next_env_state, pool.next_env_state[[4, 2]])
    both = SamplePool.concat([pool, sub]).validate()
    assert torch.equal(both.env_state, torch.cat([pool.env_state, sub.env_state]))
    none = replace(pool, env_state=None, next_env_state=None)
    assert SamplePool.concat([none, none]).env_state is None
    with pytest.raises(ValueError, match="env_state"):
        SamplePool.concat([pool, none])
    assert pool.to("cpu").env_state is not None


def test_meta_condition_holds_the_env_state_unless_as_printed():
    """Meta-Het's x is (s_i, a_i, S^E) by default and (s_i, a_i) with meta_condition="own" (App. G as
    printed); without S^E in the pool both are (s_i, a_i)."""
    pool = typed_pool()
    x_env, y_env, _ = model_free_xy("meta", pool)
    x_own, y_own, _ = model_free_xy("meta", pool, meta_condition="own")
    ds, da, de = pool.local_state.shape[-1], pool.action.shape[-1], pool.env_state.shape[-1]
    assert x_own.shape[-1] == ds + da and x_env.shape[-1] == ds + da + de
    torch.testing.assert_close(x_env[..., :ds + da], x_own)
    torch.testing.assert_close(x_env[:, 2, ds + da:], pool.env_state)
    torch.testing.assert_close(y_env, y_own)
    bare = replace(pool, env_state=None, next_env_state=None)
    torch.testing.assert_close(model_free_xy("meta", bare)[0], x_own)
    with pytest.raises(ValueError, match="meta_condition"):
        model_free_xy("meta", pool, meta_condition="full")
