"""Partial-based Multi-agent Spreading (PMS; Hu et al. 2024, used in paper Sec. 6, Table 3).

Agents of C colours start uniformly in [-1, 1]^2; one landmark per colour lies uniformly in
[-3, 3]^2. Agent size 0.15, no collisions, 50-step episodes, 5 discrete actions by default.

- Reward of agent i (colour c): ``-|p_i - l_c|`` plus, once *every* agent of colour c is within
  0.15 of l_c, the formation bonus ``sum_{k != m in c} 0.1 / (|p_k - p_m| + 0.05) / |c|``
  (ordered pairs).
- Observation: own velocity, own position, every landmark relative to the agent, the scalar
  distance to the own-colour landmark; ``_shuffle`` tasks permute this vector with a fixed
  permutation per colour (seeded, deterministic).
"""
from __future__ import annotations

import torch
from torch import Tensor

from marl_backends.envs.physics import norm2
from marl_backends.envs.scenario_base import AgentTypes, LandmarkScenario, broadcast_cat, make_perms

PMS_TASKS: dict[str, tuple[int, ...]] = {
    "15a_3c": (5, 5, 5),
    "30a_3c": (10, 10, 10),
    "15a_5c": (3, 3, 3, 3, 3),
    "30a_5c": (3, 3, 3, 12, 9),
}
NEAR = 0.15  # every group member within this of the landmark switches the bonus on
BONUS_SCALE, BONUS_EPS = 0.1, 0.05


def formation_bonus(slot_pos: Tensor, slot_member: Tensor, landmarks: Tensor) -> Tensor:
    """Bonus of every group [..., L].

    slot_pos [..., S, 2]; slot_member [..., L, S] (slot s belongs to group l); landmarks
    [..., L, 2]. Zero unless every member of group l is within ``NEAR`` of landmark l.
    """
    diff = slot_pos.unsqueeze(-2) - slot_pos.unsqueeze(-3)
    s = slot_pos.shape[-2]
    eye = torch.eye(s, dtype=torch.bool, device=slot_pos.device)
    w = torch.where(eye, 0.0, BONUS_SCALE / (norm2(diff) + BONUS_EPS))  # [..., S, S]
    m = slot_member.to(w.dtype)
    pair_sum = (torch.einsum("...ls,...st->...lt", m, w) * m).sum(-1)  # sum_{s,t in l} w_st
    near = norm2(slot_pos.unsqueeze(-3) - landmarks.unsqueeze(-2)) <= NEAR  # [..., L, S]
    gate = (near | ~slot_member).all(-1)
    count = m.sum(-1)
    return torch.where(gate & (count > 0), pair_sum / count.clamp(min=1), 0.0)


class PmsScenario(LandmarkScenario):
    """VMAS scenario; kwargs: ``groups`` (agents per colour), ``shuffle`` (bool), ``perm_seed``."""

    def configure(self, groups: tuple[int, ...] = (5, 5, 5), shuffle: bool = False, perm_seed: int = 0):
        colour = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor(groups))
        self.n_colours = len(groups)
        n = colour.numel()
        perm = make_perms(len(groups), 5 + 2 * len(groups), perm_seed)[colour] if shuffle else None
        types = AgentTypes(
            group=colour, target=colour.clone(), max_speed=torch.full((n,), float("inf")),
            force_sign=torch.zeros(n), perm=perm,
        )
        return types, len(groups)

    def raw_obs_dim(self) -> int:
        return 5 + 2 * self.n_landmarks

    def observe(self, pos, vel, landmarks, others_pos, target):
        rel = landmarks.unsqueeze(-3) - pos.unsqueeze(-2)  # [..., N|1, L, 2]
        own = landmarks[..., target, :] - pos  # [..., N, 2]
        return broadcast_cat([vel, pos, rel.flatten(-2), norm2(own).unsqueeze(-1)])

    def rewards(self, pos, landmarks, target, slot_pos, slot_member):
        dist = norm2(landmarks[..., target, :] - pos)  # [..., N]
        bonus = formation_bonus(slot_pos, slot_member, landmarks)  # [..., L]
        return bonus[..., target] - dist
