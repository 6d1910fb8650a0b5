"""Apply a :class:`hetero.RegroupPlan` to grouped modules and their optimiser state, atomically.

New group ``g``'s parameters become ``sum_k weights[g][k] * old[sources[g][k]]`` (paper Sec. 5,
App. I: a keep / relabel / split is a one-hot copy; a merge mixes by majority / random
(one-hot), average (uniform) or weighted (by agent count)). The same mixing is applied to the
optimiser's per-group moments and step counts. Everything is computed first; only then are
parameters, optimiser state and layouts swapped in, so a failure leaves the model untouched.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from hetero.plan import RegroupPlan
from hetero.regroup import mix_rows, mixing_matrix  # noqa: F401 (re-exported)
from marl_backends.nets.grouped import GroupedLeaf, LayoutModule
from marl_backends.nets.optim import GroupedAdam


def apply_plan(module: nn.Module, plan: RegroupPlan, optimizers: Iterable[GroupedAdam] = ()) -> None:
    """Regroup every grouped parameter of ``module`` (and the optimisers' state) by ``plan``.

    Raises ValueError, changing nothing, when the plan was made against another layout or the
    parameters do not have the plan's old group count."""
    layouts = [m for m in module.modules() if isinstance(m, LayoutModule)]
    if not layouts:
        raise ValueError(f"{type(module).__name__} has no grouped layout to regroup.")
    for m in layouts:
        if m.layout_tuple != tuple(plan.old_layout):
            raise ValueError(
                f"RegroupPlan was made against layout {tuple(plan.old_layout)} but the model's layout is "
                f"{m.layout_tuple}; rebuild the plan from the trainer's current layout."
            )
        if m.n_agents != len(plan.layout):
            raise ValueError(f"RegroupPlan.layout has {len(plan.layout)} agents but the model has {m.n_agents}.")
    g_old = max(plan.old_layout) + 1
    params = [p for leaf in module.modules() if isinstance(leaf, GroupedLeaf) for p in leaf.parameters(recurse=False)]
    for p in params:
        if p.shape[0] != g_old:
            raise ValueError(f"a grouped parameter has {p.shape[0]} groups but the plan's old layout has {g_old}.")
    optimizers = list(optimizers)
    opt_ids = [{id(q) for q in o.params} for o in optimizers]
    # 1) compute everything
    new_data = [mix_rows(p.data, plan) for p in params]
    new_opt = [o.remapped(lambda t: mix_rows(t, plan)) for o in optimizers]
    for ids in opt_ids:
        if not ids <= {id(p) for p in params}:
            raise ValueError("an optimiser passed to apply_plan holds parameters outside the regrouped module.")
    # 2) commit (plain assignments only)
    with torch.no_grad():
        for p, d in zip(params, new_data):
            p.data = d
            p.grad = None
    for leaf in module.modules():
        if isinstance(leaf, GroupedLeaf):
            leaf.n_groups = plan.n_groups
    for m in layouts:
        m.layout = torch.tensor(plan.layout, dtype=torch.long, device=m.layout.device)
        m._refresh()
    for o, st in zip(optimizers, new_opt):
        o.load_state_dict(st)
