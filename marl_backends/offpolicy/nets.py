"""Networks of the off-policy trainers, built on ``marl_backends.nets.GroupedMLP``.

- :func:`grouped_actor` (CCGA, OMDPG Sec. 4.3): deterministic actors mu_g(o) in [-1, 1]^A with
  G groups; agent i uses group ``layout[i]``'s stacked parameters (gathered by index, so agents
  of a group share parameters exactly and their gradients add up in the group's rows).
  Discrete actions: logits instead of tanh actions (``discrete=True``).
- :class:`CriticEnsemble` (GQC, Eqs. 8-10): C_k centralised Q(s, a_1..a_n) networks held as one
  GroupedMLP whose "agents" are the critics (identity layout), so every critic runs in one
  batched op, each on its own slice of data.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from marl_backends.nets import GroupedMLP


def grouped_actor(layout: tuple[int, ...], obs_dim: int, hidden: tuple[int, ...], action_dim: int,
                  generator: torch.Generator | None = None, discrete: bool = False) -> GroupedMLP:
    """Deterministic grouped actor: obs [..., N, Do] -> actions [..., N, A] in [-1, 1], or
    (``discrete``) the same MLP without the tanh, giving logits (see ``offpolicy.discrete``)."""
    return GroupedMLP(obs_dim, action_dim, hidden, layout, activation="relu", out_gain=0.01,
                      out_activation=None if discrete else "tanh", generator=generator)


class CriticEnsemble(nn.Module):
    """C centralised critics Q_c(s, a_1..a_n) (GQC, Eqs. 8-10).

    ``forward(state [C|1, M, Ds], joint [C|1, M, N, A]) -> [C, M]``: critic c on slice c (a
    leading 1 broadcasts the same data to every critic).
    """

    def __init__(self, n_critics: int, state_dim: int, n_agents: int, action_dim: int, hidden: tuple[int, ...],
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n_critics = n_critics
        self.net = GroupedMLP(state_dim + n_agents * action_dim, 1, hidden, tuple(range(n_critics)),
                              activation="relu", out_gain=1.0, generator=generator)

    def forward(self, state: Tensor, joint: Tensor) -> Tensor:
        x = torch.cat([state, joint.flatten(-2)], -1)
        if x.shape[0] != self.n_critics:
            if x.shape[0] != 1:
                raise ValueError(f"CriticEnsemble got {x.shape[0]} data slices for {self.n_critics} critics; "
                                 "pass one slice per critic or a single shared slice.")
            x = x.expand(self.n_critics, *x.shape[1:])
        return self.net.forward_am(x, None).squeeze(-1)

    def cross(self, state: Tensor, joint: Tensor) -> Tensor:
        """Every critic on every slice: state [K, M, Ds], joint [K, M, N, A] -> [C, K, M]."""
        k, m = state.shape[:2]
        q = self.forward(state.reshape(1, k * m, -1), joint.reshape(1, k * m, *joint.shape[2:]))
        return q.view(self.n_critics, k, m)


@torch.no_grad()
def polyak(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online (soft target update)."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, tau)
