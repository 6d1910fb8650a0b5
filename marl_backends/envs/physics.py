"""Pure-tensor one-step physics of our VMAS point-mass scenarios (PMS, spread).

The same functions drive the simulator (through the scenario's ``pre_step`` and VMAS's own
integrator) and the transition model used for model-based quantification, so the model
reproduces the simulator's step. VMAS order of operations, for one substep, no collisions,
no friction, no gravity (``World.step`` / ``World._integrate_state``)::

    force = u * u_multiplier (+ interaction force)
    vel   = vel * (1 - drag) + force / mass * dt
    vel   = clamp_norm(vel, max_speed)
    pos   = pos + vel * dt

Only +, -, *, /, sqrt and comparisons are used per element, so two agents with the same inputs
get bitwise-identical outputs wherever they sit in a batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Discrete actions (MPE convention): no-op, -x, +x, -y, +y.
ACTION_TABLE = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))
N_DISCRETE = len(ACTION_TABLE)


@dataclass(frozen=True)
class Physics:
    """World and interaction constants.

    Attributes:
        dt, drag, mass: VMAS world step, drag coefficient and agent mass.
        u_multiplier: action (in [-1, 1] per axis) -> force scale.
        radius: range of the spread-v3 interaction force.
        strength: its magnitude at distance 0 (it falls linearly to 0 at ``radius``).
    """

    dt: float = 0.1
    drag: float = 0.25
    mass: float = 1.0
    u_multiplier: float = 3.0
    radius: float = 1.0
    strength: float = 2.0


def norm2(v: Tensor) -> Tensor:
    """Euclidean norm over the last dim of size 2, elementwise (bitwise position-independent)."""
    return torch.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1])


def action_table(device: torch.device | str = "cpu") -> Tensor:
    return torch.tensor(ACTION_TABLE, dtype=torch.float32, device=device)


def actions_to_u(actions: Tensor, discrete: bool) -> Tensor:
    """Actions -> unit-range controls u [..., 2].

    Discrete: indices [...] (long) or one-hot [..., 5]; continuous: clamped to [-1, 1].
    """
    if not discrete:
        return actions.to(torch.float32).clamp(-1.0, 1.0)
    if actions.is_floating_point():  # one-hot rows from a sample pool
        actions = actions.argmax(-1)
    return action_table(actions.device)[actions]


def pair_forces(src_pos: Tensor, src_sign: Tensor, dst_pos: Tensor, phys: Physics) -> Tensor:
    """Force every source applies to every destination, [..., S, D, 2].

    src_pos [..., S, 2], src_sign [..., S] (+1 repulsive, -1 attractive, 0 none), dst_pos
    [..., D, 2]. Magnitude ``sign * strength * max(0, 1 - d / radius)`` along ``dst - src``;
    zero at d = 0 (a source exerts nothing on itself).
    """
    diff = dst_pos.unsqueeze(-3) - src_pos.unsqueeze(-2)
    d = norm2(diff)
    mag = src_sign.unsqueeze(-1) * phys.strength * torch.clamp(1.0 - d / phys.radius, min=0.0)
    unit = diff / torch.where(d > 0, d, torch.ones_like(d)).unsqueeze(-1)
    return mag.unsqueeze(-1) * unit


def integrate(pos: Tensor, vel: Tensor, force: Tensor, max_speed: Tensor, phys: Physics) -> tuple[Tensor, Tensor]:
    """One VMAS semi-implicit Euler step; max_speed broadcasts against pos[..., 0] (inf = none)."""
    vel = vel * (1 - phys.drag)
    accel = force / phys.mass
    vel = vel + accel * phys.dt
    speed = norm2(vel)
    clamped = (vel / speed.unsqueeze(-1)) * max_speed.unsqueeze(-1)
    vel = torch.where((speed > max_speed).unsqueeze(-1), clamped, vel)
    pos = pos + vel * phys.dt
    return pos, vel
