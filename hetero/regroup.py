"""Apply a :class:`~hetero.plan.RegroupPlan` to any PyTorch trainer's per-group networks (Sec. 5, Alg. 1).

New group ``g`` becomes ``sum_k weights[g][k] * old[sources[g][k]]`` (App. I): a keep, relabel or
split is a one-hot copy, a merge mixes by majority / random (one-hot), average or weighted. The
same mixing is applied to the ``torch.optim`` state of those parameters (Adam / AdamW moments,
SGD momentum), so a copied network keeps its optimiser history. Two ways to hold the groups:

- **per-group modules**: a ``list`` or ``nn.ModuleList`` of G structurally identical modules
  (module ``g`` = group ``g``'s network). After the call it holds G' modules. Modules 0..min(G,G')-1
  keep their identity (their parameters get new values), extra groups are deep copies of their
  first source, dropped groups are removed; the optimisers' ``param_groups`` are updated to match.
- **stacked parameters**: one ``nn.Module`` whose grouped parameters have a leading group dim G
  (e.g. weight [G, in, out]). Each parameter keeps its identity and gets data [G', ...].

Usage in a trainer that implements :class:`hetero.SharingTrainer`::

    def apply_plan(self, plan):
        hetero.apply_plan(plan, self.actors, [self.actor_optim])   # self.actors: ModuleList
        self._layout = plan.layout                                  # agent -> group, yours to keep

Everything is computed before anything is assigned, so a bad plan (wrong group count, modules of
different shapes) raises a ValueError and leaves modules and optimisers untouched.
"""
from __future__ import annotations

import copy
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from hetero.plan import RegroupPlan


def mixing_matrix(plan: RegroupPlan, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """[G_new, G_old] matrix W with W[g, s] = weight of old group s in new group g."""
    g_old = max(plan.old_layout) + 1
    w = torch.zeros(plan.n_groups, g_old, dtype=dtype, device=device)
    for g, (src, wt) in enumerate(zip(plan.sources, plan.weights)):
        for s, x in zip(src, wt):
            w[g, s] += float(x)
    return w


def mix_rows(t: Tensor, plan: RegroupPlan) -> Tensor:
    """Remap the leading (group) dim of ``t`` [G_old, ...] -> [G_new, ...]; one-hot sources copy exactly."""
    if all(len(s) == 1 for s in plan.sources):
        idx = torch.tensor([s[0] for s in plan.sources], dtype=torch.long, device=t.device)
        return t.index_select(0, idx).clone()
    w = mixing_matrix(plan, t.device, t.dtype if t.is_floating_point() else torch.float32)
    return torch.tensordot(w, t.to(w.dtype), dims=([1], [0])).to(t.dtype)


def _mix_list(ts: Sequence[Tensor], plan: RegroupPlan) -> list[Tensor]:
    """Per-group tensors (one per old group, same shape) -> one per new group."""
    if any(t.shape != ts[0].shape for t in ts):
        raise ValueError(f"per-group tensors disagree in shape ({sorted({tuple(t.shape) for t in ts})}); "
                         "every group's module must have the same architecture.")
    return list(mix_rows(torch.stack(list(ts)), plan).unbind(0))


def _check_groups(plan: RegroupPlan, g_old: int, what: str) -> None:
    want = max(plan.old_layout) + 1
    if g_old != want:
        raise ValueError(f"{what} has {g_old} groups but the plan's old_layout {tuple(plan.old_layout)} has {want}; "
                         "build the plan from the layout these networks were trained with.")


def _main_source(plan: RegroupPlan, g: int) -> int:
    w = plan.weights[g]
    return plan.sources[g][max(range(len(w)), key=w.__getitem__)]


def _mix_state(states: list[dict], like: list[Tensor], plan: RegroupPlan, stacked: bool) -> list[dict]:
    """Optimiser state of one parameter slot across old groups -> per new group (list mode), or of one
    stacked parameter (stacked mode: ``states``/``like`` have one entry, returns one).

    Tensors shaped like the parameter (moments, momentum buffers) are mixed like it; in list mode
    scalar entries (Adam's ``step``) are mixed by the same weights; in stacked mode they are kept
    (torch.optim keeps one step count per tensor). A group with no state yet counts as zeros."""
    if stacked:
        st = states[0]
        return [{k: (mix_rows(v, plan) if isinstance(v, Tensor) and v.shape == like[0].shape else v)
                 for k, v in st.items()}]
    if not any(states):
        return [{} for _ in plan.sources]
    ref = next(s for s in states if s)
    out: list[dict] = [{} for _ in plan.sources]
    for key, v0 in ref.items():
        if isinstance(v0, (Tensor, int, float)) and not isinstance(v0, bool):
            t0 = torch.as_tensor(v0)
            vals = [torch.as_tensor(s[key]).to(t0.device) if s.get(key) is not None else torch.zeros_like(t0)
                    for s in states]
            for g, m in enumerate(_mix_list(vals, plan)):
                out[g][key] = m.clone() if isinstance(v0, Tensor) else m.item()  # own storage per group
        else:  # None (an SGD momentum buffer not created yet) or anything else: the main source's value
            for g in range(plan.n_groups):
                out[g][key] = states[_main_source(plan, g)].get(key, v0)
    return out


def regroup_modules(plan: RegroupPlan, modules: list[nn.Module] | nn.ModuleList,
                    optimizers: Iterable[torch.optim.Optimizer] = ()) -> list[nn.Module] | nn.ModuleList:
    """Regroup a list / ModuleList of per-group modules in place (and the optimisers); returns it.

    Parameters and floating-point buffers (e.g. BatchNorm statistics) are mixed by the plan."""
    mods = list(modules)
    _check_groups(plan, len(mods), f"the list of {len(mods)} per-group modules")
    names = [n for n, _ in mods[0].named_parameters()]
    bnames = [n for n, b in mods[0].named_buffers() if b.is_floating_point()]
    for g, m in enumerate(mods):
        if [n for n, _ in m.named_parameters()] != names:
            raise ValueError(f"per-group module {g} has parameters {[n for n, _ in m.named_parameters()]} but module 0 "
                             f"has {names}; every group's module must have the same architecture.")
    old_p = [dict(m.named_parameters()) for m in mods]
    old_b = [dict(m.named_buffers()) for m in mods]
    optimizers = list(optimizers)
    # 1) compute: new values for every (new group, parameter name), and the optimiser states
    new_p = {n: _mix_list([old_p[g][n].detach() for g in range(len(mods))], plan) for n in names}
    new_b = {n: _mix_list([old_b[g][n] for g in range(len(mods))], plan) for n in bnames}
    new_mods = [mods[g] if g < len(mods) else copy.deepcopy(mods[_main_source(plan, g)])
                for g in range(plan.n_groups)]
    new_params = [dict(m.named_parameters()) for m in new_mods]
    opt_updates = []
    for opt in optimizers:
        where = {id(p): (gi, k) for gi, group in enumerate(opt.param_groups) for k, p in enumerate(group["params"])}
        for n in names:
            held = [g for g in range(len(mods)) if id(old_p[g][n]) in where]
            if held and len(held) != len(mods):
                raise ValueError(
                    f"an optimiser holds {n!r} of groups {held} only; regrouping needs one optimiser over every "
                    "group's parameters (per-group lr etc. can live in its param_groups).")
        states = {n: _mix_state([opt.state.get(old_p[g][n], {}) for g in range(len(mods))],
                                [old_p[g][n] for g in range(len(mods))], plan, stacked=False)
                  for n in names if any(id(old_p[g][n]) in where for g in range(len(mods)))}
        opt_updates.append((opt, where, states))
    # 2) commit (assignments only)
    with torch.no_grad():
        for g, m in enumerate(new_mods):
            for n, p in new_params[g].items():
                p.data = new_p[n][g].clone()
                p.grad = None
            bufs = dict(m.named_buffers())
            for n in bnames:
                bufs[n].copy_(new_b[n][g])
    for opt, where, states in opt_updates:
        drop = {id(old_p[g][n]) for g in range(plan.n_groups, len(mods)) for n in names}
        for group in opt.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in drop]
        for g in range(len(mods)):
            for n in names:
                opt.state.pop(old_p[g][n], None)
        for n, per_group in states.items():
            src_slot = next(where[id(old_p[g][n])] for g in range(len(mods)) if id(old_p[g][n]) in where)
            for g in range(plan.n_groups):
                p = new_params[g][n]
                if g >= len(mods):  # a new module: its parameters join the param_group of their source
                    s = _main_source(plan, g)
                    gi = where.get(id(old_p[s][n]), src_slot)[0]
                    opt.param_groups[gi]["params"].append(p)
                if per_group[g]:
                    opt.state[p] = per_group[g]
    if isinstance(modules, nn.ModuleList):
        while len(modules) > plan.n_groups:
            del modules[len(modules) - 1]
        for m in new_mods[len(modules):]:
            modules.append(m)
    else:
        modules[:] = new_mods
    return modules


def regroup_stacked(plan: RegroupPlan, module: nn.Module, optimizers: Iterable[torch.optim.Optimizer] = (),
                    params: Iterable[nn.Parameter] | None = None) -> nn.Module:
    """Regroup a module whose grouped parameters have a leading group dim (and the optimisers); returns it.

    ``params``: the grouped parameters (default: every parameter of ``module``; pass the subset
    when the module also holds shared, ungrouped parameters)."""
    g_old = max(plan.old_layout) + 1
    named = {id(p): n for n, p in module.named_parameters()}
    ps = list(module.parameters()) if params is None else list(params)
    for p in ps:
        if p.dim() == 0 or p.shape[0] != g_old:
            raise ValueError(
                f"parameter {named.get(id(p), '?')!r} of {type(module).__name__} has shape {tuple(p.shape)}; a grouped "
                f"parameter needs leading dim {g_old} (the plan's old group count). Pass params=[...] with only the "
                "grouped parameters, or use a list of per-group modules.")
    optimizers = list(optimizers)
    new_data = [mix_rows(p.detach(), plan) for p in ps]
    new_states = [[(p, _mix_state([opt.state[p]], [p], plan, stacked=True)[0]) for p in ps if p in opt.state]
                  for opt in optimizers]
    with torch.no_grad():
        for p, d in zip(ps, new_data):
            p.data = d
            p.grad = None
    for opt, sts in zip(optimizers, new_states):
        for p, st in sts:
            opt.state[p] = st
    return module


def apply_plan(plan: RegroupPlan, target: list[nn.Module] | nn.Module,
               optimizers: Iterable[torch.optim.Optimizer] | torch.optim.Optimizer = (),
               params: Iterable[nn.Parameter] | None = None) -> list[nn.Module] | nn.Module:
    """Apply ``plan`` to per-group modules (list / ModuleList) or a stacked-parameter module, and to
    the ``torch.optim`` optimisers that hold their parameters. Returns ``target`` (changed in place)."""
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = [optimizers]
    if isinstance(target, (list, tuple, nn.ModuleList)):
        if isinstance(target, tuple):
            raise TypeError("apply_plan needs a list or nn.ModuleList (changed in place), not a tuple.")
        if params is not None:
            raise ValueError("params= is for a stacked-parameter module; a list of per-group modules regroups all of them.")
        return regroup_modules(plan, target, optimizers)
    if isinstance(target, nn.Module):
        return regroup_stacked(plan, target, optimizers, params)
    raise TypeError(f"apply_plan got {type(target).__name__}; pass a list / nn.ModuleList of per-group modules "
                    "or an nn.Module whose grouped parameters have a leading group dim.")
