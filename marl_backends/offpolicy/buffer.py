"""Replay buffer vectorised over envs x agents, with n-step returns.

Storage is time-major per env, ``[T, E, ...]`` (a ring over T), so the n steps that follow a
stored transition are the next rows of the same env column. Each row keeps its own true next
observation (``StepResult.next``), so an n-step return can stop at any row: at the first episode
end (terminated: no bootstrap; truncated: bootstrap from that row's next state) or at the newest
row written. Sampling and the n-step sums are batched tensor ops.

Optional per-agent masks are stored when the env provides them (allocated at the first ``add``
that carries them): ``avail`` / ``next_avail`` [T, E, N, A] bool (``Observation.avail_actions``
of obs and of the true next obs; the sampled ``Batch`` carries ``avail`` and ``boot_avail``, the
mask at the n-step bootstrap row) and ``alive`` [T, E, N] bool (of obs; for ``SamplePool.valid``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from marl_backends.envs.base import Observation, StepResult

_FIELDS = ("obs", "state", "local_state", "action", "reward", "next_obs", "next_state", "next_local_state")
_MASKS = ("avail", "next_avail", "alive")  # optional bool fields, present when the env reports them


@dataclass
class Batch:
    """A sampled minibatch; leading dims ``[K, B]`` (K independent minibatches, one per critic).

    ret: n-step discounted team return; disc: gamma^m * (1 - terminated) for the bootstrap
    (m <= n steps used); boot_*: the observation to bootstrap from (after the m-th step).
    reward / next_*: the one-step fields, for the sample pool.
    avail / boot_avail: available-action masks [K, B, N, A] bool of obs and of the bootstrap
    observation (None when the env has no masks).
    """

    obs: Tensor
    state: Tensor
    local_state: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    next_state: Tensor
    next_local_state: Tensor
    ret: Tensor
    disc: Tensor
    boot_obs: Tensor
    boot_state: Tensor
    avail: Tensor | None = None
    boot_avail: Tensor | None = None


def _physical_memory() -> int:
    """Bytes of RAM, or 0 when the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


class ReplayBuffer:
    """Ring buffer of ``capacity`` transitions from E envs x N agents.

    ``add(obs, actions, result)`` stores one vectorised step; ``sample(k, b, gen)`` draws K
    independent minibatches of B transitions (uniform over stored rows and envs).
    The team reward is the mean of the agents' rewards.
    """

    def __init__(self, capacity: int, num_envs: int, n_agents: int, obs_dim: int, state_dim: int,
                 local_state_dim: int, action_dim: int, gamma: float, n_step: int = 1,
                 device: str | torch.device = "cpu"):
        if n_step < 1:
            raise ValueError(f"n_step={n_step}; must be >= 1 (1 = one-step TD).")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma={gamma}; must lie in [0, 1].")
        self.t_cap = max(n_step + 1, math.ceil(capacity / num_envs))
        self.num_envs, self.n_step, self.gamma = num_envs, n_step, gamma
        self.device = torch.device(device)
        t, e, n = self.t_cap, num_envs, n_agents
        need = 4 * t * e * (2 * n * (obs_dim + local_state_dim) + 2 * state_dim + n * (action_dim + 1))
        ram = _physical_memory()
        if self.device.type == "cpu" and ram and need > 0.8 * ram:
            fit = int(capacity * 0.5 * ram / need)
            raise ValueError(f"a replay buffer of {capacity:,} transitions needs {need / 2**30:.1f} GiB here "
                             f"({n} agents x {obs_dim} obs features), more than this machine's "
                             f"{ram / 2**30:.0f} GiB can hold; lower --buffer-size (e.g. {fit:,}).")
        z = lambda *s: torch.zeros(t, e, *s, device=self.device)  # noqa: E731
        self.obs, self.next_obs = z(n, obs_dim), z(n, obs_dim)
        self.state, self.next_state = z(state_dim), z(state_dim)
        self.local_state, self.next_local_state = z(n, local_state_dim), z(n, local_state_dim)
        self.action, self.reward = z(n, action_dim), z(n)
        self.terminated = torch.zeros(t, e, dtype=torch.bool, device=self.device)
        self.done = torch.zeros(t, e, dtype=torch.bool, device=self.device)
        self.n_agents, self.action_dim = n, action_dim
        self.avail = self.next_avail = self.alive = None  # allocated when the env reports them
        self.ptr, self.size = 0, 0

    def _mask(self, name: str) -> Tensor:
        """The bool field ``name``, allocated (all True) on first use."""
        if getattr(self, name) is None:
            shape = (self.n_agents,) if name == "alive" else (self.n_agents, self.action_dim)
            setattr(self, name, torch.ones(self.t_cap, self.num_envs, *shape, dtype=torch.bool, device=self.device))
        return getattr(self, name)

    def __len__(self) -> int:
        return self.size * self.num_envs

    def add(self, obs: Observation, actions: Tensor, result: StepResult) -> None:
        """Store one vectorised step: obs [E, ...], actions [E, N, A], result from env.step."""
        p = self.ptr
        nxt = result.next
        for name, v in (("obs", obs.obs), ("state", obs.state), ("local_state", obs.local_state),
                        ("action", actions), ("reward", result.reward), ("next_obs", nxt.obs),
                        ("next_state", nxt.state), ("next_local_state", nxt.local_state)):
            getattr(self, name)[p] = v.to(self.device, torch.float32)
        self.terminated[p] = result.terminated.to(self.device)
        self.done[p] = result.done.to(self.device)
        for name, v in (("avail", obs.avail_actions), ("next_avail", nxt.avail_actions), ("alive", obs.alive)):
            if v is not None:
                self._mask(name)[p] = v.to(self.device, torch.bool)
            elif getattr(self, name) is not None:
                getattr(self, name)[p] = True
        self.ptr = (p + 1) % self.t_cap
        self.size = min(self.size + 1, self.t_cap)

    def sample(self, k: int, b: int, generator: torch.Generator) -> Batch:
        """K independent minibatches of B transitions, fields shaped [K, B, ...]."""
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty; collect steps (add) first.")
        g = generator
        row = torch.randint(0, self.size, (k, b), generator=g, device=g.device).to(self.device)
        env = torch.randint(0, self.num_envs, (k, b), generator=g, device=g.device).to(self.device)
        # the oldest stored row sits at ptr once the ring is full, else at 0
        start = self.ptr if self.size == self.t_cap else 0
        t = (start + row) % self.t_cap
        ahead = self.size - 1 - row  # rows written after t in this env column
        ks = torch.arange(self.n_step, device=self.device)
        tk = (t[..., None] + ks) % self.t_cap  # [K, B, n]
        ek = env[..., None].expand_as(tk)
        done_k = self.done[tk, ek]
        # step j is used if j <= ahead and no episode ended at steps < j
        ended_before = torch.cumsum(done_k.long(), -1) - done_k.long()
        used = (ks <= ahead[..., None]) & (ended_before == 0)
        team_r = self.reward[tk, ek].mean(-1)
        disc_k = self.gamma ** ks.to(team_r.dtype)
        ret = (team_r * disc_k * used).sum(-1)
        m = used.sum(-1)  # >= 1
        last_t = tk.gather(-1, (m - 1)[..., None]).squeeze(-1)
        disc = (self.gamma ** m.to(ret.dtype)) * (~self.terminated[last_t, env]).to(ret.dtype)
        f = {name: getattr(self, name)[t, env] for name in _FIELDS}
        masks = {}
        if self.avail is not None:
            masks = {"avail": self.avail[t, env], "boot_avail": self._mask("next_avail")[last_t, env]}
        return Batch(**f, ret=ret, disc=disc, boot_obs=self.next_obs[last_t, env],
                     boot_state=self.next_state[last_t, env], **masks)

    # -------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict:
        """The filled part of the ring only (``size`` rows, float32 / bool), plus ``ptr`` and ``size``.

        Rows are stored in ring order (index 0..size-1), so ``load_state_dict`` restores the
        exact ring, including which row is the oldest and where the next write goes."""
        k = self.size
        out = {name: getattr(self, name)[:k].to("cpu", torch.float32).clone() for name in _FIELDS}
        out.update(terminated=self.terminated[:k].cpu().clone(), done=self.done[:k].cpu().clone(),
                   ptr=self.ptr, size=self.size, t_cap=self.t_cap, num_envs=self.num_envs)
        out.update({name: getattr(self, name)[:k].cpu().clone() for name in _MASKS if getattr(self, name) is not None})
        return out

    def load_state_dict(self, sd: dict) -> None:
        if (sd["t_cap"], sd["num_envs"]) != (self.t_cap, self.num_envs):
            raise ValueError(
                f"replay checkpoint has {sd['t_cap']} rows x {sd['num_envs']} envs but this buffer has "
                f"{self.t_cap} x {self.num_envs}; resume with the run's own --buffer-size and --num-envs.")
        k = sd["size"]
        for name in _FIELDS + ("terminated", "done"):
            getattr(self, name)[:k] = sd[name].to(self.device)
        for name in _MASKS:
            if name in sd:
                self._mask(name)[:k] = sd[name].to(self.device)
            else:
                setattr(self, name, None)
        self.ptr, self.size = sd["ptr"], k
