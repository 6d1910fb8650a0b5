"""PettingZoo ``ParallelEnv`` as a :class:`~marl_backends.envs.base.VecMultiAgentEnv` (bring your own env).

``hetero quantify --env pettingzoo:<module>:<env_fn>`` (e.g. ``pettingzoo:mpe2.simple_tag_v3:parallel_env``)
imports ``<module>``, calls ``<env_fn>(**env_args)`` once per env copy and steps the E copies as one
vectorised env (PettingZoo envs are single Python envs, so the copies are stepped one after the
other; everything after that is batched over envs and agents).

- An AEC env (e.g. ``pettingzoo:mpe2.simple_push_v3:env``) is refused with the parallel constructor to
  use instead, or ``pettingzoo.utils.conversions.aec_to_parallel``.
- Agents are ``possible_agents`` in order. Observations (Box, flattened) of unequal sizes are
  zero-padded to the largest; ``spec.obs_dims`` / ``obs_mask`` say which entries are real.
- Discrete actions of unequal counts are padded to the largest; ``avail_actions`` marks the
  padding unavailable. Continuous (Box) actions are padded and each agent's real part clipped to
  its own bounds. Mixed discrete / continuous agents are refused.
- Global state: ``env.state()`` when the env implements it, else every agent's padded observation
  concatenated. Local state s_i = the agent's observation (PettingZoo exposes nothing finer).
- An agent that leaves ``env.agents`` before its episode ends is marked dead (``alive``), and a copy
  whose agents have all terminated / truncated is reset (``StepResult.next`` keeps the final obs).
- No model access (model-free kinds: meta, and obs/response/effect/objective learned model-free)
  and no heuristic: ``heuristic_actions`` draws uniformly among available actions.
- ``spec.groups``: agents' roles from PettingZoo's ``<role>_<k>`` naming (``adversary_0`` ->
  ``adversary``), a reference to compare the groups found against, not an input.
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from marl_backends.envs.base import EnvSpec, Observation, StepResult, check_discrete_actions, random_available_actions

PREFIX = "pettingzoo:"


def resolve_env_fn(spec: str) -> Callable:
    """``pettingzoo:<module>:<env_fn>`` -> the callable, with errors that say what to fix."""
    parts = spec[len(PREFIX):].split(":") if spec.startswith(PREFIX) else []
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"env {spec!r}: write pettingzoo:<module>:<env_fn>, e.g. "
                         "pettingzoo:mpe2.simple_spread_v3:parallel_env.")
    module, fn = parts
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"env {spec!r}: cannot import {module!r} ({e}); install it (pip install -e .[pettingzoo] "
                         "-c constraints.txt brings pettingzoo and mpe2).") from e
    if not callable(getattr(mod, fn, None)):
        raise ValueError(f"env {spec!r}: module {module!r} has no callable {fn!r} (a function returning a ParallelEnv).")
    return getattr(mod, fn)


def is_aec(env) -> bool:  # noqa: ANN001
    """True for a PettingZoo AEC env (agents act in turn: ``agent_iter`` / ``last``), wrapped or not."""
    try:
        from pettingzoo.utils.env import AECEnv

        if isinstance(env, AECEnv):
            return True
    except ImportError:
        pass
    return callable(getattr(env, "agent_iter", None)) and callable(getattr(env, "last", None))


def aec_message(name: str, env) -> str:  # noqa: ANN001
    """The refusal of an AEC env, naming the parallel constructor to use instead."""
    parts = name[len(PREFIX):].split(":") if name.startswith(PREFIX) else []
    use = "the module's parallel_env constructor"
    if len(parts) == 2 and callable(getattr(importlib.import_module(parts[0]), "parallel_env", None)):
        use = f"--env {PREFIX}{parts[0]}:parallel_env"
    return (f"{name}: the constructor returned {type(env).__name__}, a PettingZoo AEC env (agents act one at a "
            f"time); this adapter steps ParallelEnvs. Use {use}, or wrap your AEC env with "
            "pettingzoo.utils.conversions.aec_to_parallel.")


def _role(agent: str) -> str:
    head, _, tail = agent.rpartition("_")
    return head if head and tail.isdigit() else agent


class PettingZooEnv:
    """E copies of a PettingZoo ParallelEnv, batched over envs and agents (see the module docstring)."""

    def __init__(self, env_fn: Callable, num_envs: int = 8, device: str | torch.device = "cpu", seed: int = 0,
                 name: str = "pettingzoo", max_steps: int | None = None, **env_args) -> None:  # noqa: ANN003
        from gymnasium import spaces

        env = env_fn(**env_args)
        if is_aec(env):
            raise ValueError(aec_message(name, env))
        self.envs = [env, *(env_fn(**env_args) for _ in range(num_envs - 1))]
        self.num_envs, self.device, self.seed = num_envs, torch.device(device), seed
        if not hasattr(env, "possible_agents") or not callable(getattr(env, "step", None)):
            raise ValueError(f"{name}: {env_fn!r} returned {type(env).__name__}, not a PettingZoo ParallelEnv "
                             "(for an AEC env, wrap it: pettingzoo.utils.conversions.aec_to_parallel).")
        self.agents = list(env.possible_agents)
        obs_sp = [env.observation_space(a) for a in self.agents]
        act_sp = [env.action_space(a) for a in self.agents]
        if not all(isinstance(s, spaces.Box) for s in obs_sp):
            raise ValueError(f"{name}: observation spaces {[type(s).__name__ for s in obs_sp]}; only Box "
                             "observations are supported (flatten Dict/Tuple ones with a wrapper).")
        discrete = [isinstance(s, spaces.Discrete) for s in act_sp]
        if any(discrete) and not all(discrete) or not all(discrete) and not all(isinstance(s, spaces.Box) for s in act_sp):
            raise ValueError(f"{name}: action spaces {[type(s).__name__ for s in act_sp]}; all agents need Discrete "
                             "or all Box actions.")
        self.discrete = all(discrete)
        self.obs_dims = tuple(int(np.prod(s.shape)) for s in obs_sp)
        self.act_dims = tuple(int(s.n) if self.discrete else int(np.prod(s.shape)) for s in act_sp)
        n, do, da = len(self.agents), max(self.obs_dims), max(self.act_dims)
        self.avail = (torch.arange(da)[None, :] < torch.tensor(self.act_dims)[:, None]).to(self.device)  # [N, A]
        if not self.discrete:
            lo = torch.zeros(n, da)
            hi = torch.zeros(n, da)
            for i, s in enumerate(act_sp):
                lo[i, :self.act_dims[i]] = torch.as_tensor(s.low, dtype=torch.float32).flatten()
                hi[i, :self.act_dims[i]] = torch.as_tensor(s.high, dtype=torch.float32).flatten()
            self.low, self.high = lo.to(self.device), hi.to(self.device)
        self._has_state = self._probe_state(env)
        roles = [_role(a) for a in self.agents]
        order = list(dict.fromkeys(roles))
        state_dim = len(np.asarray(env.state()).ravel()) if self._has_state else n * do
        raw = getattr(env, "unwrapped", env)
        limit = max_steps or int(getattr(raw, "max_cycles", 0) or getattr(raw, "max_steps", 0) or 100)
        self.spec = EnvSpec(name=name, n_agents=n, obs_dim=do, state_dim=state_dim, local_state_dim=do,
                            action_dim=da, discrete=self.discrete, max_steps=limit, obs_dims=self.obs_dims,
                            groups=tuple(order.index(r) for r in roles),
                            action_low=None if self.discrete else float(self.low.min()),
                            action_high=None if self.discrete else float(self.high.max()))
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self._last: Observation | None = None

    @staticmethod
    def _probe_state(env) -> bool:  # noqa: ANN001
        try:
            env.reset(seed=0)
            env.state()
            return True
        except (NotImplementedError, AttributeError):
            return False

    # --- batching -----------------------------------------------------------------------------
    def _pad_obs(self, obs: dict) -> tuple[np.ndarray, np.ndarray]:
        """{agent: obs} -> padded [N, Do] and alive [N] (agents absent from the dict are dead)."""
        out = np.zeros((len(self.agents), self.spec.obs_dim), dtype=np.float32)
        alive = np.zeros(len(self.agents), dtype=bool)
        for i, a in enumerate(self.agents):
            if a in obs:
                out[i, :self.obs_dims[i]] = np.asarray(obs[a], dtype=np.float32).ravel()
                alive[i] = True
        return out, alive

    def _observation(self, per_env: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Observation:
        obs = torch.as_tensor(np.stack([p[0] for p in per_env]), device=self.device)
        alive = torch.as_tensor(np.stack([p[1] for p in per_env]), device=self.device)
        state = torch.as_tensor(np.stack([p[2] for p in per_env]), dtype=torch.float32, device=self.device)
        avail = self.avail.expand(self.num_envs, -1, -1) if self.discrete else None
        return Observation(obs=obs, state=state, local_state=obs, avail_actions=avail,
                           alive=None if bool(alive.all()) else alive)

    def _state(self, env, padded: np.ndarray) -> np.ndarray:  # noqa: ANN001
        return np.asarray(env.state(), dtype=np.float32).ravel() if self._has_state else padded.ravel()

    def _reset_one(self, e: int, seed: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs, _ = self.envs[e].reset(seed=seed)
        padded, alive = self._pad_obs(obs)
        self.t[e] = 0
        return padded, alive, self._state(self.envs[e], padded)

    # --- VecMultiAgentEnv -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        base = self.seed if seed is None else seed
        self._last = self._observation([self._reset_one(e, base * 10_007 + e) for e in range(self.num_envs)])
        return self._last

    def step(self, actions: Tensor) -> StepResult:
        if self._last is None:
            raise RuntimeError(f"{self.spec.name}: call reset() before step().")
        if self.discrete:
            a = check_discrete_actions(self.spec.name, actions, self.avail.expand(self.num_envs, -1, -1)).cpu().numpy()
        else:
            if tuple(actions.shape) != (self.num_envs, self.spec.n_agents, self.spec.action_dim):
                raise ValueError(f"{self.spec.name}: actions have shape {tuple(actions.shape)}; expected "
                                 f"[{self.num_envs}, {self.spec.n_agents}, {self.spec.action_dim}].")
            a = torch.maximum(torch.minimum(actions.to(self.device).float(), self.high), self.low).cpu().numpy()
        nxt, now, rew = [], [], np.zeros((self.num_envs, self.spec.n_agents), dtype=np.float32)
        term = np.zeros(self.num_envs, dtype=bool)
        trunc = np.zeros(self.num_envs, dtype=bool)
        for e, env in enumerate(self.envs):
            live = set(env.agents)
            act = {ag: (int(a[e, i]) if self.discrete else a[e, i, :self.act_dims[i]])
                   for i, ag in enumerate(self.agents) if ag in live}
            obs, r, te, tr, _ = env.step(act)
            self.t[e] += 1
            padded, alive = self._pad_obs(obs)
            rew[e] = [float(r.get(ag, 0.0)) for ag in self.agents]
            done_all = not env.agents or all(te.get(ag, False) or tr.get(ag, False) for ag in env.agents)
            term[e] = done_all and any(te.values()) and not any(tr.values())
            trunc[e] = (done_all and not term[e]) or bool(self.t[e] >= self.spec.max_steps)
            nxt.append((padded, alive, self._state(env, padded)))
            now.append(self._reset_one(e, None) if term[e] or trunc[e] else nxt[-1])
        self._last = self._observation(now)
        return StepResult(next=self._observation(nxt), reward=torch.as_tensor(rew, device=self.device),
                          terminated=torch.as_tensor(term, device=self.device),
                          truncated=torch.as_tensor(trunc, device=self.device), obs=self._last)

    @property
    def model(self):  # noqa: ANN201
        return None

    heuristic_is_random = True  # no scripted policy: --behaviour heuristic draws random actions

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """PettingZoo envs ship no scripted policy: uniformly random available actions."""
        return self.random_actions(obs, generator)

    def random_actions(self, obs: Observation, generator: torch.Generator) -> Tensor:
        if self.discrete:
            return random_available_actions(self.avail.expand(self.num_envs, -1, -1), generator)
        u = torch.rand(self.num_envs, *self.low.shape, generator=generator, device=generator.device).to(self.device)
        return self.low + u * (self.high - self.low)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_pettingzoo_env(spec: str, num_envs: int = 8, device: str | torch.device = "cpu", seed: int = 0,
                        continuous: bool = False, max_steps: int | None = None, **env_args) -> PettingZooEnv:  # noqa: ANN003
    """``make_env`` for ``pettingzoo:<module>:<env_fn>`` names; ``env_args`` go to ``env_fn``.

    ``continuous`` is passed on as ``continuous_actions`` (the MPE convention) only when True."""
    if continuous:
        env_args.setdefault("continuous_actions", True)
    return PettingZooEnv(resolve_env_fn(spec), num_envs, device, seed, name=spec, max_steps=max_steps, **env_args)
