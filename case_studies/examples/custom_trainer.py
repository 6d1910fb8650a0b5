"""Your own PyTorch trainer under HetDPS, end to end (a complete, self-contained example).

A tiny vectorised env of its own: N agents on a plane, agent i of type ``i % K`` is rewarded for
standing on its type's target (r_i = -|p_i - target_type(i)|); it observes only its own position,
so one shared policy (FPS) cannot serve every type. The trainer is plain REINFORCE with one policy
network per *group* (an ``nn.ModuleList``) and one Adam optimiser. Four small methods make it a
:class:`hetero.SharingTrainer`; ``hetero.apply_plan`` does the parameter and optimiser-state
mixing; ``SamplePool.from_transitions`` builds the pool from what the trainer stores anyway.
HetDPS starts from FPS and, every ``interval`` updates, quantifies Meta-Het, clusters and
regroups.

    python case_studies/examples/custom_trainer.py --updates 60
"""
from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

import hetero
from hetero import HetDPS, HetDPSConfig, RegroupPlan, SamplePool
from hetero.cvae import CVAEConfig
from hetero.quantify import QuantifyConfig

MOVES = torch.tensor([[0.0, 0.0], [0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]])  # 5 discrete actions
TARGETS = torch.tensor([[0.7, 0.7], [-0.7, -0.7], [0.7, -0.7]])


class TargetsEnv:
    """E envs x N agents, batched; obs = own position [E, N, 2]; episodes of ``horizon`` steps."""

    def __init__(self, n_envs: int = 16, n_agents: int = 6, n_types: int = 2, horizon: int = 20, seed: int = 0):
        self.e, self.n, self.horizon = n_envs, n_agents, horizon
        self.target = TARGETS[torch.arange(n_agents) % n_types]  # [N, 2]
        self.gen = torch.Generator().manual_seed(seed)

    def reset(self) -> Tensor:
        self.t, self.pos = 0, torch.rand(self.e, self.n, 2, generator=self.gen) * 2 - 1
        return self.pos.clone()

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self.pos = (self.pos + MOVES[action]).clamp(-1, 1)
        self.t += 1
        reward = -(self.pos - self.target).norm(dim=-1)  # [E, N]
        return self.pos.clone(), reward, torch.full((self.e,), self.t >= self.horizon)


class GroupedReinforce:
    """REINFORCE with one policy per group; a hetero.SharingTrainer (layout, sample_pool,
    policy_distributions, apply_plan)."""

    def __init__(self, env: TargetsEnv, layout: tuple[int, ...], lr: float = 3e-3, seed: int = 0):
        torch.manual_seed(seed)
        self.env, self._layout = env, tuple(layout)
        make = lambda: nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, len(MOVES)))  # noqa: E731
        self.policies = nn.ModuleList(make() for _ in range(max(layout) + 1))
        self.optim = torch.optim.Adam(self.policies.parameters(), lr=lr)
        self.last: dict[str, Tensor] = {}

    def logits(self, obs: Tensor) -> Tensor:
        """obs [..., N, 2] -> logits [..., N, A]; one call per group (not per agent)."""
        out = obs.new_zeros(*obs.shape[:-1], len(MOVES))
        layout = torch.tensor(self._layout)
        for g, net in enumerate(self.policies):
            idx = (layout == g).nonzero().flatten()
            out[..., idx, :] = net(obs[..., idx, :])
        return out

    def update(self) -> float:
        """One rollout of ``horizon`` steps in every env, one policy-gradient step; returns the mean return."""
        obs, steps = self.env.reset(), []
        done = torch.zeros(self.env.e, dtype=torch.bool)
        while not bool(done.all()):
            with torch.no_grad():
                action = torch.distributions.Categorical(logits=self.logits(obs)).sample()
            next_obs, reward, done = self.env.step(action)
            steps.append((obs, action, reward, next_obs, done))
            obs = next_obs
        o, a, r, o2, d = (torch.stack(x) for x in zip(*steps))  # [T, E, N, ...]
        self.last = {"obs": o, "action": a, "reward": r, "next_obs": o2, "done": d}
        ret = r.flip(0).cumsum(0).flip(0)  # reward-to-go (undiscounted, one episode per env)
        adv = (ret - ret.mean((0, 1))) / (ret.std((0, 1)) + 1e-6)  # per-agent baseline and scale
        logp = torch.distributions.Categorical(logits=self.logits(o)).log_prob(a)
        self.optim.zero_grad()
        (-(logp * adv).mean()).backward()
        self.optim.step()
        return float(r.sum(0).mean())

    # --- hetero.SharingTrainer ----------------------------------------------------------------
    @property
    def layout(self) -> tuple[int, ...]:
        return self._layout

    def sample_pool(self) -> SamplePool:
        return SamplePool.from_transitions(**self.last, n_actions=len(MOVES))

    def policy_distributions(self, obs: Tensor) -> Tensor:
        return torch.softmax(self.logits(obs), -1)

    def apply_plan(self, plan: RegroupPlan) -> None:
        hetero.apply_plan(plan, self.policies, self.optim)
        self._layout = plan.layout


def main(updates: int = 60, interval: int = 10, n_agents: int = 6, n_types: int = 2, seed: int = 0,
         quantify: QuantifyConfig | None = None, verbose: bool = True,
         regroup: bool = True) -> tuple[GroupedReinforce, HetDPS, list[float]]:
    """Train from FPS for ``updates`` updates; with ``regroup=False`` HetDPS never runs (the FPS baseline)."""
    env = TargetsEnv(n_agents=n_agents, n_types=n_types, seed=seed)
    trainer = GroupedReinforce(env, layout=(0,) * n_agents, seed=seed)  # start from FPS
    cfg = HetDPSConfig(kind="meta", interval=interval, pool_rollouts=2, seed=seed, quantify=quantify or QuantifyConfig(
        train_samples=800, eval_samples=400, cvae=CVAEConfig(epochs=8)))
    hetdps = HetDPS(trainer, cfg)
    returns = []
    for u in range(1, updates + 1):
        returns.append(trainer.update())
        rnd = hetdps.after_update(u, last=updates) if regroup else None
        if verbose and rnd is not None:
            print(f"update {u:4d}  return {returns[-1]:8.2f}  groups {rnd.labels}  ({rnd.info.get('note', '')})")
    if verbose:
        print(f"final return {sum(returns[-5:]) / min(5, len(returns)):.2f}; layout {trainer.layout}")
    return trainer, hetdps, returns


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--interval", type=int, default=10)
    p.add_argument("--agents", type=int, default=6)
    p.add_argument("--types", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", action="store_true", help="baseline: keep FPS (no HetDPS rounds)")
    a = p.parse_args()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest
    main(a.updates, a.interval, a.agents, a.types, a.seed, regroup=not a.fps)
