"""A grouped GRU: per-group GRU weights, all agents stepped in one batched op.

Same equations as ``torch.nn.GRUCell`` (r, z, n gates), with weights stacked per group so an
agent-major batch ``[n, B, D]`` is advanced by two ``baddbmm`` calls. The time loop is the only
Python loop (inherent to recurrence); agents are never looped over. HARL's recurrent policy
(App. K, Table 4: one GRU layer after the MLP base) is ``GroupedMLP`` features -> ``GroupedGRU``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from marl_backends.nets.grouped import GroupedLeaf, LayoutModule, _rows


class GroupedGRU(GroupedLeaf):
    """GRU cell with weights w_ih [G, in, 3H], w_hh [G, H, 3H], b_ih / b_hh [G, 3H]."""

    def __init__(self, in_dim: int, hidden: int, n_groups: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_dim, self.hidden_dim, self.n_groups = in_dim, hidden, n_groups
        self.w_ih = nn.Parameter(torch.empty(n_groups, in_dim, 3 * hidden))
        self.w_hh = nn.Parameter(torch.empty(n_groups, hidden, 3 * hidden))
        self.b_ih = nn.Parameter(torch.zeros(n_groups, 3 * hidden))
        self.b_hh = nn.Parameter(torch.zeros(n_groups, 3 * hidden))
        with torch.no_grad():
            for g in range(n_groups):
                for w, d in ((self.w_ih, in_dim), (self.w_hh, hidden)):
                    m = torch.empty(3 * hidden, d)
                    nn.init.orthogonal_(m, generator=generator)
                    w[g].copy_(m.t())

    def step_am(self, x: Tensor, h: Tensor, gidx: Tensor | None) -> Tensor:
        """One step: x [n, B, in], h [n, B, H] -> h' [n, B, H]."""
        gi = torch.baddbmm(_rows(self.b_ih, gidx).unsqueeze(1), x, _rows(self.w_ih, gidx))
        gh = torch.baddbmm(_rows(self.b_hh, gidx).unsqueeze(1), h, _rows(self.w_hh, gidx))
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return torch.lerp(n, h, z)  # (1 - z) * n + z * h

    def sequence_am(self, x: Tensor, h0: Tensor, gidx: Tensor | None, resets: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x [T, n, B, in], h0 [n, B, H]; resets [T, B] bool zeroes h before step t (episode starts).

        Returns (outputs [T, n, B, H], final h)."""
        h, outs = h0, []
        for t in range(x.shape[0]):
            if resets is not None:
                h = h * (~resets[t]).to(h.dtype)[None, :, None]
            h = self.step_am(x[t], h, gidx)
            outs.append(h)
        return torch.stack(outs), h


class GroupedGRUNet(LayoutModule):
    """A layout-owning GRU: ``forward(x [T, B, n, in], h0 [B, n, H], resets [T, B])``."""

    def __init__(self, in_dim: int, hidden: int, layout, generator: torch.Generator | None = None) -> None:  # noqa: ANN001
        super().__init__(layout)
        self.gru = GroupedGRU(in_dim, hidden, self.n_groups, generator)

    def forward(self, x: Tensor, h0: Tensor | None = None, resets: Tensor | None = None,
                agents: Tensor | None = None) -> tuple[Tensor, Tensor]:
        t, b, n, _ = x.shape
        if h0 is None:
            h0 = x.new_zeros(b, n, self.gru.hidden_dim)
        out, h = self.gru.sequence_am(x.permute(0, 2, 1, 3), h0.transpose(0, 1), self.group_index(agents), resets)
        return out.permute(0, 2, 1, 3), h.transpose(0, 1)
