"""One off-policy trainer for MATD3, OMDPG and the Fig. 6 ablation in between (CleanRL style).

Per update (``update``):
1. K minibatches (K = C_k with independent minibatches, Eqs. 9-10, else 1).
2. True target y_c = R^(n) + gamma^m Q^tgt(s', mu^tgt(o') + eps) (Eq. 9, own or min target);
   loss (Q_c(s, a) - y_c)^2 (Eq. 10).
3. PU (if lambda_PU > 0): OOD joint actions (a_{1:k}, a^g_{k+1:n}) with k ~ U{pu_prefix_min..n-1} per sample
   (a^g = current greedy policy, Eq. 11); y^PU_c = stopgrad(Q_c) - beta * Std_c(Q_c) (PBRL's
   anchor, default) or Q^tgt_c - beta * Std_c(Q_c) (Eq. 12 as printed, ``pu_anchor="target"``);
   loss (Q_c - y^PU_c)^2 (Eq. 13); critic loss = true + lambda_PU * PU (Eq. 14).
4. Every ``policy_delay`` updates: actor loss (OMQ Eq. 15, all N agents' joint actions in one
   critic call, a_{1:i-1} from the current policies or the buffer per ``cfg.omq_prefix``, min
   over critics per ``cfg.omq_min``; or MATD3's joint -Q_1), each agent's gradient scaled by
   1/|group| so a group's gradient is its members' mean (regrouping keeps Adam's scale); then
   polyak targets.

Actors are grouped (CCGA): agents in a group share parameters; ``apply_plan`` regroups them
(SharingTrainer).

Discrete actions (SMAC / SMAX, the paper's discrete benchmark; helpers in ``offpolicy.discrete``):
inside the trainer every action is a vector [.., N, A], the one-hot of the index (the env gets
the index). Buffer, critic input, OMQ joint actions (Eq. 7/15: agent i's zero action stays the
all-zero vector, "no action") and OOD / PU joint actions (Eqs. 11-13) use these vectors as they
are. The actor gives logits; unavailable actions are masked; mu_i(o) is the one-hot argmax of
the masked logits, differentiated by a straight-through softmax (``cfg.discrete_tau``). a^g
(Eq. 11) and the target actions (Eq. 9) are the one-hot argmax of the masked (target) logits at
their observation (masks stored in the buffer); TD3 target smoothing does not apply to one-hots.
Exploration: uniform over available actions in warmup, then epsilon-greedy (eps = ``expl_noise``).
Envs reporting ``info["won"]`` get a win rate of finished episodes (``win_rate``).
"""
from __future__ import annotations

import copy
import time
from collections import deque

import torch
import torch.nn.functional as F
from torch import Tensor

from hetero.plan import RegroupPlan
from hetero.samples import SamplePool
from marl_backends.envs.base import Observation, VecMultiAgentEnv
from marl_backends.envs.state import env_state, global_rng_state, load_env_state, set_global_rng_state
from marl_backends.nets import GroupedAdam, Sharing, check_layout
from marl_backends.nets import apply_plan as regroup
from marl_backends.offpolicy.buffer import ReplayBuffer
from marl_backends.offpolicy.config import OffPolicyConfig
from marl_backends.offpolicy.discrete import explore_index, greedy_onehot, onehot, straight_through, uniform_available
from marl_backends.offpolicy.nets import CriticEnsemble, grouped_actor, polyak
from marl_backends.offpolicy.omq import ood_joint_actions, omq_actor_loss, omq_joint_actions, pu_target


def group_mean_grad(live: Tensor, layout: Tensor) -> Tensor:
    """``live`` [B, N, A] unchanged in value, its gradient to agent i scaled by 1/|group(i)|.

    Agents of a group share parameters, so the group's gradient is the sum of its members';
    scaled, it is their mean (as the on-policy losses are per group), and a split or merge keeps
    the gradient scale the regrouped Adam moments were built on."""
    w = (1.0 / torch.bincount(layout).to(live.dtype))[layout][:, None]  # [N, 1]
    d = live.detach()
    return d + w * (live - d)


class OffPolicyTrainer:
    """MATD3 / OMDPG on a continuous- or discrete-action VecMultiAgentEnv; implements SharingTrainer."""

    def __init__(self, env: VecMultiAgentEnv, cfg: OffPolicyConfig, sharing: Sharing | tuple[int, ...] | None = None):
        s = env.spec
        if sharing is None:
            sharing = Sharing("nps", tuple(range(s.n_agents)))
        elif not isinstance(sharing, Sharing):
            sharing = Sharing("groups:" + ",".join(map(str, sharing)), check_layout(sharing, s.n_agents))
        check_layout(sharing.layout, s.n_agents)
        self.env, self.cfg, self.sharing = env, cfg, sharing
        self.device = torch.device(cfg.device)
        self.n, self.a_dim, self.discrete = s.n_agents, s.action_dim, bool(s.discrete)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        init = torch.Generator().manual_seed(cfg.seed)
        self.actor_in = s.obs_dim + (s.n_agents if sharing.append_id else 0)
        self.actor = grouped_actor(sharing.layout, self.actor_in, cfg.hidden, s.action_dim, init,
                                   self.discrete).to(self.device)
        self.critic = CriticEnsemble(cfg.n_critics, s.state_dim, s.n_agents, s.action_dim, cfg.hidden, init).to(self.device)
        self.actor_tgt, self.critic_tgt = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.actor_opt = GroupedAdam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.buffer = ReplayBuffer(cfg.buffer_size, env.num_envs, s.n_agents, s.obs_dim, s.state_dim, s.local_state_dim,
                                   s.action_dim, cfg.gamma, cfg.n_step, self.device)
        lo = -1.0 if s.action_low is None else s.action_low
        hi = 1.0 if s.action_high is None else s.action_high
        self._lo, self._hi = lo, hi
        self._obs = env.reset(seed=cfg.seed)
        self._ep_ret = torch.zeros(env.num_envs, device=self.device)
        self.episode_returns: deque[float] = deque(maxlen=100)
        self.episode_wins: deque[float] = deque(maxlen=100)  # 1.0 / 0.0 per finished episode (info["won"])
        self.reports_wins = False  # the env reports info["won"]
        self.env_steps, self.n_updates = 0, 0
        self.total_steps = 0  # the run's length in env steps, for lr_schedule=linear (set by train / the CLI)
        self.metrics: dict[str, float] = {}
        self.hetdps = None  # the HetDPS controller of a --sharing hetdps run (set by offpolicy.build.build)

    # -------------------------------------------------------------- SharingTrainer
    @property
    def layout(self) -> tuple[int, ...]:
        return self.actor.layout_tuple

    def policy_distributions(self, obs: Tensor) -> Tensor:
        """obs [B, N, Do] -> [B, N, 2A]: mean mu_i(o) and the exploration std (deterministic actors);
        discrete: [B, N, A] softmax(logits / discrete_tau) (no masks: obs only)."""
        with torch.no_grad():
            mu = self.actor(self._actor_obs(obs.to(self.device)))
        if self.discrete:
            return torch.softmax(mu / self.cfg.discrete_tau, -1)
        return torch.cat([mu, torch.full_like(mu, self.cfg.expl_noise)], -1)

    def sample_pool(self) -> SamplePool:
        """The most recent ``pool_size`` transitions (actions scaled to [-1, 1], or one-hot); rows of
        agents that were dead (``Observation.alive``) are marked invalid; ``episode`` is each row's
        env stream (the structure test splits the pool by it)."""
        b = self.buffer
        if b.size == 0:
            raise ValueError("sample_pool: the replay buffer is empty; train or collect steps first.")
        k = min(b.size, max(1, self.cfg.pool_size // b.num_envs))
        t = (b.ptr - 1 - torch.arange(k, device=self.device)) % b.t_cap
        f = lambda x: x[t].flatten(0, 1)  # noqa: E731  [k, E, ...] -> [k*E, ...]
        mask = self.env.spec.obs_mask.to(self.device)
        return SamplePool(state=f(b.state), next_state=f(b.next_state), local_state=f(b.local_state), obs=f(b.obs),
                          action=f(b.action), reward=f(b.reward), next_local_state=f(b.next_local_state),
                          next_obs=f(b.next_obs), obs_mask=mask, valid=None if b.alive is None else f(b.alive),
                          episode=torch.arange(b.num_envs, device=self.device).repeat(k))  # env stream of each row

    def apply_plan(self, plan: RegroupPlan) -> None:
        """Regroup actors, target actors and Adam state together (RegroupPlan semantics)."""
        if tuple(plan.old_layout) != self.layout:
            raise ValueError(f"plan was made for layout {plan.old_layout} but the actors use {self.layout}; "
                             "make the plan against trainer.layout.")
        regroup(self.actor, plan, [self.actor_opt])
        regroup(self.actor_tgt, plan)
        self.sharing = Sharing(f"plan:{','.join(map(str, plan.layout))}", tuple(plan.layout), self.sharing.append_id)

    # -------------------------------------------------------------- acting
    def _actor_obs(self, obs: Tensor) -> Tensor:
        if not self.sharing.append_id:
            return obs
        eye = torch.eye(self.n, device=obs.device).expand(*obs.shape[:-2], self.n, self.n)
        return torch.cat([obs, eye], -1)

    def _to_env(self, a: Tensor) -> Tensor:
        if self.discrete:
            return a.argmax(-1)
        return self._lo + (a + 1.0) * 0.5 * (self._hi - self._lo)

    def _mask(self, avail: Tensor | None) -> Tensor | None:
        return None if avail is None or not self.discrete else avail.to(self.device).bool()

    def _greedy(self, net, obs: Tensor, avail: Tensor | None) -> Tensor:  # noqa: ANN001
        """mu(o) of ``net`` (actor or target actor) as action vectors; discrete: masked one-hot argmax."""
        out = net(self._actor_obs(obs))
        return greedy_onehot(out, avail) if self.discrete else out

    def act(self, obs: Observation, explore: bool = True) -> Tensor:
        """Action vectors [E, N, A]. Continuous, in [-1, 1]: uniform during warmup, else
        mu(o) + N(0, expl_noise). Discrete, one-hot: uniform over available actions during warmup,
        else epsilon-greedy over them (eps = expl_noise); greedy without ``explore``."""
        e, avail = obs.obs.shape[0], self._mask(obs.avail_actions)
        if explore and self.env_steps < self.cfg.warmup_steps:
            if self.discrete:
                return onehot(uniform_available((e, self.n, self.a_dim), avail, self.gen, self.device), self.a_dim)
            return torch.rand(e, self.n, self.a_dim, generator=self.gen, device=self.device) * 2 - 1
        with torch.no_grad():
            a = self._greedy(self.actor, obs.obs.to(self.device), avail)
        if self.discrete:
            return onehot(explore_index(a, avail, self.cfg.expl_noise, self.gen), self.a_dim) if explore else a
        if explore:
            a = a + self.cfg.expl_noise * torch.randn(a.shape, generator=self.gen, device=self.device)
        return a.clamp(-1.0, 1.0)

    def act_behaviour(self, obs: Tensor, avail: Tensor | None = None,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Behaviour actions for an obs tensor [E, N, Do] (like ``GroupedPolicy.act``'s first outputs):
        (env actions, action vectors). Continuous: mu(o) + N(0, expl_noise), clipped, as (env-scaled,
        [-1, 1]); ``avail`` is ignored. Discrete: epsilon-greedy over the available actions (``avail``
        [E, N, A] bool), as (indices [E, N], one-hot). ``generator`` draws the noise (default: the trainer's)."""
        g = self.gen if generator is None else generator
        with torch.no_grad():
            a = self._greedy(self.actor, obs.to(self.device), self._mask(avail))
            if self.discrete:
                a = onehot(explore_index(a, self._mask(avail), self.cfg.expl_noise, g), self.a_dim)
                return a.argmax(-1), a
            noise = torch.randn(a.shape, generator=g, device=g.device).to(self.device)
            a = (a + self.cfg.expl_noise * noise).clamp(-1.0, 1.0)
        return self._to_env(a), a

    def collect(self, steps: int) -> None:
        """Step the vectorised env ``steps`` times with exploration and store the transitions."""
        for _ in range(steps):
            a = self.act(self._obs)
            res = self.env.step(self._to_env(a))
            self.buffer.add(self._obs, a, res)
            self._ep_ret += res.reward.to(self.device).mean(-1)
            done, won = res.done.to(self.device), res.info.get("won")
            self.reports_wins |= won is not None
            if done.any():
                self.episode_returns.extend(self._ep_ret[done].tolist())
                self._ep_ret[done] = 0.0
                if won is not None:
                    self.episode_wins.extend(won.to(self.device)[done].float().tolist())
            self._obs = res.obs
            self.env_steps += self.env.num_envs

    # -------------------------------------------------------------- learning
    def update(self) -> dict[str, float]:
        """One critic update (+ actor and targets every ``policy_delay``), Eqs. 9-15."""
        cfg, n = self.cfg, self.n
        k = cfg.n_critics if cfg.independent_minibatches else 1
        b = self.buffer.sample(k, cfg.batch_size, self.gen)
        rank = (torch.randperm(n, generator=self.gen, device=self.device) if cfg.shuffle_order
                else torch.arange(n, device=self.device))
        with torch.no_grad():
            a_next = self._greedy(self.actor_tgt, b.boot_obs, b.boot_avail)
            if not self.discrete:  # TD3 target smoothing; a one-hot target stays the argmax
                eps = (torch.randn(a_next.shape, generator=self.gen, device=self.device) * cfg.policy_noise)
                a_next = (a_next + eps.clamp(-cfg.noise_clip, cfg.noise_clip)).clamp(-1.0, 1.0)
            if cfg.target == "own":  # Eq. 9: critic c's own target network on its own minibatch
                q_next = self.critic_tgt(b.boot_state, a_next)
            else:  # clipped double Q over all target critics
                q_next = self.critic_tgt.cross(b.boot_state, a_next).min(0).values
            y = b.ret + b.disc * q_next
        q = self.critic(b.state, b.action)
        loss_true = F.mse_loss(q, y.expand_as(q), reduction="none").mean(1).sum()  # Eq. 10, summed over critics
        loss = loss_true
        m = {"loss_true": loss_true.item() / cfg.n_critics, "q": q.mean().item()}
        if cfg.pu_coef > 0:
            sl = slice(0, 1) if cfg.pu_batch == "shared" else slice(None)
            obs, state, action = b.obs[sl], b.state[sl], b.action[sl]
            with torch.no_grad():
                greedy = self._greedy(self.actor, obs, None if b.avail is None else b.avail[sl])  # a^g, Eq. 11
                # Eq. 12: (a_{1:i}, a^g_{i+1:n}), i ~ U{pu_prefix_min..n-1} (1: at least one sampled action)
                lo, hi = (min(cfg.pu_prefix_min, n - 1), n) if n > 1 else (0, 1)
                prefix = torch.randint(lo, hi, state.shape[:2], generator=self.gen, device=self.device)
                a_ood = ood_joint_actions(action, greedy, rank, prefix)
            q_ood = self.critic(state, a_ood)  # [C, B]: critic c on its OOD minibatch
            with torch.no_grad():  # Eq. 8: std over all critics at the same OOD joint actions
                q_ens = q_ood.unsqueeze(1) if cfg.pu_batch == "shared" else self.critic.cross(state, a_ood)
                anchor = q_ood if cfg.pu_anchor == "online" else self.critic_tgt(state, a_ood)  # PBRL | Eq. 12
                y_pu = pu_target(anchor, q_ens, cfg.beta)
            loss_pu = F.mse_loss(q_ood, y_pu, reduction="none").mean(1).sum()  # Eq. 13
            loss = loss + cfg.pu_coef * loss_pu  # Eq. 14
            m.update(loss_pu=loss_pu.item() / cfg.n_critics, pu_std=q_ens.std(0, unbiased=False).mean().item())
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self.n_updates += 1
        if self.n_updates % cfg.policy_delay == 0:
            m["actor_loss"] = self._update_actor(b.obs[0], b.state[0], b.action[0], rank,
                                                 None if b.avail is None else b.avail[0])
            polyak(self.actor_tgt, self.actor, cfg.polyak)
            polyak(self.critic_tgt, self.critic, cfg.polyak)
        self.metrics = m
        return m

    def _update_actor(self, obs: Tensor, state: Tensor, action: Tensor, rank: Tensor,
                      avail: Tensor | None = None) -> float:
        self.critic.requires_grad_(False)
        live = self.actor(self._actor_obs(obs))  # [B, N, A]
        if self.discrete:  # one-hot argmax forward, softmax gradient
            live = straight_through(live, avail, self.cfg.discrete_tau)
        live = group_mean_grad(live, self.actor.layout)
        if self.cfg.actor_loss == "joint":  # MATD3: -Q_1(s, mu_1(o_1), ..., mu_n(o_n))
            loss = -self.critic(state[None], live[None])[0].mean()
        else:  # OMQ, Eq. 15: all 2N joint actions of all agents in one critic call
            prefix = live.detach() if self.cfg.omq_prefix == "policy" else action  # a_{1:i-1} ~ pi (HATD3) | buffer
            with_i, without_i = omq_joint_actions(prefix, live, live.detach(), rank)  # [B, N(i), N, A]
            bsz, n = live.shape[:2]
            st = state[:, None].expand(bsz, n, state.shape[-1]).reshape(1, bsz * n, -1)
            q_with = self.critic(st, with_i.reshape(1, bsz * n, n, -1)).view(-1, bsz, n)
            with torch.no_grad():  # the zero-action baseline carries no actor gradient
                q_without = self.critic(st, without_i.reshape(1, bsz * n, n, -1)).view(-1, bsz, n)
            loss = omq_actor_loss(q_with, q_without, self.cfg.omq_min)
        self.actor_opt.zero_grad()
        loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)
        return loss.item()

    def set_lr(self) -> None:
        """``lr_schedule=linear``: both learning rates times 1 - env_steps / ``total_steps`` (HARL's
        linear decay; ``total_steps`` is the horizon given to :meth:`train` or set by the CLI)."""
        cfg = self.cfg
        if cfg.lr_schedule != "linear":
            return
        if not self.total_steps:
            raise ValueError("lr_schedule='linear' needs the run's length: set trainer.total_steps (train() and "
                             "the CLI's --frames do) before iterating.")
        frac = max(0.0, 1.0 - self.env_steps / self.total_steps)
        self.actor_opt.lr = cfg.actor_lr * frac
        for g in self.critic_opt.param_groups:
            g["lr"] = cfg.critic_lr * frac

    def iterate(self) -> dict[str, float]:
        """One training iteration: ``train_interval`` env steps, then the burst of updates."""
        cfg = self.cfg
        self.set_lr()
        self.collect(cfg.train_interval)
        if self.env_steps >= cfg.warmup_steps and len(self.buffer) >= cfg.batch_size:
            for _ in range(max(1, round(cfg.train_interval * cfg.updates_per_step))):
                self.update()
        return self.metrics

    def train(self, total_steps: int, progress: bool = True, on_iteration=None) -> list[dict]:
        """Run until ``total_steps`` env transitions; returns one log row per iteration.

        ``on_iteration(trainer, row)`` is called after each iteration (logging, HetDPS).
        """
        from tqdm import tqdm

        rows, t0 = [], time.perf_counter()
        self.total_steps = total_steps
        bar = tqdm(total=total_steps, disable=not progress, desc=self.cfg.algo)
        while self.env_steps < total_steps:
            before = self.env_steps
            m = self.iterate()
            row = {"env_steps": self.env_steps, "updates": self.n_updates, "wall_s": time.perf_counter() - t0,
                   "episode_return": self.mean_return(), **m}
            if self.reports_wins:
                row["win_rate"] = self.win_rate()
            rows.append(row)
            bar.update(self.env_steps - before)
            bar.set_postfix(ret=f"{row['episode_return']:.1f}")
            if on_iteration is not None:
                on_iteration(self, row)
        bar.close()
        return rows

    def mean_return(self, last: int = 20) -> float:
        r = list(self.episode_returns)[-last:]
        return float(sum(r) / len(r)) if r else float("nan")

    def win_rate(self, last: int = 20) -> float:
        """Fraction of the last ``last`` finished episodes won (envs reporting ``info["won"]``)."""
        w = list(self.episode_wins)[-last:]
        return float(sum(w) / len(w)) if w else float("nan")

    @torch.no_grad()
    def evaluate(self, env: VecMultiAgentEnv, episodes: int, seed: int = 12345, details: bool = False):  # noqa: ANN201
        """Mean team return of the deterministic policy over ``episodes`` episodes on ``env``.

        ``details=True`` returns a dict instead: ``eval_return`` and, where the env reports
        ``info["won"]``, ``eval_win_rate``. Leaves the global RNGs as it found them (env resets
        may reseed them), so evaluating does not change the training run."""
        rng = global_rng_state()
        try:
            out = self._evaluate(env, episodes, seed)
        finally:
            set_global_rng_state(rng)
        return out if details else out["eval_return"]

    def _evaluate(self, env: VecMultiAgentEnv, episodes: int, seed: int) -> dict[str, float]:
        obs, rets, wins, acc = env.reset(seed=seed), [], [], torch.zeros(env.num_envs, device=self.device)
        while len(rets) < episodes:
            res = env.step(self._to_env(self.act(obs, explore=False)))
            acc += res.reward.to(self.device).mean(-1)
            d = res.done.to(self.device)
            rets.extend(acc[d].tolist())
            if "won" in res.info:
                wins.extend(res.info["won"].to(self.device)[d].float().tolist())
            acc[d] = 0.0
            obs = res.obs
        out = {"eval_return": float(sum(rets[:episodes]) / episodes)}
        if wins:
            out["eval_win_rate"] = float(sum(wins[:episodes]) / episodes)
        return out

    def state_dict(self) -> dict:
        return {"layout": list(self.layout), "actor": self.actor.state_dict(), "actor_tgt": self.actor_tgt.state_dict(),
                "critic": self.critic.state_dict(), "critic_tgt": self.critic_tgt.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "env_steps": self.env_steps, "n_updates": self.n_updates}

    def resume_state(self) -> dict:
        """What ``state_dict`` leaves out but an exact resume needs: the filled replay rows, the
        running envs (mid-episode) and process RNGs, the current observation, episode bookkeeping
        and the sampling generator. Large (the buffer); saved only in the run's checkpoint.pt."""
        o = self._obs
        return {"buffer": self.buffer.state_dict(), "env": env_state(self.env), "gen": self.gen.get_state(),
                "obs": {"obs": o.obs, "state": o.state, "local_state": o.local_state, "avail_actions": o.avail_actions,
                        "alive": o.alive},
                "ep_ret": self._ep_ret.cpu().clone(), "episode_returns": list(self.episode_returns),
                "episode_wins": list(self.episode_wins), "reports_wins": self.reports_wins,
                "metrics": dict(self.metrics)}

    def load_resume_state(self, st: dict) -> None:
        self.buffer.load_state_dict(st["buffer"])
        load_env_state(self.env, st["env"])
        self.gen.set_state(st["gen"])
        self._obs = Observation(**st["obs"])
        self._ep_ret = st["ep_ret"].to(self.device)
        self.episode_returns = deque(st["episode_returns"], maxlen=self.episode_returns.maxlen)
        self.episode_wins = deque(st.get("episode_wins", []), maxlen=self.episode_wins.maxlen)
        self.reports_wins = bool(st.get("reports_wins", False))
        self.metrics = dict(st["metrics"])

    def load_state_dict(self, sd: dict) -> None:
        # GroupedMLP resizes its groups to the checkpoint's layout on load
        for name in ("actor", "actor_tgt", "critic", "critic_tgt", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(sd[name])
        self.sharing = Sharing(f"groups:{','.join(map(str, self.layout))}", self.layout, self.sharing.append_id)
        self.env_steps, self.n_updates = sd["env_steps"], sd["n_updates"]
