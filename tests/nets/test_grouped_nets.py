"""Grouped networks: layouts, batched forward, regroup plans, grouped optimiser, GRU."""
from __future__ import annotations

import types

import pytest
import torch

from hetero.plan import RegroupPlan
from marl_backends.nets import (
    GroupedAdam,
    GroupedGRU,
    GroupedMLP,
    GroupedPolicy,
    apply_plan,
    init_generator,
    make_policy,
    parse_sharing,
)

torch.set_num_threads(1)


def _mlp(layout, seed=0, **kw):
    return GroupedMLP(5, 3, (16, 16), layout, input_norm=True, layer_norm=True, generator=init_generator(seed), **kw)


def _randomise(m: torch.nn.Module, seed: int = 1) -> None:
    g = init_generator(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def test_nps_differs_fps_identical_on_same_input():
    x = torch.randn(7, 1, 5).expand(7, 4, 5)  # same observation for all 4 agents
    nps, fps = _mlp(parse_sharing("nps", 4).layout), _mlp(parse_sharing("fps", 4).layout)
    y_nps, y_fps = nps(x), fps(x)
    assert not torch.allclose(y_nps[:, 0], y_nps[:, 1])
    for i in range(1, 4):
        assert torch.equal(y_fps[:, 0], y_fps[:, i])
    pol = GroupedPolicy(5, 3, True, (0, 0, 0, 0), append_id=True, generator=init_generator(0))
    _randomise(pol)
    p = pol.distribution_params(x)
    assert not torch.allclose(p[:, 0], p[:, 1])  # FPS+id: the id makes agents differ


def test_batched_forward_matches_per_agent_reference():
    layout = (0, 1, 1, 2, 0)
    m = _mlp(layout)
    _randomise(m)
    x = torch.randn(6, 5, 5)
    y = m(x)
    for i, g in enumerate(layout):
        h = torch.nn.functional.layer_norm(x[:, i], (5,), m.input_norm.weight[g], m.input_norm.bias[g])
        for k, lin in enumerate(m.layers):
            h = torch.relu(h @ lin.weight[g] + lin.bias[g])
            h = torch.nn.functional.layer_norm(h, (16,), m.norms[k].weight[g], m.norms[k].bias[g])
        ref = h @ m.head.weight[g] + m.head.bias[g]
        torch.testing.assert_close(y[:, i], ref, rtol=1e-5, atol=1e-6)
    sub = torch.tensor([3, 1])
    torch.testing.assert_close(m(x[:, sub], agents=sub), y[:, sub])


@pytest.mark.parametrize("layout", [(0, 0, 0, 1, 1, 1, 2, 2, 2), (0, 1, 0, 1, 2, 2), (2, 0, 1, 0, 2, 1, 1, 0),
                                    (0, 0, 1, 1, 1, 2), (0, 1, 2, 3), (0, 0, 0, 0)])
def test_group_major_forward_is_the_gather_forward(layout):
    """All agents at once run group-major (rows group after group, padded): the same outputs and
    gradients as gathering each agent's parameters, up to summation order (checked in float64)."""
    from marl_backends.nets.grouped import group_major_index

    m = _mlp(layout).double()
    _randomise(m)
    major = group_major_index(m.layout, m.n_groups) if 1 < m.n_groups < len(layout) else None
    assert (m._major is None) == (major is None)
    if major is not None and major[0] is not None:  # every agent in exactly one slot, the rest padding
        slots, inverse, size = major
        assert sorted(slots[slots < len(layout)].tolist()) == list(range(len(layout)))
        assert torch.equal(slots[inverse], torch.arange(len(layout)))
        for slot, agent in enumerate(slots.tolist()):  # slot k holds an agent of group k // size
            assert agent == len(layout) or layout[agent] == slot // size
    x = torch.randn(7, 3, len(layout), 5, dtype=torch.float64, requires_grad=True)
    y = m(x)
    grads = torch.autograd.grad(y.square().sum(), [x, *m.parameters()])
    m._major = None  # the gather path
    y_ref = m(x)
    grads_ref = torch.autograd.grad(y_ref.square().sum(), [x, *m.parameters()])
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, grads_ref):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_group_major_index_follows_set_layout():
    m = _mlp((0, 1, 2, 3, 4, 5))
    assert m._major is None  # identity: already group-major
    m.set_layout((0, 0, 0, 1, 1, 1))
    assert m._major == (None, None, 3)  # contiguous, equal sizes: a plain view
    m.set_layout((0, 0, 0, 0, 0, 1))
    assert m._major is None  # padding 1 group of 1 to 5 rows would cost more than the gather


def _plan(layout, sources, weights, old):
    return RegroupPlan(tuple(layout), tuple(map(tuple, sources)), tuple(map(tuple, weights)),
                       ("keep",) * len(sources), tuple(old))


def test_regroup_split_copies_and_keeps_unchanged_agents():
    old = (0, 0, 0, 1, 1)
    m = _mlp(old)
    _randomise(m)
    x = torch.randn(9, 5, 5)
    y0 = m(x)
    # split group 0 -> {0,1} stay in group 0, agent 2 to a new group 2 copied from old 0
    plan = _plan((0, 0, 2, 1, 1), [(0,), (1,), (0,)], [(1.0,), (1.0,), (1.0,)], old)
    apply_plan(m, plan)
    assert m.layout_tuple == (0, 0, 2, 1, 1) and m.n_groups == 3
    assert torch.equal(m(x), y0)  # split copies outputs exactly; other agents untouched
    # relabel: swap group ids; every agent keeps its parameters
    plan2 = _plan((1, 1, 0, 2, 2), [(2,), (0,), (1,)], [(1.0,), (1.0,), (1.0,)], m.layout_tuple)
    apply_plan(m, plan2)
    assert torch.equal(m(x), y0)


def test_average_and_weighted_merge_is_parameter_mean():
    old = (0, 1, 2, 2)
    m = _mlp(old)
    _randomise(m)
    before = {k: v.clone() for k, v in m.state_dict().items() if k != "layout"}
    plan = _plan((0, 0, 1, 1), [(0, 1), (2,)], [(0.5, 0.5), (1.0,)], old)
    opt = GroupedAdam(m.parameters(), lr=1e-3)
    for t in opt.exp_avg:
        t.normal_()
    ea_before = [t.clone() for t in opt.exp_avg]
    apply_plan(m, plan, [opt])
    for k, v in m.state_dict().items():
        if k == "layout":
            continue
        torch.testing.assert_close(v[0], 0.5 * (before[k][0] + before[k][1]))
        assert torch.equal(v[1], before[k][2])
    for t_new, t_old in zip(opt.exp_avg, ea_before):
        torch.testing.assert_close(t_new[0], 0.5 * (t_old[0] + t_old[1]))
        assert torch.equal(t_new[1], t_old[2])
    # weighted merge (by agent counts 1 and 2)
    m2 = _mlp(old)
    _randomise(m2)
    b2 = {k: v.clone() for k, v in m2.state_dict().items() if k != "layout"}
    apply_plan(m2, _plan((0, 0, 0, 0), [(1, 2)], [(1 / 3, 2 / 3)], old))
    w = m2.layers[0].weight
    torch.testing.assert_close(w[0], b2["layers.0.weight"][1] / 3 + 2 * b2["layers.0.weight"][2] / 3)


def test_bad_plan_changes_nothing():
    m = _mlp((0, 0, 1))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match="made against layout"):
        apply_plan(m, _plan((0, 1, 1), [(0,), (1,)], [(1.0,), (1.0,)], (0, 1, 1)))
    for k, v in m.state_dict().items():
        assert torch.equal(v, sd[k])


def test_grouped_adam_steps_only_selected_groups_and_matches_adam():
    m = _mlp((0, 1, 2))
    ref = _mlp((0, 1, 2))
    ref.load_state_dict(m.state_dict())
    opt = GroupedAdam(m.parameters(), lr=1e-2, eps=1e-5)
    topt = torch.optim.Adam(ref.parameters(), lr=1e-2, eps=1e-5)
    x = torch.randn(8, 3, 5)
    for _ in range(3):
        for net, o in ((m, opt), (ref, topt)):
            o.zero_grad()
            net(x).pow(2).sum().backward()
            o.step()
    for a, b in zip(m.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    before = [p.detach().clone() for p in m.parameters()]
    opt.zero_grad()
    m(x).pow(2).sum().backward()
    opt.step(torch.tensor([1]))
    for p, b in zip(m.parameters(), before):
        assert torch.equal(p[0], b[0]) and torch.equal(p[2], b[2])
    assert not torch.equal(m.layers[0].weight[1], before[2][1])  # group 1 did move


def test_state_dict_roundtrip_after_regroup_resizes():
    m = _mlp((0, 0, 1))
    _randomise(m)
    apply_plan(m, _plan((0, 1, 2), [(0,), (0,), (1,)], [(1.0,), (1.0,), (1.0,)], (0, 0, 1)))
    fresh = _mlp((0, 0, 1), seed=5)
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(4, 3, 5)
    assert fresh.layout_tuple == (0, 1, 2) and torch.equal(fresh(x), m(x))


def test_gru_matches_torch_grucell():
    gru = GroupedGRU(4, 6, 2, init_generator(0))
    x, h = torch.randn(3, 5, 4), torch.randn(3, 5, 6)
    gidx = torch.tensor([1, 0, 1])
    out = gru.step_am(x, h, gidx)
    for i, g in enumerate(gidx.tolist()):
        cell = torch.nn.GRUCell(4, 6)
        with torch.no_grad():
            cell.weight_ih.copy_(gru.w_ih[g].t())
            cell.weight_hh.copy_(gru.w_hh[g].t())
            cell.bias_ih.copy_(gru.b_ih[g])
            cell.bias_hh.copy_(gru.b_hh[g])
        torch.testing.assert_close(out[i], cell(x[i], h[i]), rtol=1e-5, atol=1e-6)


def test_parse_sharing_and_errors():
    assert parse_sharing("groups:2,2,0", 3).layout == (0, 0, 1)
    assert parse_sharing("groups:env", 3, (1, 0, 1)).layout == (0, 1, 0)
    assert parse_sharing("fps-id", 3).append_id
    with pytest.raises(ValueError, match="unknown --sharing"):
        parse_sharing("partial", 3)
    with pytest.raises(ValueError, match="3 agents"):
        parse_sharing("groups:0,1", 3)
    with pytest.raises(ValueError, match="comma-separated integers"):
        parse_sharing("groups:a,b,c", 3)
    with pytest.raises(ValueError, match="true groups"):
        parse_sharing("groups:env", 3)


def test_make_policy_distribution_params():
    spec = types.SimpleNamespace(n_agents=4, obs_dim=6, action_dim=5, discrete=True, groups=None)
    pol = make_policy(spec, "nps", hidden=(32,), seed=0)
    p = pol.distribution_params(torch.randn(10, 4, 6))
    assert p.shape == (10, 4, 5)
    torch.testing.assert_close(p.sum(-1), torch.ones(10, 4))
    spec_c = types.SimpleNamespace(n_agents=4, obs_dim=6, action_dim=2, discrete=False, groups=None)
    assert make_policy(spec_c, "fps").distribution_params(torch.randn(3, 4, 6)).shape == (3, 4, 4)
