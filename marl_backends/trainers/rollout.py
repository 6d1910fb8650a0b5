"""Vectorised rollouts over envs x agents, GAE with proper time limits, and the sample pool.

One step acts for all envs and agents with one batched policy call. The envs keep running
across rollouts: a rollout starts where the previous one stopped (an :class:`EnvCursor` holds
the observation to act on and the running episodes' return and length), so episodes longer
than a rollout (MaMuJoCo: 1000 steps) are seen whole, as HARL's runners do. Time limits are
handled properly (HARL App. K Table 4, "use proper time limits"): a truncated episode
bootstraps from V(s') of the true next state (``StepResult.next``), a terminated one from 0,
and the GAE recursion is cut at every episode end. The end of a rollout bootstraps from
V(s_T) of the state the next rollout continues from, like a truncation.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from hetero.samples import SamplePool
from marl_backends.envs.base import Observation
from marl_backends.nets.policy import GroupedPolicy, StateCritic


@dataclass
class EnvCursor:
    """Where running envs stand between rollouts: ``obs`` to act on next (after any auto-reset)
    and the running episodes' return ``ep_ret`` [E] and length ``ep_len`` [E] so far."""

    obs: Observation
    ep_ret: Tensor
    ep_len: Tensor

    @staticmethod
    def start(env, seed: int) -> "EnvCursor":  # noqa: ANN001
        """Fresh episodes from ``env.reset(seed=seed)``."""
        o = env.reset(seed=seed)
        e = o.obs.shape[0]
        return EnvCursor(o, torch.zeros(e, device=o.obs.device), torch.zeros(e, dtype=torch.long, device=o.obs.device))

    def state_dict(self) -> dict:
        o = self.obs
        # every field, env_state (S^E) included: a resumed run's sample pools need it as the unbroken run's do
        return {"obs": {f.name: getattr(o, f.name) for f in fields(Observation)},
                "ep_ret": self.ep_ret.clone(), "ep_len": self.ep_len.clone()}

    @staticmethod
    def from_state_dict(sd: dict, device: torch.device) -> "EnvCursor":
        obs = Observation(**{k: None if v is None else v.to(device) for k, v in sd["obs"].items()})
        return EnvCursor(obs, sd["ep_ret"].to(device), sd["ep_len"].to(device))


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
            cursor: EnvCursor) -> tuple[Rollout, EnvCursor]:
    """Run ``steps`` vectorised steps continuing from ``cursor``; returns the rollout and the
    cursor the next rollout continues from. Episode returns and lengths are those of episodes
    that finished during this rollout (counted from their start, possibly in an earlier one)."""
    spec = env.spec
    o, ep_ret, ep_len = cursor.obs, cursor.ep_ret.clone(), cursor.ep_len.clone()
    buf: dict[str, list[Tensor]] = {k: [] for k in (
        "obs", "state", "local_state", "avail", "action", "logp", "dparams", "value", "reward", "terminated",
        "truncated", "next_obs", "next_state", "next_local_state", "alive", "env_state", "next_env_state")}
    trunc_value = []  # (t, mask, value) for truncated envs
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
    ro = Rollout(next_value=next_value, episode_returns=returns, episode_lengths=lengths, episode_wins=wins, **st)
    return ro, EnvCursor(o, ep_ret, ep_len)


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
