"""GroupedAdam: Adam with state stacked per group, able to step only some groups.

HAPPO updates one agent (group) at a time (HARL App. C.4). With one stacked parameter tensor
per layer, a stock ``torch.optim.Adam`` would still move the *other* groups through their
momentum even though their gradients are zero. ``GroupedAdam.step(groups)`` updates only the
listed rows; its state (``exp_avg``, ``exp_avg_sq`` [G, ...] and ``step`` [G]) has the same
leading group dimension as the parameters, so a ``RegroupPlan`` remaps it with the same mixing
as the parameters. Gradient-norm clipping is per group (a group's norm over all its
parameters), matching separate per-agent optimisers under NPS and one global clip under FPS.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn


class GroupedAdam:
    """Adam (Kingma & Ba) on parameters that all have the same leading group dimension G.

    Args:
        params: parameters, each shaped [G, ...].
        lr: learning rate; eps: Adam epsilon (HARL: 1e-5); betas: moment decays.
        max_grad_norm: per-group gradient-norm clip (None or <= 0 disables it).
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float, eps: float = 1e-5,
                 betas: tuple[float, float] = (0.9, 0.999), max_grad_norm: float | None = None) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("GroupedAdam got no parameters.")
        gs = {p.shape[0] for p in self.params}
        if len(gs) != 1:
            raise ValueError(f"GroupedAdam: parameters disagree on the group count (leading dims {sorted(gs)}).")
        self.lr, self.eps, self.betas, self.max_grad_norm = lr, eps, betas, max_grad_norm
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.step_count = torch.zeros(gs.pop(), device=self.params[0].device)

    @property
    def n_groups(self) -> int:
        return int(self.step_count.shape[0])

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def group_grad_norms(self) -> Tensor:
        """L2 norm of each group's gradient over all parameters, [G]."""
        sq = torch.zeros(self.n_groups, device=self.step_count.device)
        for p in self.params:
            if p.grad is not None:
                sq = sq + p.grad.reshape(p.shape[0], -1).pow(2).sum(1)
        return sq.sqrt()

    @torch.no_grad()
    def step(self, groups: Tensor | None = None) -> Tensor:
        """Apply one Adam step to the rows ``groups`` ([k] long; None = every group).

        Returns the per-group gradient norms before clipping ([G])."""
        norms = self.group_grad_norms()
        scale = None
        if self.max_grad_norm and self.max_grad_norm > 0:
            scale = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        b1, b2 = self.betas
        if groups is None:
            self.step_count += 1
            steps = self.step_count
        else:
            self.step_count.index_add_(0, groups, torch.ones(len(groups), device=self.step_count.device))
            steps = self.step_count.index_select(0, groups)
        bc1, bc2 = 1 - b1 ** steps, 1 - b2 ** steps
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            view = (-1,) + (1,) * (p.dim() - 1)
            if scale is not None:
                g = g * scale.view(view)
            if groups is None:
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / bc2.view(view)).sqrt_().add_(self.eps)
                p.addcdiv_(m / bc1.view(view), denom, value=-self.lr)
            else:
                gk, mk, vk = g.index_select(0, groups), m.index_select(0, groups), v.index_select(0, groups)
                mk.lerp_(gk, 1 - b1)
                vk.mul_(b2).addcmul_(gk, gk, value=1 - b2)
                m.index_copy_(0, groups, mk)
                v.index_copy_(0, groups, vk)
                upd = (mk / bc1.view(view)) / ((vk / bc2.view(view)).sqrt() + self.eps)
                p.index_add_(0, groups, upd, alpha=-self.lr)
        return norms

    # --- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"lr": self.lr, "step": self.step_count.clone(),
                "exp_avg": [t.clone() for t in self.exp_avg], "exp_avg_sq": [t.clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["exp_avg"]) != len(self.params):
            raise ValueError(f"optimiser state has {len(state['exp_avg'])} tensors, expected {len(self.params)}.")
        dev = self.step_count.device
        self.lr = state["lr"]
        self.step_count = state["step"].clone().to(dev)
        self.exp_avg = [t.clone().to(dev) for t in state["exp_avg"]]
        self.exp_avg_sq = [t.clone().to(dev) for t in state["exp_avg_sq"]]

    def remapped(self, mix: "callable") -> dict:  # type: ignore[valid-type]
        """The state with every group row remapped by ``mix`` (a function of a [G, ...] tensor).

        Computed without side effects; commit with :meth:`load_state_dict`."""
        return {"lr": self.lr, "step": mix(self.step_count),
                "exp_avg": [mix(t) for t in self.exp_avg], "exp_avg_sq": [mix(t) for t in self.exp_avg_sq]}
