"""hetero.apply_plan: per-group modules / stacked parameters and torch.optim state follow a RegroupPlan."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hetero import RegroupPlan, apply_plan

# 3 old groups -> 3 new: group 0 keeps, group 1 is a weighted merge of old 1 and 2, group 2 is a split of old 0
PLAN = RegroupPlan(layout=(0, 1, 1, 2), sources=((0,), (1, 2), (0,)), weights=((1.0,), (0.25, 0.75), (1.0,)),
                   actions=("keep", "merge", "split"), old_layout=(0, 1, 2, 0))
W = torch.tensor([[1.0, 0, 0], [0, 0.25, 0.75], [1.0, 0, 0]])
SHRINK = RegroupPlan(layout=(0, 0, 0, 0), sources=((0, 1, 2),), weights=((0.5, 0.25, 0.25),),
                     actions=("merge",), old_layout=(0, 1, 2, 0))


def _trained(opt_cls, **kw):
    torch.manual_seed(0)
    mods = nn.ModuleList(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)) for _ in range(3))
    opt = opt_cls(mods.parameters(), **kw)
    for _ in range(3):
        opt.zero_grad()
        sum(m(torch.randn(5, 3)).pow(2).sum() for m in mods).backward()
        opt.step()
    return mods, opt


def _stack(mods, name):
    return torch.stack([dict(m.named_parameters())[name].detach() for m in mods])


@pytest.mark.parametrize("opt_cls,kw", [(torch.optim.Adam, {"lr": 1e-2}), (torch.optim.AdamW, {"lr": 1e-2}),
                                        (torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9})])
def test_module_list_params_and_optimizer_state_are_mixed(opt_cls, kw):
    mods, opt = _trained(opt_cls, **kw)
    names = [n for n, _ in mods[0].named_parameters()]
    before = {n: _stack(mods, n) for n in names}
    st_before = {n: [dict(opt.state[dict(m.named_parameters())[n]]) for m in mods] for n in names}
    first = mods[0]
    out = apply_plan(PLAN, mods, opt)
    assert out is mods and len(mods) == 3 and mods[0] is first
    for n in names:
        want = torch.tensordot(W, before[n], dims=([1], [0]))
        torch.testing.assert_close(_stack(mods, n), want)
        for key, v in st_before[n][0].items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                olds = torch.stack([s[key] for s in st_before[n]])
                got = torch.stack([opt.state[dict(m.named_parameters())[n]][key] for m in mods])
                torch.testing.assert_close(got, torch.tensordot(W, olds, dims=([1], [0])))
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in mods.parameters()}
    # the optimiser keeps working on the regrouped modules
    opt.zero_grad()
    sum(m(torch.randn(5, 3)).pow(2).sum() for m in mods).backward()
    opt.step()


def test_new_module_equals_an_independent_copy_after_one_more_step():
    """A split copies the source's parameters *and* Adam moments: both copies then step identically."""
    mods, opt = _trained(torch.optim.Adam, lr=1e-2)
    apply_plan(PLAN, mods, opt)  # new group 2 is a copy of old group 0 = new group 0
    assert mods[2] is not mods[0]
    x = torch.randn(5, 3)
    opt.zero_grad()
    (mods[0](x).pow(2).sum() + mods[2](x).pow(2).sum()).backward()
    opt.step()
    for a, b in zip(mods[0].parameters(), mods[2].parameters()):
        torch.testing.assert_close(a, b)


def test_plain_list_shrinks_and_optimizer_drops_removed_parameters():
    mods, opt = _trained(torch.optim.Adam, lr=1e-2)
    lst = list(mods)
    before = _stack(lst, "0.weight")
    apply_plan(SHRINK, lst, [opt])
    assert len(lst) == 1
    torch.testing.assert_close(lst[0][0].weight, 0.5 * before[0] + 0.25 * before[1] + 0.25 * before[2])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(lst[0].parameters()))
    assert set(opt.state) <= set(lst[0].parameters())
    assert float(opt.state[lst[0][0].weight]["step"]) == 3.0


class Stacked(nn.Module):
    def __init__(self, g):
        super().__init__()
        self.w = nn.Parameter(torch.randn(g, 3, 2))
        self.b = nn.Parameter(torch.randn(g, 2))
        self.shared = nn.Parameter(torch.randn(2))

    def forward(self, x):  # x [G, B, 3]
        return torch.baddbmm(self.b[:, None], x, self.w) + self.shared


def test_stacked_module_rows_and_adam_moments_are_mixed():
    torch.manual_seed(0)
    m = Stacked(3)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        m(torch.randn(3, 5, 3)).pow(2).sum().backward()
        opt.step()
    w0, m0, shared0 = m.w.detach().clone(), opt.state[m.w]["exp_avg"].clone(), m.shared.detach().clone()
    ident = id(m.w)
    with pytest.raises(ValueError, match="shared"):
        apply_plan(PLAN, m, opt)
    torch.testing.assert_close(m.w, w0)  # nothing changed
    apply_plan(PLAN, m, opt, params=[m.w, m.b])
    assert id(m.w) == ident and m.w.shape == (3, 3, 2)
    torch.testing.assert_close(m.w, torch.tensordot(W, w0, dims=([1], [0])))
    torch.testing.assert_close(opt.state[m.w]["exp_avg"], torch.tensordot(W, m0, dims=([1], [0])))
    torch.testing.assert_close(m.shared, shared0)
    apply_plan(SHRINK.__class__.identity((0, 1, 2, 0)), m, opt, params=[m.w, m.b])
    apply_plan(RegroupPlan(layout=(0, 0, 0, 0), sources=((1,),), weights=((1.0,),), actions=("merge",),
                           old_layout=(0, 1, 2, 0)), m, opt, params=[m.w, m.b])
    assert m.w.shape == (1, 3, 2) and opt.state[m.w]["exp_avg_sq"].shape == (1, 3, 2)
    opt.zero_grad()
    m(torch.randn(1, 5, 3)).pow(2).sum().backward()
    opt.step()


def test_bad_inputs_raise_and_change_nothing():
    mods, opt = _trained(torch.optim.Adam, lr=1e-2)
    before = _stack(mods, "0.weight")
    two = RegroupPlan.identity((0, 1, 0))
    with pytest.raises(ValueError, match="3 groups but the plan's old_layout"):
        apply_plan(two, mods, opt)
    per_group = [torch.optim.Adam(m.parameters()) for m in mods]
    with pytest.raises(ValueError, match="one optimiser over every"):
        apply_plan(PLAN, mods, per_group)
    odd = nn.ModuleList([nn.Linear(3, 4), nn.Linear(3, 4), nn.Linear(3, 5)])
    with pytest.raises(ValueError, match="same architecture"):
        apply_plan(PLAN, odd)
    torch.testing.assert_close(_stack(mods, "0.weight"), before)
    with pytest.raises(TypeError, match="list or nn.ModuleList"):
        apply_plan(PLAN, tuple(mods))
