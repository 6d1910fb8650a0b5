"""A tiny deterministic VecMultiAgentEnv for trainer tests (base.py protocol, no VMAS).

N agents on a plane, each with a goal; agents of type 1 have goals mirrored from type 0, so
an optimal FPS policy needs the type feature. Reward_i = -|goal_i - pos_i|; an episode
terminates when every agent is within 0.15 of its goal, and is truncated after max_steps.
Discrete: 5 actions (no-op, -x, +x, -y, +y), with action masks (agent 0 may not no-op).
"""
from __future__ import annotations

import torch

from marl_backends.envs.base import EnvSpec, Observation, StepResult

MOVES = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


class FakeEnv:
    def __init__(self, num_envs: int = 4, seed: int = 0, n_agents: int = 4, continuous: bool = False,
                 max_steps: int = 8, masks: bool = True) -> None:
        self.num_envs, self.n, self.continuous, self.masks = num_envs, n_agents, continuous, masks and not continuous
        self.device = torch.device("cpu")
        self.types = torch.tensor([i % 2 for i in range(n_agents)])
        self.spec = EnvSpec(
            name="fake", n_agents=n_agents, obs_dim=6, state_dim=4 * n_agents, local_state_dim=4,
            action_dim=2 if continuous else 5, discrete=not continuous, max_steps=max_steps,
            obs_dims=(6,) * n_agents, groups=tuple(self.types.tolist()),
            action_low=-1.0 if continuous else None, action_high=1.0 if continuous else None)
        self.gen = torch.Generator().manual_seed(seed)
        self.reset(seed)

    def _sample(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.rand(k, self.n, 2, generator=self.gen) * 2 - 1
        g = torch.rand(k, 1, 2, generator=self.gen) * 2 - 1
        goal = torch.where(self.types[None, :, None] == 1, -g, g).expand(k, self.n, 2).clone()
        return pos, goal

    def _observe(self) -> Observation:
        onehot = torch.nn.functional.one_hot(self.types, 2).float().expand(self.num_envs, -1, -1)
        obs = torch.cat([self.pos, self.goal - self.pos, onehot], -1)
        local = torch.cat([self.pos, self.vel], -1)
        state = torch.cat([self.pos, self.goal], -1).flatten(1)
        avail = None
        if self.masks:
            avail = torch.ones(self.num_envs, self.n, 5, dtype=torch.bool)
            avail[:, 0, 0] = False
        return Observation(obs=obs, state=state, local_state=local, avail_actions=avail)

    def reset(self, seed: int | None = None) -> Observation:
        if seed is not None:
            self.gen.manual_seed(seed)
        self.pos, self.goal = self._sample(self.num_envs)
        self.vel = torch.zeros_like(self.pos)
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        return self._observe()

    def step(self, actions: torch.Tensor) -> StepResult:
        if self.continuous:
            self.vel = 0.25 * actions.clamp(-1, 1)
        else:
            if self.masks:
                assert not (actions[:, 0] == 0).any(), "masked action taken"
            self.vel = 0.25 * MOVES[actions.long()]
        self.pos = (self.pos + self.vel).clamp(-1.5, 1.5)
        dist = (self.goal - self.pos).norm(dim=-1)
        reward = -dist
        self.t += 1
        terminated = (dist < 0.15).all(-1)
        truncated = (self.t >= self.spec.max_steps) & ~terminated
        nxt = self._observe()
        done = terminated | truncated
        if bool(done.any()):
            pos, goal = self._sample(self.num_envs)
            m = done[:, None, None]
            self.pos, self.goal = torch.where(m, pos, self.pos), torch.where(m, goal, self.goal)
            self.vel = torch.where(m, torch.zeros_like(self.vel), self.vel)
            self.t = torch.where(done, torch.zeros_like(self.t), self.t)
        return StepResult(next=nxt, reward=reward, terminated=terminated, truncated=truncated, obs=self._observe())

    @property
    def model(self):  # noqa: ANN201
        return None

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(1, 5, (self.num_envs, self.n), generator=generator)


def fake_factory(continuous: bool = False, n_agents: int = 4, max_steps: int = 8):  # noqa: ANN201
    return lambda num_envs, seed: FakeEnv(num_envs, seed, n_agents, continuous, max_steps)
