"""Vectorised rollouts over envs x agents, GAE with proper time limits, and the sample pool.

One step acts for all envs and agents with one batched policy call. Time limits are handled
properly (HARL App. K Table 4, "use proper time limits"): a truncated episode bootstraps from
V(s') of the true next state (``StepResult.next``), a terminated one from 0, and the GAE
recursion is cut at every episode end. The end of a rollout bootstraps like a truncation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from hetero.samples import SamplePool
from marl_backends.nets.policy import GroupedPolicy, StateCritic


@dataclass
class Rollout:
    """T steps of E envs and N agents. Per-step tensors are [T, E, ...].

    ``value`` / ``next_value`` are the critic's (normalised) outputs [T, E, V]: ``next_value[t]``
    is V(s_{t+1}) of the true next state (s_{t+1} of a truncated episode, not the reset state).
    """

    obs: Tensor
    state: Tensor
    local_state: Tensor
    avail: Tensor | None
    action: Tensor
    logp: Tensor
    dparams: Tensor
    value: Tensor
    next_value: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    next_obs: Tensor
    next_state: Tensor
    next_local_state: Tensor
    alive: Tensor | None = None  # [T, E, N] bool, envs that report it (SMAX)
    env_state: Tensor | None = None  # [T, E, De] env part S^E, envs that expose it (Observation.env_state)
    next_env_state: Tensor | None = None
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_wins: list[float] = field(default_factory=list)  # envs reporting info["won"] (SMAX, SMACv2)

    @property
    def done(self) -> Tensor:
        return self.terminated | self.truncated

    def sample_pool(self, discrete: bool, action_dim: int) -> SamplePool:
        """The rollout as a :class:`SamplePool` (rows = steps x envs; actions one-hot if discrete)."""
        t, e = self.obs.shape[:2]

        def flat(x: Tensor) -> Tensor:
            return x.reshape(t * e, *x.shape[2:])

        act = flat(self.action)
        act = torch.nn.functional.one_hot(act.long(), action_dim).float() if discrete else act.float()
        return SamplePool(
            state=flat(self.state), next_state=flat(self.next_state), local_state=flat(self.local_state),
            obs=flat(self.obs), action=act, reward=flat(self.reward), next_local_state=flat(self.next_local_state),
            next_obs=flat(self.next_obs), valid=flat(self.alive) if self.alive is not None else None,
            episode=torch.arange(e, device=self.obs.device).repeat(t),  # env stream of each row
            env_state=None if self.env_state is None else flat(self.env_state),
            next_env_state=None if self.next_env_state is None else flat(self.next_env_state),
        )


@torch.no_grad()
def collect(env, actor: GroupedPolicy, critic: StateCritic, steps: int, generator: torch.Generator,  # noqa: ANN001
            reset_seed: int) -> Rollout:
    """Run ``steps`` vectorised steps from a fresh ``env.reset(seed=reset_seed)``."""
    spec = env.spec
    o = env.reset(seed=reset_seed)
    e, n = o.obs.shape[:2]
    dev = o.obs.device
    buf: dict[str, list[Tensor]] = {k: [] for k in (
        "obs", "state", "local_state", "avail", "action", "logp", "dparams", "value", "reward", "terminated",
        "truncated", "next_obs", "next_state", "next_local_state", "alive", "env_state", "next_env_state")}
    trunc_value = []  # (t, mask, value) for truncated envs
    ep_ret = torch.zeros(e, device=dev)
    ep_len = torch.zeros(e, dtype=torch.long, device=dev)
    returns, lengths, wins = [], [], []
    lo, hi = spec.action_low, spec.action_high
    res = None
    for t in range(steps):
        act, logp, dp = actor.act(o.obs, o.avail_actions, generator)
        v = critic(o.state)
        env_act = act
        if not spec.discrete and lo is not None:
            env_act = act.clamp(lo, hi)
        res = env.step(env_act)
        for k, x in (("obs", o.obs), ("state", o.state), ("local_state", o.local_state), ("avail", o.avail_actions),
                     ("action", act), ("logp", logp), ("dparams", dp), ("value", v), ("reward", res.reward),
                     ("terminated", res.terminated), ("truncated", res.truncated), ("next_obs", res.next.obs),
                     ("next_state", res.next.state), ("next_local_state", res.next.local_state), ("alive", o.alive),
                     ("env_state", o.env_state), ("next_env_state", res.next.env_state)):
            buf[k].append(x)
        ep_ret += res.reward.mean(-1)
        ep_len += 1
        done = res.done
        if bool(res.truncated.any()) and t < steps - 1:
            trunc_value.append((t, res.truncated.clone(), critic(res.next.state)))
        if bool(done.any()):
            returns += ep_ret[done].tolist()
            lengths += ep_len[done].tolist()
            if "won" in res.info:
                wins += res.info["won"][done].float().tolist()
            ep_ret = ep_ret.masked_fill(done, 0.0)
            ep_len = ep_len.masked_fill(done, 0)
        o = res.obs
    last_value = critic(res.next.state)
    st = {k: (torch.stack(v) if v[0] is not None else None) for k, v in buf.items()}
    next_value = torch.cat([st["value"][1:], last_value[None]], 0)
    for t, mask, tv in trunc_value:
        next_value[t] = torch.where(mask[:, None], tv, next_value[t])
    return Rollout(next_value=next_value, episode_returns=returns, episode_lengths=lengths, episode_wins=wins, **st)


def gae(reward: Tensor, value: Tensor, next_value: Tensor, terminated: Tensor, done: Tensor,
        gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over [T, E, V] (values already denormalised).

    delta_t = r_t + gamma * (1 - term_t) * V(s_{t+1}) - V(s_t);  A_t = delta_t + gamma*lam*(1 - done_t)*A_{t+1}.
    Returns (advantages, returns = advantages + values)."""
    adv = torch.zeros_like(value)
    last = torch.zeros_like(value[0])
    not_term = (~terminated).to(value.dtype)[..., None]
    not_done = (~done).to(value.dtype)[..., None]
    for t in reversed(range(value.shape[0])):
        delta = reward[t] + gamma * not_term[t] * next_value[t] - value[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + value
