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


def _where(name: str, idx: list[int], n_batch: int, per_agent: bool) -> str:
    """``obs[3, 1, 2, 0] (time 3, agent 2)``: an index into the caller's tensor, batch dims as given."""
    agent = f", agent {idx[n_batch]}" if per_agent and len(idx) > n_batch else ""
    return f"{name}[{', '.join(map(str, idx))}] (time {idx[0]}{agent})"


def _check_finite(name: str, v: Tensor | None, n_batch: int, n: int) -> None:
    """Raise a ValueError at the first NaN / inf of a tensor given to ``from_transitions``."""
    if v is None or not v.is_floating_point():
        return
    bad = ~torch.isfinite(v)
    if bool(bad.any()):
        idx = bad.nonzero()[0].tolist()
        per_agent = name not in GLOBAL_FIELDS and v.dim() > n_batch and v.shape[n_batch] == n
        raise ValueError(f"SamplePool.from_transitions: {name} holds {float(v[tuple(idx)])} at "
                         f"{_where(name, idx, n_batch, per_agent)}; drop or repair those transitions before "
                         "quantifying (e.g. check the env's reward/observation).")


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

    @classmethod
    def from_transitions(
        cls, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, *,
        done: Tensor | None = None, state: Tensor | None = None, next_state: Tensor | None = None,
        episode: Tensor | None = None, local_state: Tensor | None = None,
        next_local_state: Tensor | None = None, valid: Tensor | None = None, n_actions: int | None = None,
        obs_mask: Tensor | None = None, action_mask: Tensor | None = None,
    ) -> "SamplePool":
        """A validated pool from what any trainer stores: ``obs, action, reward, next_obs``.

        Leading dims ``[*B]`` may be any batch shape (e.g. ``[T, E]``: time x parallel envs), then
        flattened to rows; the first of them is time.
        - obs, next_obs: [*B, N, Do]; reward: [*B, N], [*B, N, 1] (trailing 1 dropped) or [*B] (a team
          reward, given to every agent).
        - action: [*B, N, Da] (continuous, or already one-hot), or integer [*B, N] / [*B, N, 1] with
          ``n_actions`` (one-hot encoded here).
        - local_state / next_local_state (s_i, the agent's own state): default obs / next_obs.
        - state / next_state (global s): default every agent's obs (next_obs) concatenated, [*B, N*Do].
        - episode [*B] (which episode each row belongs to; the model-free noise floor splits by it):
          default from ``done`` ([*B] or [*B, N]; any agent done ends the episode): rows of stream e
          after its k-th done get their own id. Without either, episode is None and the noise floor
          splits rows at random.
        - valid [*B, N]: False where an agent has no sample (e.g. dead); obs_mask / action_mask [N, D]
          for agents with unequal spaces padded to the largest.
        Integer actions outside 0..n_actions-1 and NaN / inf in any given tensor raise a ValueError
        naming the tensor, the value and its index in that tensor (time, agent).
        """
        if obs.dim() < 3:
            raise ValueError(f"SamplePool.from_transitions: obs has shape {tuple(obs.shape)}, expected [*B, N, Do] "
                             "(batch dims, agents, obs features); add a feature dim for scalar observations.")
        batch, n = tuple(obs.shape[:-2]), obs.shape[-2]
        flat = lambda v: v.reshape(-1, *v.shape[len(batch):])  # noqa: E731
        for name, v in (("obs", obs), ("action", action), ("reward", reward), ("next_obs", next_obs), ("state", state),
                        ("next_state", next_state), ("local_state", local_state),
                        ("next_local_state", next_local_state)):
            _check_finite(name, v, len(batch), n)
        if reward.shape == (*batch,):
            reward = reward.unsqueeze(-1).expand(*batch, n)
        elif reward.shape == (*batch, n, 1):
            reward = reward.squeeze(-1)
        if not action.is_floating_point():
            if n_actions is None:
                raise ValueError(f"SamplePool.from_transitions: action is integer {tuple(action.shape)}; pass "
                                 "n_actions= to one-hot encode it (or pass float one-hot actions [*B, N, A]).")
            out = (action < 0) | (action >= n_actions)
            if bool(out.any()):
                idx = out.nonzero()[0].tolist()
                raise ValueError(f"SamplePool.from_transitions: action holds {int(action[tuple(idx)])} at "
                                 f"{_where('action', idx, len(batch), True)}, outside 0..{n_actions - 1} "
                                 f"(n_actions={n_actions}); pass the env's number of actions as n_actions.")
            if action.shape == (*batch, n, 1):
                action = action.squeeze(-1)
            action = torch.nn.functional.one_hot(action.long(), n_actions).to(obs.dtype)
        if episode is None and done is not None:
            d = done.bool()
            if d.shape == (*batch, n):
                d = d.any(-1)
            if d.shape != batch:
                raise ValueError(f"SamplePool.from_transitions: done has shape {tuple(done.shape)}, expected "
                                 f"{batch} or {(*batch, n)} like obs's batch dims.")
            ends = d.long().cumsum(0) - d.long()  # episodes finished before each row, per stream
            stream = torch.arange(int(torch.tensor(batch[1:]).prod()) if len(batch) > 1 else 1,
                                  device=obs.device).reshape(batch[1:])
            episode = ends * stream.numel() + stream
        local_state = obs if local_state is None else local_state
        next_local_state = next_obs if next_local_state is None else next_local_state
        state = obs.flatten(-2) if state is None else state
        next_state = next_obs.flatten(-2) if next_state is None else next_state
        for name, v in (("action", action), ("reward", reward), ("next_obs", next_obs), ("local_state", local_state),
                        ("next_local_state", next_local_state), ("state", state), ("next_state", next_state)):
            if tuple(v.shape[:len(batch)]) != batch:
                raise ValueError(f"SamplePool.from_transitions: {name} has shape {tuple(v.shape)}, expected "
                                 f"leading dims {batch} like obs {tuple(obs.shape)}.")
        pool = cls(state=flat(state), next_state=flat(next_state), local_state=flat(local_state), obs=flat(obs),
                   action=flat(action), reward=flat(reward), next_local_state=flat(next_local_state),
                   next_obs=flat(next_obs), obs_mask=obs_mask, action_mask=action_mask,
                   local_state_mask=obs_mask if local_state is obs else None,
                   valid=None if valid is None else flat(valid).bool(),
                   episode=None if episode is None else episode.reshape(-1).long())
        return pool.validate()

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
            want_dim = 2 if name == "reward" else 3
            if v.dim() != want_dim and v.shape[:2] == (t, n):
                want = f"({t}, {n})" if name == "reward" else f"({t}, {n}, D)"
                fix = ("squeeze the trailing dim (reward[..., 0])" if name == "reward" and v.dim() == 3 and v.shape[-1] == 1
                       else "one row per (step, agent)" if name == "reward" else "add a feature dim")
                raise ValueError(f"SamplePool.{name} has shape {tuple(v.shape)}, expected {want} = (rows, agents"
                                 f"{'' if name == 'reward' else ', features'}); {fix}.")
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
