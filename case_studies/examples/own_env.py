"""Bring your own vectorised env to ``quantify``: the protocol in ~60 lines, then Meta-Het on it.

An env is anything with ``spec``, ``num_envs``, ``device``, ``reset(seed)``, ``step(actions)``,
``model`` and ``heuristic_actions(obs, noise, generator)`` (``marl_backends.envs.base.VecMultiAgentEnv``);
every tensor is batched over envs E and agents N. Here: N agents on a line, two kinds: "fast" ones
move 0.2 per step, "slow" ones 0.05 (Response-Het); both are rewarded for reaching +1 (no
Objective-Het). ``collect_pool`` rolls it into a SamplePool and ``quantify`` measures it.

    python case_studies/examples/own_env.py
"""
from __future__ import annotations

import torch
from torch import Tensor

from hetero.grouping import cluster
from hetero.quantify import QuantifyConfig, quantify
from marl_backends.envs.base import EnvSpec, Observation, StepResult
from marl_backends.envs.sampling import collect_pool


class LineEnv:
    """E envs x N agents on [-1, 1]; actions 0 / 1 / 2 = left / stay / right; episodes of 20 steps."""

    def __init__(self, num_envs: int = 16, speeds: tuple[float, ...] = (0.2, 0.2, 0.05, 0.05), device: str = "cpu"):
        n = len(speeds)
        self.num_envs, self.device = num_envs, torch.device(device)
        self.speed = torch.tensor(speeds, device=self.device)
        kinds = sorted(set(speeds))
        self.spec = EnvSpec(name="line", n_agents=n, obs_dim=1, state_dim=n, local_state_dim=1, action_dim=3,
                            discrete=True, max_steps=20, groups=tuple(kinds.index(s) for s in speeds))

    def _observe(self) -> Observation:  # each agent sees and "is" its own position
        x = self.x.unsqueeze(-1)
        return Observation(obs=x.clone(), state=self.x.clone(), local_state=x.clone())

    def reset(self, seed: int | None = None) -> Observation:
        gen = torch.Generator(device=self.device).manual_seed(seed or 0)
        self.x = torch.rand(self.num_envs, self.spec.n_agents, generator=gen, device=self.device) * 2 - 1
        self.t = 0
        return self._observe()

    def step(self, actions: Tensor) -> StepResult:
        self.x = (self.x + (actions.to(self.device).float() - 1) * self.speed).clamp(-1, 1)
        self.t += 1
        nxt = self._observe()
        reward = -(1 - self.x).abs()
        done = torch.full((self.num_envs,), self.t >= self.spec.max_steps, device=self.device)
        obs = self.reset(seed=self.t) if bool(done.all()) else nxt
        return StepResult(next=nxt, reward=reward, terminated=torch.zeros_like(done), truncated=done, obs=obs)

    @property
    def model(self):  # noqa: ANN201 - no model access: the kinds are learned model-free
        return None

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """Goal-directed (go right) with probability 1 - noise, else uniformly random."""
        shape = obs.obs.shape[:2]
        rand = torch.randint(0, 3, shape, generator=generator, device=self.device)
        explore = torch.rand(shape, generator=generator, device=self.device) < noise
        return torch.where(explore, rand, torch.full_like(rand, 2))


def main(kind: str = "response", cfg: QuantifyConfig | None = None) -> tuple:
    env = LineEnv()
    pool = collect_pool(env, steps=60, behaviour="heuristic", noise=0.5, seed=0, progress=False)
    res = quantify(pool, kind, cfg or QuantifyConfig(train_samples=1500, eval_samples=500))
    groups = cluster(res.matrix, res.noise_floor, seed=0)
    return res, groups, env.spec.groups


if __name__ == "__main__":
    torch.set_num_threads(1)
    for k in ("response", "objective", "meta"):
        res, groups, truth = main(k)
        print(f"{k:9s} groups {groups.labels} (speed kinds {truth}), noise floor {res.noise_floor:.3f}\n{res.matrix.round(3)}")
