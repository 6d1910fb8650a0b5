"""Grouped stochastic policies and a centralised state critic.

``GroupedPolicy`` is pi_i(a | o_i) for all agents in one batched op: a :class:`GroupedMLP` maps
each agent's observation (with a one-hot agent id appended under FPS+id) to categorical logits
(discrete; unavailable actions masked) or a Gaussian mean with a state-independent per-group
std, ``std = sigmoid(log_std / x_coef) * y_coef`` (HARL App. K Table 4: std x coef 1, y coef 0.5).

``make_policy(spec, sharing, hidden, seed)`` builds a random-initialised one for an env spec;
``policy.distribution_params(obs [B, N, Do])`` gives action probabilities [B, N, A] (or mean and
std concatenated, [B, N, 2A], for continuous actions), as ``SharingTrainer`` specifies.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from marl_backends.nets.grouped import GroupedMLP, GroupedParam, LayoutModule, init_generator
from marl_backends.nets.layout import parse_sharing

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_MASKED = -1e10


class GroupedPolicy(LayoutModule):
    """Stochastic actor for N agents with an agent -> group layout.

    Args:
        obs_dim: observation size Do; action_dim: number of discrete actions or continuous size.
        discrete: categorical (True) or diagonal Gaussian (False) actions.
        layout: agent -> group; append_id: append a one-hot agent id (FPS+id).
        hidden, activation, input_norm, layer_norm, out_gain: see :class:`GroupedMLP`.
        std_x_coef, std_y_coef: Gaussian std parameterisation (HARL App. K Table 4).
    """

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, layout: Sequence[int],
                 hidden: Sequence[int] = (128, 128), activation: str = "relu", append_id: bool = False,
                 input_norm: bool = True, layer_norm: bool = True, out_gain: float = 0.01,
                 std_x_coef: float = 1.0, std_y_coef: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__(layout)
        self.obs_dim, self.action_dim, self.discrete, self.append_id = obs_dim, action_dim, discrete, append_id
        self.std_x_coef, self.std_y_coef = std_x_coef, std_y_coef
        in_dim = obs_dim + (self.n_agents if append_id else 0)
        self.body = GroupedMLP(in_dim, action_dim, hidden, layout, activation, input_norm, layer_norm, out_gain,
                               generator=generator)
        self.log_std = None if discrete else GroupedParam((action_dim,), self.n_groups, init=std_x_coef)

    # --- core --------------------------------------------------------------------------------
    def _inputs(self, obs: Tensor, agents: Tensor | None) -> Tensor:
        if not self.append_id:
            return obs
        ids = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
        if agents is not None:
            ids = ids.index_select(0, agents)
        return torch.cat([obs, ids.expand(*obs.shape[:-1], self.n_agents)], -1)

    def forward(self, obs: Tensor, avail: Tensor | None = None, agents: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """obs [..., n, Do] -> (masked logits, None) or (mean, std), each [..., n, A]."""
        out = self.body(self._inputs(obs, agents), agents)
        if self.discrete:
            if avail is not None:
                out = out.masked_fill(~avail.bool(), _MASKED)
            return out, None
        gidx = self.group_index(agents)
        n = obs.shape[-2]
        std = torch.sigmoid(self.log_std.forward_am(gidx, n) / self.std_x_coef) * self.std_y_coef
        return out, std.expand_as(out)

    def evaluate(self, obs: Tensor, action: Tensor, avail: Tensor | None = None,
                 agents: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """log pi(a|o) [..., n], entropy [..., n], and distribution params (log-probs of every action
        [..., n, A], or mean and std [..., n, 2A]) for KL terms."""
        a, b = self(obs, avail, agents)
        if self.discrete:
            logp_all = torch.log_softmax(a, -1)
            logp = logp_all.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
            ent = -(logp_all.exp() * logp_all).sum(-1)
            return logp, ent, logp_all
        return gaussian_logp(action, a, b), gaussian_entropy(b), torch.cat([a, b], -1)

    @torch.no_grad()
    def act(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Sample actions: (action [..., n] long or [..., n, A], log-prob [..., n], dist params)."""
        a, b = self(obs, avail)
        if self.discrete:
            logp_all = torch.log_softmax(a, -1)
            if deterministic:
                act = a.argmax(-1)
            else:
                flat = logp_all.exp().reshape(-1, self.action_dim)
                act = torch.multinomial(flat, 1, generator=generator).view(a.shape[:-1])
            return act, logp_all.gather(-1, act.unsqueeze(-1)).squeeze(-1), logp_all
        if deterministic:
            act = a
        else:
            act = a + b * torch.randn(a.shape, generator=generator, device=a.device, dtype=a.dtype)
        return act, gaussian_logp(act, a, b), torch.cat([a, b], -1)

    @torch.no_grad()
    def distribution_params(self, obs: Tensor, avail: Tensor | None = None) -> Tensor:
        """obs [B, N, Do] -> probabilities [B, N, A] (discrete) or [mean, std] [B, N, 2A]."""
        a, b = self(obs, avail)
        return torch.softmax(a, -1) if self.discrete else torch.cat([a, b], -1)


def gaussian_logp(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (-((x - mean) ** 2) / (2 * std**2) - std.log() - _LOG_SQRT_2PI).sum(-1)


def gaussian_entropy(std: Tensor) -> Tensor:
    return (0.5 + _LOG_SQRT_2PI + std.log()).sum(-1)


def kl_new_old(params_new: Tensor, params_old: Tensor, discrete: bool) -> Tensor:
    """KL(pi_new || pi_old) per sample from ``evaluate``'s distribution params -> [..., n]."""
    if discrete:
        return (params_new.exp() * (params_new - params_old)).sum(-1)
    m1, s1 = params_new.chunk(2, -1)
    m0, s0 = params_old.chunk(2, -1)
    return (torch.log(s0 / s1) + (s1**2 + (m1 - m0) ** 2) / (2 * s0**2) - 0.5).sum(-1)


class StateCritic(nn.Module):
    """Centralised critic V(s) -> [..., n_out] (one value per reward stream) on the global state."""

    def __init__(self, state_dim: int, n_out: int, hidden: Sequence[int] = (128, 128), activation: str = "relu",
                 input_norm: bool = True, layer_norm: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.net = GroupedMLP(state_dim, n_out, hidden, (0,), activation, input_norm, layer_norm, 1.0, generator=generator)

    def forward(self, state: Tensor) -> Tensor:
        return self.net(state.unsqueeze(-2)).squeeze(-2)


def make_policy(spec, sharing: str = "nps", hidden: Sequence[int] = (128, 128), seed: int = 0,  # noqa: ANN001
                activation: str = "relu", **kwargs) -> GroupedPolicy:
    """A random-initialised policy for an ``EnvSpec`` (any object with n_agents, obs_dim,
    action_dim, discrete and optionally groups). ``policy.distribution_params(obs [B, N, Do])``
    gives [B, N, A] action probabilities (or [B, N, 2A] mean/std)."""
    sh = parse_sharing(sharing, spec.n_agents, getattr(spec, "groups", None))
    return GroupedPolicy(spec.obs_dim, spec.action_dim, spec.discrete, sh.layout, hidden, activation,
                         append_id=sh.append_id, generator=init_generator(seed), **kwargs)
