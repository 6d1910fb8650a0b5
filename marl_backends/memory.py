"""Up-front memory estimates from the shapes of a run, and the check that refuses what will not fit.

``hetero train`` (rollouts and updates of ``--num-envs`` x ``--rollout-steps``, or an off-policy
replay buffer of ``--buffer-size``) and ``hetero quantify`` (a pool of ``--samples`` per agent)
call :func:`check` before building anything big: the estimate is compared with the memory this
machine has available (``MemAvailable``), and a run that would not fit is refused with the
estimate and the flag to change (``--ignore-memory-check`` skips it). The coefficients were
fitted to measured peaks (``bench/bench_memory.py``, ``bench/results_memory.json``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

F32, I64 = 4, 8
ENV_FLOATS = 24        # bytes per env and per float of (N * (obs + local state) + state): VMAS's own tensors
ACTIVATIONS = 3        # floats kept per hidden unit and sample through forward and backward (fitted: bench_memory)
GiB = 2**30


@dataclass(frozen=True)
class Shapes:
    """What the estimates need of an env: agents, per-agent and global sizes, action kind."""

    n_agents: int
    obs_dim: int
    state_dim: int
    local_state_dim: int
    action_dim: int
    discrete: bool
    env_state_dim: int = 0

    @staticmethod
    def of(env) -> "Shapes":  # noqa: ANN001
        """The shapes of a built env (a 1-env probe is enough)."""
        s = env.spec
        o = getattr(env, "_last", None) or env.reset(seed=0)
        de = 0 if getattr(o, "env_state", None) is None else int(o.env_state.shape[-1])
        return Shapes(s.n_agents, s.obs_dim, s.state_dim, s.local_state_dim, s.action_dim, s.discrete, de)

    @property
    def agent_floats(self) -> int:
        """Floats of one step of one env: every agent's obs and local state, the global and env state."""
        return self.n_agents * (self.obs_dim + self.local_state_dim) + self.state_dim + self.env_state_dim


def env_bytes(s: Shapes, num_envs: int) -> int:
    """The envs' own state and step temporaries (VMAS-like vectorised envs)."""
    return num_envs * ENV_FLOATS * s.agent_floats


def pool_row_bytes(s: Shapes) -> int:
    """One row of a :class:`~hetero.samples.SamplePool` (s, s', o, o', s_i, s_i', one-hot a, r, S^E)."""
    n = s.n_agents
    return F32 * (2 * s.agent_floats + n * (s.action_dim + 1)) + I64 + n


def rollout_row_bytes(s: Shapes, n_values: int) -> int:
    """One (step, env) of an on-policy rollout: pool fields plus log-prob, distribution, value."""
    n, params = s.n_agents, s.action_dim if s.discrete else 2 * s.action_dim
    action = n * I64 if s.discrete else n * s.action_dim * F32
    return F32 * (2 * s.agent_floats + n * (2 + params) + 2 * n_values) + action + 2 + n * (s.action_dim + 1)


def train_bytes(s: Shapes, num_envs: int, rollout_steps: int, hidden: tuple[int, ...] = (128, 128),
                num_minibatches: int = 1, critic_minibatches: int = 1, n_values: int | None = None,
                pool_rollouts: int = 0) -> int:
    """Peak growth of an on-policy run: envs, the rollout (per-step lists and their stacked copy),
    the update's minibatch and activations (actor over agents, critic over states), and the
    HetDPS pool of ``pool_rollouts`` rollouts."""
    n = s.n_agents
    n_values = n if n_values is None else n_values
    rows = num_envs * rollout_steps
    h = sum(hidden)
    rollout = 2 * rows * rollout_row_bytes(s, n_values)
    actor_rows = -(-rows // max(1, num_minibatches)) * n
    actor = actor_rows * F32 * (3 * s.obs_dim + ACTIVATIONS * h + 6 * s.action_dim)
    critic = -(-rows // max(1, critic_minibatches)) * F32 * (3 * s.state_dim + ACTIVATIONS * h + 6 * n_values)
    pool = pool_rollouts * rows * pool_row_bytes(s)
    return env_bytes(s, num_envs) + rollout + actor + critic + pool


def quantify_bytes(s: Shapes, num_envs: int, steps: int) -> int:
    """Peak growth of ``hetero quantify``'s sample pool: envs, the per-step lists and their
    concatenation, and the copies and conditions the kinds build from it (2.2 pools, fitted)."""
    return env_bytes(s, num_envs) + int(2.2 * num_envs * steps * pool_row_bytes(s))


def replay_bytes(s: Shapes, capacity: int, num_envs: int, n_step: int = 1) -> int:
    """A full replay buffer (``offpolicy.buffer.ReplayBuffer``) and its copy in the checkpoint."""
    t = max(n_step + 1, math.ceil(capacity / num_envs))
    n, act = s.n_agents, s.action_dim
    per = F32 * (2 * n * (s.obs_dim + s.local_state_dim) + 2 * s.state_dim + n * (act + 1)) + 2
    if s.discrete:
        per += 2 * n * act + n  # avail, next_avail, alive masks (bool), when the env reports them
    return 2 * t * num_envs * per + env_bytes(s, num_envs)


def available_bytes(device: str = "cpu") -> int:
    """Memory a new allocation can get now: ``MemAvailable`` (cpu) or the GPU's free memory; 0 when unknown."""
    if str(device).startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0]) if torch.cuda.is_available() else 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def largest_fitting(estimate: Callable[[int], int], budget: int, upto: int) -> int:
    """The largest value v <= ``upto`` with ``estimate(v) <= budget`` (0 if none)."""
    lo, hi = 0, upto
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if estimate(mid) <= budget else (lo, mid - 1)
    return lo


def check(estimate: Callable[[int], int], value: int, flag: str, what: str, device: str = "cpu",
          available: int | None = None) -> int:
    """Raise ValueError when ``estimate(value)`` bytes exceed the available memory; the message
    gives the estimate, what it holds, the largest ``flag`` value that fits and the override.
    Returns the estimate. ``available`` defaults to :func:`available_bytes` (0: unknown, no check)."""
    need = estimate(value)
    have = available_bytes(device) if available is None else available
    if have and need > have:
        fit = largest_fitting(estimate, have // 2, value)
        hint = f"lower {flag} (about {fit:,} fits in half of it)" if fit else f"lower {flag}"
        raise ValueError(f"{flag} {value:,} needs about {need / GiB:.1f} GiB of memory ({what}), more than the "
                         f"{have / GiB:.1f} GiB available here; {hint}, or pass --ignore-memory-check if you know "
                         "better.")
    return need
