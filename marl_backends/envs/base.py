"""The vectorised multi-agent env protocol every backend (VMAS, MaMuJoCo, SMACv2) implements.

All tensors are stacked over envs E and agents N, so trainers and samplers never loop over
agents. Observations of agents with different sizes are zero-padded to ``spec.obs_dim`` and
``spec.obs_mask`` says which entries are real.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from hetero.protocols import ModelAccess


@dataclass(frozen=True)
class EnvSpec:
    """Static facts about an env.

    Attributes:
        name: registry name, e.g. ``pms_15a_3c``.
        n_agents: N.
        obs_dim: padded observation size Do.
        state_dim: global state size Ds (input of a centralised critic).
        local_state_dim: size Dl of an agent's own local state (e.g. pos + vel).
        action_dim: number of discrete actions, or the size of a continuous action.
        discrete: True for discrete actions (actions are [E, N] long), else [E, N, action_dim].
        max_steps: episode length limit (truncation).
        obs_dims: real observation size of each agent (all equal to obs_dim when homogeneous).
        groups: ground-truth agent types when the env knows them (e.g. PMS colours), else None.
        action_low / action_high: bounds of continuous actions (None for discrete).
    """

    name: str
    n_agents: int
    obs_dim: int
    state_dim: int
    local_state_dim: int
    action_dim: int
    discrete: bool
    max_steps: int
    obs_dims: tuple[int, ...] = ()
    groups: tuple[int, ...] | None = None
    action_low: float | None = None
    action_high: float | None = None

    @property
    def obs_mask(self) -> Tensor:
        dims = self.obs_dims or (self.obs_dim,) * self.n_agents
        return torch.arange(self.obs_dim)[None, :] < torch.tensor(dims)[:, None]


@dataclass
class Observation:
    """What agents see at one step, for all envs.

    obs [E, N, Do]; state [E, Ds]; local_state [E, N, Dl];
    avail_actions [E, N, A] bool or None (discrete action masks);
    alive [E, N] bool or None (None: every agent is alive). A dead agent's transitions carry no
    information about it (SMAC units), so sample pools mark them invalid.
    env_state [E, De] or None: the environment part S^E of the global state, the non-agent
    components (paper Sec. 2: s = (s_1..s_N, S^E)), e.g. landmark positions. Model-free
    quantification appends it to every agent's ego-centric condition (hetero/kinds.py); None when
    the env does not expose it.
    """

    obs: Tensor
    state: Tensor
    local_state: Tensor
    avail_actions: Tensor | None = None
    alive: Tensor | None = None
    env_state: Tensor | None = None


@dataclass
class StepResult:
    """The outcome of one vectorised step.

    next: the true next observation (before any auto-reset): use it for the sample pool's
        next_obs / next_local_state and to bootstrap truncated episodes.
    reward: [E, N]. terminated / truncated: [E] bool.
    obs: the observation to act on next: equal to ``next`` except in envs that finished this
        step, which were reset.
    info: optional per-env extras, each [E] or [E, N]. Keys trainers read: ``won`` [E] bool
        (battle won; meaningful where ``done``, logged as win rate) and ``unit_types`` [E, N]
        long (each agent's unit type this episode, for envs that draw types per episode).
    """

    next: Observation
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    obs: Observation
    info: dict[str, Tensor] = field(default_factory=dict)

    @property
    def done(self) -> Tensor:
        return self.terminated | self.truncated


@runtime_checkable
class VecMultiAgentEnv(Protocol):
    """What a user implements to bring their own vectorised env to ``quantify`` / ``collect_pool``
    (a complete example: ``case_studies/examples/own_env.py``; PettingZoo envs: ``envs/pettingzoo.py``).

    - ``spec``: an :class:`EnvSpec` (sizes, discrete or not, episode length, optional true groups).
    - ``num_envs``, ``device``: E and where the tensors live.
    - ``reset(seed) -> Observation``: obs [E, N, Do], state [E, Ds], local_state [E, N, Dl]
      (the agent's own state s_i; the obs itself if there is nothing finer).
    - ``step(actions) -> StepResult``: actions [E, N] long (discrete) or [E, N, Da]; rewards [E, N];
      ``next`` is the true next observation, ``obs`` the one to act on (auto-reset where done).
    - ``model``: a :class:`hetero.ModelAccess` for model-based kinds, or None (model-free).
    - ``heuristic_actions(obs, noise, generator)``: a goal-directed behaviour policy (random
      actions if there is none: under random behaviour model-free kinds may miss objective
      differences, and the noise floor will say so); ``heuristic_is_random`` (optional, default
      False) says that it is the random one.
    Then ``pool = collect_pool(env, steps)`` and ``hetero.quantify.quantify(pool, "meta")``.
    """

    spec: EnvSpec
    num_envs: int
    device: torch.device

    def reset(self, seed: int | None = None) -> Observation:
        ...

    def step(self, actions: Tensor) -> StepResult:
        ...

    @property
    def model(self) -> ModelAccess | None:
        """Model access for model-based quantification, or None (falls back to model-free)."""
        ...

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """A goal-directed behaviour policy (as VMAS scenarios ship), with exploration noise in [0, 1]."""
        ...


def check_discrete_actions(name: str, actions: Tensor, avail: Tensor) -> Tensor:
    """Guard of the masked discrete backends (SMAX, SMACv2): ``actions`` [E, N] must be indices of
    available actions under ``avail`` [E, N, A]. Returns them as a long tensor on ``avail``'s
    device; a wrong shape or an unavailable action raises a ValueError naming env, agent, action."""
    e, n, a_dim = avail.shape
    if tuple(actions.shape) != (e, n):
        raise ValueError(f"{name}: actions have shape {tuple(actions.shape)}; expected [num_envs, n_agents] = "
                         f"[{e}, {n}] discrete action indices.")
    a = actions.detach().long().to(avail.device)
    ok = (a >= 0) & (a < a_dim) & avail.bool().gather(-1, a.clamp(0, a_dim - 1)[..., None])[..., 0]
    if not bool(ok.all()):
        env_i, agent_i = (int(x) for x in (~ok).nonzero()[0])
        allowed = avail[env_i, agent_i].nonzero().flatten().tolist()
        raise ValueError(f"{name}: env {env_i}, agent {agent_i}: action {int(a[env_i, agent_i])} is unavailable "
                         f"(available: {allowed}); sample from avail_actions.")
    return a


def random_available_actions(avail: Tensor, generator: torch.Generator) -> Tensor:
    """Indices [..., N] drawn uniformly among the available actions of ``avail`` [..., N, A] bool
    (drawn with ``generator`` on its own device, returned on ``avail``'s)."""
    u = torch.rand(avail.shape, generator=generator, device=generator.device).to(avail.device)
    return u.masked_fill(~avail.bool(), -1.0).argmax(-1)  # an available action always wins
