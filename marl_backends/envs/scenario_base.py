"""Shared VMAS scenario machinery for our landmark tasks (PMS and the spread case study).

A subclass defines the agents' *types* (:class:`AgentTypes`) and two pure functions,
``observe`` and ``reward``; this base builds the VMAS world, resets it from its own seeded
generator, applies interaction forces in ``pre_step``, and computes all agents' observations and
rewards in one tensor op per step (VMAS asks agent by agent; we answer with slices of a cache).
The model (``model.py``) calls the very same ``observe`` / ``reward`` / physics functions.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor
from vmas.simulator.core import Agent, Landmark, Sphere, World
from vmas.simulator.scenario import BaseScenario
from vmas.simulator.utils import Color

from marl_backends.envs.physics import Physics, pair_forces

COLORS = (Color.RED, Color.GREEN, Color.BLUE, Color.YELLOW, Color.BLACK, Color.ORANGE, Color.PINK)


@dataclass(frozen=True)
class AgentTypes:
    """Per-agent type parameters, each [N] (perm [N, Do]).

    group: ground-truth group (PMS colour, spread group). target: index of the agent's own
    landmark. max_speed: inf = unbounded. force_sign: +1 repulsive, -1 attractive, 0 none
    (force on *other* agents). perm: observation permutation, or None for identity.
    """

    group: Tensor
    target: Tensor
    max_speed: Tensor
    force_sign: Tensor
    perm: Tensor | None = None

    def to(self, device: torch.device | str) -> "AgentTypes":
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return AgentTypes(*(mv(getattr(self, f)) for f in ("group", "target", "max_speed", "force_sign", "perm")))

    @property
    def has_forces(self) -> bool:
        return bool((self.force_sign != 0).any())


def others_index(n: int, device: torch.device | str = "cpu") -> Tensor:
    """[N, N-1]: row k lists every agent but k, in index order."""
    idx = torch.arange(n, device=device).expand(n, n)
    return idx[~torch.eye(n, dtype=torch.bool, device=device)].view(n, n - 1)


def make_perms(n_groups: int, dim: int, seed: int) -> Tensor:
    """[G, dim] fixed, distinct, non-identity permutations (deterministic in ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    out: list[Tensor] = []
    ident = torch.arange(dim)
    while len(out) < n_groups:
        p = torch.randperm(dim, generator=g)
        if not torch.equal(p, ident) and all(not torch.equal(p, q) for q in out):
            out.append(p)
    return torch.stack(out)


def apply_perm(obs: Tensor, perm: Tensor | None) -> Tensor:
    """obs [..., N, Do] permuted per agent by perm [N, Do] (None: unchanged)."""
    if perm is None:
        return obs
    return torch.gather(obs, -1, perm.expand(obs.shape))


def broadcast_cat(parts: list[Tensor]) -> Tensor:
    """Concatenate on the last dim after broadcasting all leading dims."""
    lead = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return torch.cat([p.expand(*lead, p.shape[-1]) for p in parts], -1)


class LandmarkScenario(BaseScenario):
    """Point-mass agents, one landmark per target, no collisions (subclass sets the rest).

    Subclasses implement :meth:`configure` (returns types, landmark count, spawn ranges) and the
    pure functions :meth:`observe` and :meth:`reward`.
    """

    agent_size = 0.15
    agent_spawn = 1.0
    landmark_spawn = 3.0

    # ---- to implement -------------------------------------------------------------------
    @abstractmethod
    def configure(self, **kwargs) -> tuple[AgentTypes, int]:
        """Read scenario kwargs; return (types on CPU, number of landmarks)."""

    @abstractmethod
    def raw_obs_dim(self) -> int:
        ...

    @abstractmethod
    def observe(self, pos: Tensor, vel: Tensor, landmarks: Tensor, others_pos: Tensor, target: Tensor) -> Tensor:
        """Unpermuted observation [..., N, Do] of agents at pos/vel [..., N|1, 2].

        landmarks [..., L, 2]; others_pos [..., N|1, N-1, 2] (the other agents, index order);
        target [N] each agent's landmark.
        """

    @abstractmethod
    def rewards(self, pos: Tensor, landmarks: Tensor, target: Tensor, slot_pos: Tensor, slot_member: Tensor) -> Tensor:
        """Reward [..., N] of agents at pos [..., N|1, 2] with targets [N].

        slot_pos [..., S, 2]: the agents of the world; slot_member [..., L, S]: which slots form
        the group of target l (for group terms such as the PMS formation bonus).
        """

    # ---- VMAS scenario API --------------------------------------------------------------
    def make_world(self, batch_dim: int, device: torch.device, **kwargs) -> World:
        self.phys: Physics = kwargs.pop("physics", Physics())
        types, n_landmarks = self.configure(**kwargs)
        self.types = types.to(device)
        self.n_agents = int(types.group.numel())
        self.n_landmarks = n_landmarks
        self.rng = torch.Generator(device=device).manual_seed(0)
        self._others = others_index(self.n_agents, device)
        world = World(batch_dim, device, dt=self.phys.dt, drag=self.phys.drag, substeps=1)
        for k in range(self.n_agents):
            g, ms = int(types.group[k]), float(types.max_speed[k])
            world.add_agent(Agent(
                name=f"agent_{k}", collide=False, rotatable=False, mass=self.phys.mass,
                shape=Sphere(radius=self.agent_size), color=COLORS[g % len(COLORS)],
                max_speed=None if ms == float("inf") else ms,
                u_range=1.0, u_multiplier=self.phys.u_multiplier,
            ))
        for lm in range(n_landmarks):
            world.add_landmark(Landmark(
                name=f"landmark_{lm}", collide=False, movable=False, shape=Sphere(radius=0.05),
                color=COLORS[lm % len(COLORS)],
            ))
        self._index = {id(a): k for k, a in enumerate(world.agents)}
        self._obs_cache: Tensor | None = None
        self._rew_cache: Tensor | None = None
        return world

    def seed(self, seed: int) -> None:
        self.rng.manual_seed(seed)

    def reset_world_at(self, env_index: int | None = None) -> None:
        dev = self.world.device
        e = self.world.batch_dim if env_index is None else 1
        u = lambda *s: torch.rand(*s, generator=self.rng, device=dev) * 2 - 1  # noqa: E731
        apos = u(e, self.n_agents, 2) * self.agent_spawn
        lpos = u(e, self.n_landmarks, 2) * self.landmark_spawn
        if env_index is not None:
            apos, lpos = apos[0], lpos[0]
        for k, a in enumerate(self.world.agents):
            a.set_pos(apos[..., k, :], batch_index=env_index)
        for k, lm in enumerate(self.world.landmarks):
            lm.set_pos(lpos[..., k, :], batch_index=env_index)

    def stacked(self) -> tuple[Tensor, Tensor, Tensor]:
        """(pos [E, N, 2], vel [E, N, 2], landmarks [E, L, 2]) of the live world."""
        pos = torch.stack([a.state.pos for a in self.world.agents], 1)
        vel = torch.stack([a.state.vel for a in self.world.agents], 1)
        lms = torch.stack([lm.state.pos for lm in self.world.landmarks], 1)
        return pos, vel, lms

    def set_state(self, pos: Tensor, vel: Tensor, landmarks: Tensor) -> None:
        """Overwrite the world state of all envs (pos/vel [E, N, 2], landmarks [E, L, 2])."""
        for k, a in enumerate(self.world.agents):
            a.set_pos(pos[:, k], batch_index=None)
            a.set_vel(vel[:, k], batch_index=None)
        for k, lm in enumerate(self.world.landmarks):
            lm.set_pos(landmarks[:, k], batch_index=None)

    def member_by_target(self, slot_target: Tensor) -> Tensor:
        """slot_target [..., S] -> slot_member [..., L, S] (slot s is in group l)."""
        lm = torch.arange(self.n_landmarks, device=slot_target.device)
        return slot_target.unsqueeze(-2) == lm.unsqueeze(-1)

    def all_obs(self) -> Tensor:
        pos, vel, lms = self.stacked()
        raw = self.observe(pos, vel, lms, pos[:, self._others], self.types.target)
        return apply_perm(raw, self.types.perm)

    def all_rewards(self) -> Tensor:
        pos, _, lms = self.stacked()
        member = self.member_by_target(self.types.target).expand(pos.shape[0], -1, -1)
        return self.rewards(pos, lms, self.types.target, pos, member)

    def observation(self, agent: Agent) -> Tensor:
        k = self._index[id(agent)]
        if k == 0 or self._obs_cache is None:  # VMAS asks agent 0 first: refresh for all
            self._obs_cache = self.all_obs()
        return self._obs_cache[:, k]

    def reward(self, agent: Agent) -> Tensor:
        k = self._index[id(agent)]
        if k == 0 or self._rew_cache is None:
            self._rew_cache = self.all_rewards()
        return self._rew_cache[:, k]

    def info(self, agent: Agent) -> dict[str, Tensor]:
        """VMAS ``info``: ``env_state`` = S^E, the landmarks' positions [E, 2L] (the same for every
        agent). Trainers that see only VMAS's outputs (BenchMARL, TorchRL) read S^E from it."""
        return {"env_state": torch.stack([lm.state.pos for lm in self.world.landmarks], 1).flatten(1)}

    def pre_step(self) -> None:
        if not self.types.has_forces:
            return
        pos = torch.stack([a.state.pos for a in self.world.agents], 1)
        f = pair_forces(pos, self.types.force_sign, pos, self.phys).sum(-3)  # [E, N, 2]
        for k, a in enumerate(self.world.agents):
            a.state.force = a.state.force + f[:, k]
