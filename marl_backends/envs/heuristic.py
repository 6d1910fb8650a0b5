"""Behaviour policies for sample collection: goal-directed (our scenarios) and random.

Goal-directed: a PD controller toward the agent's own target landmark,
``desired = (l_target - p) - KD * v``. Discrete: the action whose direction best matches
``desired`` (no-op when ``|desired| < STOP``); continuous: ``desired * GAIN`` clipped to unit
norm, plus Gaussian noise of std ``noise``, clipped to [-1, 1]. With probability ``noise`` a
discrete agent takes a uniformly random action instead.
"""
from __future__ import annotations

import torch
from torch import Tensor

from marl_backends.envs.physics import action_table, norm2

KD = 0.6  # velocity damping of the PD controller (braking before the landmark)
STOP = 0.05  # below this |desired|, the discrete policy takes the no-op
GAIN = 2.0  # continuous: desired -> control scale before the unit-norm clip


def goal_direction(pos: Tensor, vel: Tensor, goal: Tensor) -> Tensor:
    """PD control vector [..., 2] toward goal."""
    return (goal - pos) - KD * vel


def discrete_toward(desired: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """Best-matching of the 5 discrete actions [...] (long), epsilon-random with prob noise."""
    table = action_table(desired.device)
    act = (desired @ table.T).argmax(-1)
    act = torch.where(norm2(desired) < STOP, torch.zeros_like(act), act)
    return epsilon_random(act, table.shape[0], noise, generator)


def continuous_toward(desired: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    u = desired * GAIN
    n = norm2(u).clamp(min=1.0).unsqueeze(-1)
    u = u / n
    if noise > 0:
        u = u + noise * torch.randn(u.shape, generator=generator, device=u.device)
    return u.clamp(-1.0, 1.0)


def epsilon_random(act: Tensor, n_actions: int, noise: float, generator: torch.Generator) -> Tensor:
    if noise <= 0:
        return act
    dev = act.device
    rand = torch.randint(0, n_actions, act.shape, generator=generator, device=dev)
    flip = torch.rand(act.shape, generator=generator, device=dev) < noise
    return torch.where(flip, rand, act)


def random_discrete(shape: tuple[int, ...], avail: Tensor | None, n_actions: int, generator: torch.Generator,
                    device: torch.device) -> Tensor:
    """Uniform over available actions; avail [..., A] bool or None."""
    if avail is None:
        return torch.randint(0, n_actions, shape, generator=generator, device=device)
    w = avail.to(torch.float32).reshape(-1, avail.shape[-1])
    return torch.multinomial(w, 1, generator=generator).view(shape)


def random_continuous(low: Tensor, high: Tensor, num_envs: int, generator: torch.Generator) -> Tensor:
    """Uniform in [low, high] ([N, Da] bounds) -> [E, N, Da]."""
    r = torch.rand((num_envs, *low.shape), generator=generator, device=low.device)
    return low + r * (high - low)
