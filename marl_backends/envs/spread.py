"""The spread case study of paper Sec. 4.3 / Fig. 3: two groups of two agents, two landmarks.

Agents start uniformly in [-1, 1]^2, landmarks uniformly in [-2, 2]^2; no collisions; 50 steps.
Observation (same function for every agent unless shuffled): own velocity, own position, both
landmarks relative to the agent, the other three agents relative to the agent (index order).
Reward: minus the distance to the agent's target landmark (landmark 0 for everyone unless v4).

Each version changes exactly one function per heterogeneity type, between group 0 (agents 0, 1)
and group 1 (agents 2, 3):

- v0: homogeneous control.
- v1 (obs): the observation vector is permuted with a fixed, different permutation per group.
- v2 (response): max speed 1.0 (group 0) vs 0.4 (group 1).
- v3 (effect): group 0 pushes other agents within ``Physics.radius`` away, group 1 pulls them in
  (force on the *others* only, so an agent's own response is unchanged).
- v4 (objective): group g is rewarded for landmark g (the observation does not see targets).
- v5 = v1 + v4; v6 = v1 + v2 + v3 + v4.
"""
from __future__ import annotations

import torch

from marl_backends.envs.physics import norm2
from marl_backends.envs.scenario_base import AgentTypes, LandmarkScenario, broadcast_cat, make_perms

GROUPS = (0, 0, 1, 1)
FAST, SLOW = 1.0, 0.4  # max speeds (terminal speed without a cap is 1.2 at u_multiplier 3)
VERSIONS: dict[str, frozenset[str]] = {
    "v0": frozenset(),
    "v1": frozenset({"obs"}),
    "v2": frozenset({"response"}),
    "v3": frozenset({"effect"}),
    "v4": frozenset({"objective"}),
    "v5": frozenset({"obs", "objective"}),
    "v6": frozenset({"obs", "response", "effect", "objective"}),
}
DESCRIPTIONS = {
    "v0": "homogeneous control",
    "v1": "observation order shuffled per group (Obs-Het)",
    "v2": "max speed 1.0 vs 0.4 per group (Response-Het)",
    "v3": "repulsive vs attractive force on nearby agents (Effect-Het)",
    "v4": "different target landmark per group (Objective-Het)",
    "v5": "v1 + v4 (Obs- and Objective-Het)",
    "v6": "v1 + v2 + v3 + v4 (all four env kinds)",
}


class SpreadScenario(LandmarkScenario):
    """VMAS scenario; kwargs: ``version`` ("v0".."v6") and ``perm_seed``."""

    landmark_spawn = 2.0

    def configure(self, version: str = "v0", perm_seed: int = 0):
        if version not in VERSIONS:
            raise ValueError(f"unknown spread version {version!r}; choose one of {', '.join(VERSIONS)}")
        changes = VERSIONS[version]
        self.version = version
        group = torch.tensor(GROUPS)
        n = group.numel()
        self._n_agents_cfg = n
        obs_dim = 4 + 2 * 2 + 2 * (n - 1)
        types = AgentTypes(
            group=group,
            target=group.clone() if "objective" in changes else torch.zeros(n, dtype=torch.long),
            max_speed=torch.where(group == 0, FAST, SLOW) if "response" in changes else torch.full((n,), FAST),
            force_sign=torch.where(group == 0, 1.0, -1.0) if "effect" in changes else torch.zeros(n),
            perm=make_perms(2, obs_dim, perm_seed)[group] if "obs" in changes else None,
        )
        return types, 2

    def raw_obs_dim(self) -> int:
        return 4 + 2 * self.n_landmarks + 2 * (self.n_agents - 1)

    def observe(self, pos, vel, landmarks, others_pos, target):
        rel = landmarks.unsqueeze(-3) - pos.unsqueeze(-2)  # [..., N|1, L, 2]
        oth = others_pos - pos.unsqueeze(-2)  # [..., N|1, N-1, 2]
        return broadcast_cat([vel, pos, rel.flatten(-2), oth.flatten(-2)])

    def rewards(self, pos, landmarks, target, slot_pos, slot_member):
        return -norm2(landmarks[..., target, :] - pos)
