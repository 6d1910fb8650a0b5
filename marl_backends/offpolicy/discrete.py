"""Discrete actions for the deterministic off-policy trainers (MATD3 / OMDPG on SMAC-like envs).

Inside the trainer a discrete action is the one-hot vector of its index, [..., N, A]; the env
gets the index. The actor's head gives logits (no tanh); unavailable actions are masked to a
large negative value before any argmax / softmax, so they are never chosen.

- :func:`greedy_onehot`: mu_i(o) = one-hot argmax of the masked logits (a^g of Eq. 11, target
  actions of Eq. 9).
- :func:`straight_through`: the same one-hot in the forward pass, with the gradient of
  p = softmax(masked logits / tau) in the backward pass (onehot + (p - p.detach())), so the
  critic's gradient w.r.t. the joint action reaches the logits (Eq. 15 / MATD3's -Q_1).
- :func:`explore_index`: uniform over available actions with probability ``eps`` (warmup:
  eps = 1), else the greedy index: epsilon-greedy over the available actions.

All functions are batched over envs and agents (no Python loop over agents).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from marl_backends.envs.base import random_available_actions

NEG = -1e9  # logit of an unavailable action


def mask_logits(logits: Tensor, avail: Tensor | None) -> Tensor:
    """Logits with unavailable actions (``avail`` False, [..., N, A] bool) set to :data:`NEG`."""
    return logits if avail is None else logits.masked_fill(~avail.bool(), NEG)


def greedy_onehot(logits: Tensor, avail: Tensor | None = None) -> Tensor:
    """One-hot argmax of the masked logits, [..., N, A], same dtype as ``logits``, no gradient."""
    return F.one_hot(mask_logits(logits, avail).argmax(-1), logits.shape[-1]).to(logits.dtype)


def straight_through(logits: Tensor, avail: Tensor | None, tau: float) -> Tensor:
    """Forward: the greedy one-hot; backward: d softmax(masked logits / tau)."""
    masked = mask_logits(logits, avail)
    p = torch.softmax(masked / tau, -1)
    hard = F.one_hot(masked.argmax(-1), logits.shape[-1]).to(p.dtype)
    return hard + (p - p.detach())  # forward value exactly the one-hot


def uniform_available(shape: tuple[int, ...], avail: Tensor | None, generator: torch.Generator,
                      device: torch.device) -> Tensor:
    """Indices [..., N] drawn uniformly over the available actions (shape = [..., N, A]; no mask:
    all actions)."""
    avail = torch.ones(shape, dtype=torch.bool, device=device) if avail is None else avail.to(device)
    return random_available_actions(avail, generator)


def explore_index(greedy: Tensor, avail: Tensor | None, eps: float, generator: torch.Generator) -> Tensor:
    """Epsilon-greedy over available actions: greedy [..., N, A] one-hot -> indices [..., N]."""
    idx = greedy.argmax(-1)
    if eps <= 0:
        return idx
    rand = uniform_available(tuple(greedy.shape), avail, generator, greedy.device)
    flip = torch.rand(tuple(idx.shape), generator=generator, device=generator.device).to(greedy.device) < eps
    return torch.where(flip, rand, idx)


def onehot(idx: Tensor, n_actions: int) -> Tensor:
    """Indices [..., N] -> float one-hot [..., N, A]."""
    return F.one_hot(idx.long(), n_actions).to(torch.float32)
