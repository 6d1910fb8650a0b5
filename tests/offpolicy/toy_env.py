"""A tiny continuous-action env implementing the VecMultiAgentEnv protocol (for unit tests only).

N agents on a line move by their action; team reward is minus the mean distance to per-group
targets (group g's target is g + 1). Episodes last ``max_steps``; agent 0 leaving [-5, 5] ends
an episode early (terminated).
"""
from __future__ import annotations

import torch

from marl_backends.envs.base import EnvSpec, Observation, StepResult


class ToyLineEnv:
    def __init__(self, num_envs: int = 4, groups: tuple[int, ...] = (0, 0, 1), max_steps: int = 10, discrete: bool = False):
        n = len(groups)
        self.num_envs, self.device = num_envs, torch.device("cpu")
        self.spec = EnvSpec(name="toy_line", n_agents=n, obs_dim=2, state_dim=n, local_state_dim=1, action_dim=1,
                            discrete=discrete, max_steps=max_steps, groups=groups, action_low=-1.0, action_high=1.0)
        self.target = torch.tensor(groups, dtype=torch.float32) + 1.0
        self.gen = torch.Generator().manual_seed(0)

    @property
    def model(self):
        return None

    def _observe(self) -> Observation:
        return Observation(obs=torch.stack([self.pos, self.pos - self.target], -1), state=self.pos.clone(),
                           local_state=self.pos[..., None].clone())

    def reset(self, seed: int | None = None) -> Observation:
        if seed is not None:
            self.gen.manual_seed(seed)
        self.pos = torch.rand(self.num_envs, self.spec.n_agents, generator=self.gen) * 2 - 1
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        return self._observe()

    def step(self, actions: torch.Tensor) -> StepResult:
        self.pos = self.pos + 0.5 * actions[..., 0].clamp(-1, 1)
        self.t += 1
        nxt = self._observe()
        reward = -(self.pos - self.target).abs().mean(-1, keepdim=True).expand(-1, self.spec.n_agents).clone()
        term = self.pos[:, 0].abs() > 5
        trunc = (self.t >= self.spec.max_steps) & ~term
        done = term | trunc
        if done.any():
            self.pos[done] = torch.rand(int(done.sum()), self.spec.n_agents, generator=self.gen) * 2 - 1
            self.t[done] = 0
        return StepResult(next=nxt, reward=reward, terminated=term, truncated=trunc, obs=self._observe())

    def heuristic_actions(self, obs, noise, generator):
        return torch.rand(self.num_envs, self.spec.n_agents, 1, generator=generator) * 2 - 1
