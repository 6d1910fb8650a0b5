"""SamplePool: the transitions heterogeneity is quantified from (paper Sec. 4.2, step 1).

Every per-agent field is stacked over agents, so one tensor op serves all of them. Rows are
time steps (envs x steps flattened); the pool is shuffled when it is sampled, so the learned
functions are Markov (independent of history), as the paper requires.

Agents may have observation / local-state / action spaces of different sizes: fields are padded
to the largest size and the ``*_mask`` tensors ([N, D], True = a real dimension) say which
entries are real.

The global state factors as s = (s_1, ..., s_N, S^E) (paper Sec. 2): the agents' local states and
the environment part S^E (landmarks, a torso, enemy units). ``env_state`` carries S^E where the
env exposes it, so model-free conditions can be built ego-centric (hetero/kinds.py); ``state``
stays the env's own global state (e.g. a critic's input), in whatever order the env gives it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

PER_AGENT_FIELDS = ("local_state", "obs", "action", "reward", "next_local_state", "next_obs")
GLOBAL_FIELDS = ("state", "next_state")
ENV_FIELDS = ("env_state", "next_env_state")  # optional S^E and S^E': both or neither


@dataclass
class SamplePool:
    """Transitions of N agents over T rows.

    Attributes:
        state: [T, Ds] global state s.
        next_state: [T, Ds] global state s' after the step.
        local_state: [T, N, Dl] each agent's own local state s_i (e.g. position, velocity).
        obs: [T, N, Do] each agent's observation o_i.
        action: [T, N, Da] each agent's action a_i (one-hot for discrete actions).
        reward: [T, N] each agent's reward r_i.
        next_local_state: [T, N, Dl] s_i'.
        next_obs: [T, N, Do] o_i'.
        obs_mask, local_state_mask, action_mask: [N, D] bool, True where a dimension is real
            (all True when agents share a space).
        valid: [T, N] bool, False for rows where an agent has no sample (e.g. it was dead).
        episode: [T] long, which episode / env stream each row comes from (optional). The
            model-free noise floor splits the pool into halves by episode.
        env_state / next_env_state: [T, De] the environment part S^E of the global state and
            S^E' after the step (optional, both or neither; None when the env does not expose
            it). Model-free conditions append it after the agents' slots.
    """

    state: Tensor
    next_state: Tensor
    local_state: Tensor
    obs: Tensor
    action: Tensor
    reward: Tensor
    next_local_state: Tensor
    next_obs: Tensor
    obs_mask: Tensor | None = None
    local_state_mask: Tensor | None = None
    action_mask: Tensor | None = None
    valid: Tensor | None = None
    episode: Tensor | None = None
    env_state: Tensor | None = None
    next_env_state: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.n_agents
        if self.obs_mask is None:
            self.obs_mask = torch.ones(n, self.obs.shape[-1], dtype=torch.bool, device=self.obs.device)
        if self.local_state_mask is None:
            self.local_state_mask = torch.ones(
                n, self.local_state.shape[-1], dtype=torch.bool, device=self.obs.device
            )
        if self.action_mask is None:
            self.action_mask = torch.ones(n, self.action.shape[-1], dtype=torch.bool, device=self.obs.device)
        if self.valid is None:
            self.valid = torch.ones(self.rows, n, dtype=torch.bool, device=self.obs.device)

    @property
    def rows(self) -> int:
        return self.obs.shape[0]

    @property
    def n_agents(self) -> int:
        return self.obs.shape[1]

    @property
    def device(self) -> torch.device:
        return self.obs.device

    def validate(self) -> "SamplePool":
        """Raise a ValueError naming the bad field and the fix; return self when all is well."""
        t, n = self.rows, self.n_agents
        if n < 2:
            raise ValueError(
                f"SamplePool has {n} agent(s); heterogeneity compares agents, so at least 2 are "
                "needed. Check the env's agent count."
            )
        for name in PER_AGENT_FIELDS:
            v = getattr(self, name)
            if v.shape[:2] != (t, n):
                raise ValueError(
                    f"SamplePool.{name} has shape {tuple(v.shape)}, expected leading dims ({t}, {n}) "
                    "= (rows, agents) like SamplePool.obs; stack every per-agent field as [T, N, ...]."
                )
        for name in GLOBAL_FIELDS:
            v = getattr(self, name)
            if v.shape[0] != t:
                raise ValueError(
                    f"SamplePool.{name} has {v.shape[0]} rows, expected {t} like SamplePool.obs."
                )
        for name, dim_of in (("obs_mask", "obs"), ("local_state_mask", "local_state"), ("action_mask", "action")):
            m = getattr(self, name)
            want = (n, getattr(self, dim_of).shape[-1])
            if tuple(m.shape) != want:
                raise ValueError(f"SamplePool.{name} has shape {tuple(m.shape)}, expected {want}.")
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and v.is_floating_point() and not torch.isfinite(v).all():
                bad = (~torch.isfinite(v)).nonzero()[0].tolist()
                raise ValueError(
                    f"SamplePool.{f.name} contains NaN or inf (first at index {bad}); drop or repair "
                    "those transitions before quantifying (e.g. check the env's reward/observation)."
                )
        have = [name for name in ENV_FIELDS if getattr(self, name) is not None]
        if len(have) == 1:
            missing = next(name for name in ENV_FIELDS if name not in have)
            raise ValueError(f"SamplePool.{have[0]} is set but SamplePool.{missing} is None; give both S^E and "
                             "S^E' (the env part before and after the step) or neither.")
        if have:
            e, e2 = self.env_state, self.next_env_state
            if e.dim() != 2 or e.shape[0] != t or tuple(e2.shape) != tuple(e.shape):
                raise ValueError(
                    f"SamplePool.env_state / next_env_state have shapes {tuple(e.shape)} / {tuple(e2.shape)}; "
                    f"expected ({t}, De) both, one row of the env part S^E per row like SamplePool.obs."
                )
        if self.episode is not None and tuple(self.episode.shape) != (t,):
            raise ValueError(f"SamplePool.episode has shape {tuple(self.episode.shape)}, expected ({t},).")
        per_agent = self.valid.sum(0)
        empty = (per_agent == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"agent(s) {empty} have no valid samples in the pool; collect more steps or drop "
                "those agents before quantifying."
            )
        return self

    def to(self, device: torch.device | str) -> "SamplePool":
        return replace(self, **{f.name: (getattr(self, f.name).to(device) if getattr(self, f.name) is not None else None) for f in fields(self)})

    def subset(self, rows: Tensor) -> "SamplePool":
        """The pool restricted to the given row indices (masks kept)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v if f.name.endswith("_mask") or v is None else v[rows]
        return SamplePool(**kw)

    @staticmethod
    def concat(pools: "list[SamplePool]") -> "SamplePool":
        """Concatenate pools row-wise (they must share agents and dimensions)."""
        kw = {}
        for f in fields(SamplePool):
            vs = [getattr(p, f.name) for p in pools]
            if f.name in ENV_FIELDS and any(v is None for v in vs):
                if not all(v is None for v in vs):
                    raise ValueError(f"SamplePool.concat: some pools have {f.name} and some do not; drop it from "
                                     "all (replace(pool, env_state=None, next_env_state=None)) or give it to all.")
                kw[f.name] = None
            elif f.name == "episode" and any(v is None for v in vs):
                kw[f.name] = None
            elif f.name == "episode":  # keep episodes of different pools apart
                shifted, offset = [], 0
                for v in vs:
                    shifted.append(v + offset)
                    offset += int(v.max()) + 1
                kw[f.name] = torch.cat(shifted, 0)
            else:
                kw[f.name] = vs[0] if f.name.endswith("_mask") else torch.cat(vs, 0)
        return SamplePool(**kw)
