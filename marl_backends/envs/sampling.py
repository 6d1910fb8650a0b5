"""collect_pool: roll a vectorised env with a behaviour policy into a SamplePool (paper Sec. 4.2)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hetero.samples import SamplePool
from marl_backends.envs.base import Observation, VecMultiAgentEnv

Behaviour = str | Callable[[Observation], Tensor]


def _policy(env: VecMultiAgentEnv, behaviour: Behaviour, noise: float, gen: torch.Generator):
    if callable(behaviour):
        return behaviour
    if behaviour == "heuristic":
        return lambda o: env.heuristic_actions(o, noise, gen)
    if behaviour == "random":
        if hasattr(env, "random_actions"):
            return lambda o: env.random_actions(o, gen)
        return lambda o: env.heuristic_actions(o, 1.0, gen)
    raise ValueError(f"behaviour must be 'heuristic', 'random' or a callable(Observation) -> actions, got {behaviour!r}")


def collect_pool(env: VecMultiAgentEnv, steps: int, behaviour: Behaviour = "heuristic", noise: float = 0.3,
                 seed: int = 0, progress: bool = True) -> SamplePool:
    """Run ``steps`` vectorised steps from a fresh ``reset(seed)``; rows = steps x envs (time-major).

    Actions are stored one-hot for discrete envs; rows where an agent is dead (``Observation.alive``)
    are marked invalid. ``StepResult.next`` gives next_obs /
    next_local_state / next_state (before any auto-reset). Where the env exposes the environment
    part S^E (``Observation.env_state``), it fills ``env_state`` / ``next_env_state``.
    Reproducible from ``seed``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    spec = env.spec
    gen = torch.Generator(device=env.device).manual_seed(seed)
    act_fn = _policy(env, behaviour, noise, gen)
    obs = env.reset(seed=seed)
    keys = ("state", "next_state", "local_state", "obs", "action", "reward", "next_local_state", "next_obs",
            "env_state", "next_env_state")
    buf: dict[str, list[Tensor]] = {k: [] for k in keys}
    has_env = obs.env_state is not None
    alive: list[Tensor] = []
    for _ in tqdm(range(steps), desc=f"collect {spec.name}", disable=not progress, leave=False):
        a = act_fn(obs)
        res = env.step(a)
        if spec.discrete:
            a = torch.nn.functional.one_hot(a.long(), spec.action_dim).to(torch.float32)
        for k, v in (("state", obs.state), ("local_state", obs.local_state), ("obs", obs.obs), ("action", a),
                     ("reward", res.reward), ("next_state", res.next.state),
                     ("next_local_state", res.next.local_state), ("next_obs", res.next.obs)):
            buf[k].append(v)
        if has_env:
            buf["env_state"].append(obs.env_state)
            buf["next_env_state"].append(res.next.env_state)
        if obs.alive is not None:
            alive.append(obs.alive.bool())
        obs = res.obs
    cat = {k: torch.cat(v, 0).to(torch.float32) if v else None for k, v in buf.items()}
    episode = torch.arange(env.num_envs, device=env.device).repeat(steps)  # env stream of each row
    valid = torch.cat(alive, 0) if alive else None  # a dead agent's rows are not its samples
    return SamplePool(**cat, obs_mask=spec.obs_mask.to(env.device), episode=episode, valid=valid)
