"""The on-policy core shared by MAPPO, HAPPO and HAMDPO, and its SharingTrainer implementation.

One iteration: collect ``rollout_steps`` vectorised steps continuing the running envs (reset
once, at construction, with a seed derived from the run seed; episodes run on across
iterations, ``rollout.EnvCursor``), compute GAE with value normalisation on a centralised
critic V(s), update the actor (algorithm-specific :meth:`update_actor`) and then the critic.
The checkpoint holds the envs mid-episode (``marl_backends.envs.state``), so a resumed run
continues with the same numbers. The actor is a :class:`GroupedPolicy` whose layout is
the parameter-sharing layout; the trainer implements :class:`hetero.SharingTrainer` (layout,
sample_pool, policy_distributions, apply_plan) so HetDPS can drive it.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from hetero.plan import RegroupPlan
from hetero.samples import SamplePool
from marl_backends.envs.state import env_state, global_rng_state, load_env_state, set_global_rng_state
from marl_backends.nets import GroupedAdam, GroupedPolicy, StateCritic, apply_plan, init_generator, parse_sharing
from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.rollout import EnvCursor, Rollout, collect, gae
from marl_backends.trainers.valuenorm import ValueNorm

EnvFactory = Callable[[int, int], object]  # (num_envs, seed) -> VecMultiAgentEnv


def registry_factory(cfg: TrainConfig) -> EnvFactory:
    """Envs from ``marl_backends.envs.registry.make_env`` for ``cfg.env``."""
    def make(num_envs: int, seed: int):
        from marl_backends.envs.registry import make_env, parse_env_args
        return make_env(cfg.env, num_envs=num_envs, device=cfg.device, seed=seed, continuous=cfg.continuous,
                        **parse_env_args(cfg.env_args))
    return make


def minibatches(n: int, k: int, gen: torch.Generator) -> list[Tensor]:
    """``k`` random disjoint index sets covering ``range(n)``."""
    return list(torch.randperm(n, generator=gen).chunk(k))


def group_mean_weights(shape: torch.Size, layout: Tensor, active: Tensor | None = None) -> Tensor:
    """Weights [B, k] that turn a sum over samples and agents into each group's mean over its
    agents' *active* entries (HARL's active masks: dead agents' entries weigh 0); ``layout`` [k]
    is the group of each column. Without masks every entry of group g weighs 1 / (B |g|)."""
    m = torch.ones(shape, device=layout.device) if active is None else active.to(torch.float32)
    tot = torch.zeros(int(layout.max()) + 1, device=m.device).index_add_(0, layout, m.sum(0))
    return m / tot.clamp(min=1.0)[layout]


class OnPolicyTrainer:
    """Shared rollout / GAE / critic machinery. Subclasses implement :meth:`update_actor`."""

    algo = "base"

    def __init__(self, cfg: TrainConfig, env_factory: EnvFactory | None = None) -> None:
        self.cfg = cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.env_factory = env_factory or registry_factory(cfg)
        self.env = self.env_factory(cfg.num_envs, cfg.seed)
        self._eval_env = None
        spec = self.spec = self.env.spec
        self.device = torch.device(cfg.device)
        self.sharing = parse_sharing(cfg.sharing_resolved, spec.n_agents, spec.groups)
        gen = init_generator(cfg.seed)
        self.actor = GroupedPolicy(
            spec.obs_dim, spec.action_dim, spec.discrete, self.sharing.layout, cfg.hidden, cfg.activation,
            self.sharing.append_id, cfg.feature_norm, cfg.layer_norm, cfg.actor_gain, cfg.std_x_coef, cfg.std_y_coef,
            generator=gen).to(self.device)
        self.n_values = spec.n_agents if cfg.reward_resolved == "agent" else 1
        self.critic = StateCritic(spec.state_dim, self.n_values, cfg.hidden, cfg.activation, cfg.feature_norm,
                                  cfg.layer_norm, generator=gen).to(self.device)
        self.actor_opt = GroupedAdam(self.actor.parameters(), cfg.lr, cfg.adam_eps, max_grad_norm=cfg.max_grad_norm)
        self.critic_opt = GroupedAdam(self.critic.parameters(), cfg.critic_lr, cfg.adam_eps,
                                      max_grad_norm=cfg.max_grad_norm)
        self.value_norm = ValueNorm(self.n_values, enabled=cfg.value_norm).to(self.device)
        self.act_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.upd_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.iteration = 0
        self.frames = 0
        self.plans: list[dict] = []
        self.last_rollout: Rollout | None = None
        self.cursor = EnvCursor.start(self.env, seed=cfg.seed * 100_003)  # envs run on across iterations
        # train_return / train_win_rate: the last num_envs finished episodes (finite once one has
        # finished, also in iterations where none does, e.g. 1000-step episodes, 200-step rollouts)
        self.recent_returns: deque[float] = deque(maxlen=cfg.num_envs)
        self.recent_wins: deque[float] = deque(maxlen=cfg.num_envs)

    # --- SharingTrainer ----------------------------------------------------------------------
    @property
    def layout(self) -> tuple[int, ...]:
        return self.actor.layout_tuple

    def sample_pool(self) -> SamplePool:
        """The transitions of the latest rollout (collects one, with its own RNG, if none ran yet)."""
        if self.last_rollout is None:  # on envs of its own: the training envs' episodes run on untouched
            gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 3)
            rng = global_rng_state()
            env = self.env_factory(self.cfg.num_envs, self.cfg.seed + 3)
            self.last_rollout, _ = collect(env, self.actor, self.critic, self.cfg.rollout_steps, gen,
                                           EnvCursor.start(env, seed=self.cfg.seed * 100_003 + 99_991))
            set_global_rng_state(rng)
        pool = self.last_rollout.sample_pool(self.spec.discrete, self.spec.action_dim)
        pool.obs_mask = self.spec.obs_mask.to(pool.device)
        return pool

    @torch.no_grad()
    def policy_distributions(self, obs: Tensor) -> Tensor:
        """obs [B, N, Do] -> action probabilities [B, N, A] (or mean, std [B, N, 2A])."""
        if obs.dim() != 3 or obs.shape[1:] != (self.spec.n_agents, self.spec.obs_dim):
            raise ValueError(f"policy_distributions expects obs [B, {self.spec.n_agents}, {self.spec.obs_dim}], "
                             f"got {tuple(obs.shape)}.")
        return self.actor.distribution_params(obs.to(self.device, torch.float32))

    def apply_plan(self, plan: RegroupPlan) -> None:
        """Regroup actor parameters, optimiser state and layout together, atomically (Sec. 5)."""
        apply_plan(self.actor, plan, [self.actor_opt])
        self.plans.append({"iteration": self.iteration, **plan.to_dict()})

    # --- one iteration -----------------------------------------------------------------------
    def _collect(self) -> Rollout:
        """The next ``rollout_steps`` steps of the running envs (continues ``self.cursor``)."""
        ro, self.cursor = collect(self.env, self.actor, self.critic, self.cfg.rollout_steps, self.act_gen, self.cursor)
        return ro

    def set_lr(self) -> None:
        """``--lr-schedule linear``: lr * (1 - iteration / iterations) for actor and critic (HARL)."""
        cfg = self.cfg
        frac = 1.0 - self.iteration / cfg.iterations if cfg.lr_schedule == "linear" else 1.0
        self.actor_opt.lr, self.critic_opt.lr = cfg.lr * frac, cfg.critic_lr * frac

    def iterate(self) -> dict[str, float]:
        """Collect one batch and update actor and critic; returns this iteration's metrics."""
        t0 = time.perf_counter()
        self.set_lr()
        ro = self._collect()
        self.last_rollout = ro
        t1 = time.perf_counter()
        batch = self._prepare(ro)
        metrics = self.update_actor(batch)
        metrics.update(self.update_critic(batch))
        t2 = time.perf_counter()
        self.iteration += 1
        self.frames += self.cfg.batch_frames
        self.recent_returns.extend(ro.episode_returns)
        self.recent_wins.extend(ro.episode_wins)
        rets, wins = self.recent_returns, self.recent_wins
        metrics.update({
            "iteration": self.iteration, "frames": self.frames,
            "train_return": float(sum(rets) / len(rets)) if rets else float("nan"),
            "episodes": len(ro.episode_returns), "step_reward": float(ro.reward.mean()),
            "fps": self.cfg.batch_frames / (t2 - t0), "rollout_s": t1 - t0, "update_s": t2 - t1,
        })
        if wins:
            metrics["train_win_rate"] = sum(wins) / len(wins)
        return metrics

    def _prepare(self, ro: Rollout) -> dict[str, Tensor]:
        """GAE on denormalised values; flatten [T, E] into a batch of joint samples.

        Envs that report ``alive`` (SMAX) give active masks [B, N] (HARL): dead agents' entries
        are left out of the policy losses, and with per-agent value heads out of the value loss,
        the value-normalisation statistics and the advantage standardisation."""
        cfg = self.cfg
        reward = ro.reward if self.n_values > 1 else ro.reward.mean(-1, keepdim=True)
        adv, ret = gae(reward, self.value_norm.denormalize(ro.value), self.value_norm.denormalize(ro.next_value),
                       ro.terminated, ro.done, cfg.gamma, cfg.gae_lambda)
        head_mask = ro.alive if ro.alive is not None and self.n_values > 1 else None  # [T, E, N] per-agent heads
        self.value_norm.update(ret, head_mask)
        t, e = ro.obs.shape[:2]

        def flat(x: Tensor) -> Tensor:
            return x.reshape(t * e, *x.shape[2:])

        adv = flat(adv)
        if cfg.normalize_advantages:
            if head_mask is None:
                adv = (adv - adv.mean()) / (adv.std() + 1e-5)
            else:
                act = flat(head_mask)
                mu = adv[act].mean() if bool(act.any()) else adv.mean()
                sd = adv[act].std() if int(act.sum()) > 1 else adv.std()
                adv = (adv - mu) / (sd + 1e-5)
        b = {"obs": flat(ro.obs), "action": flat(ro.action), "logp": flat(ro.logp), "dparams": flat(ro.dparams),
             "state": flat(ro.state), "value": flat(ro.value), "target": flat(self.value_norm.normalize(ret)),
             "adv": adv.expand(-1, self.spec.n_agents) if adv.shape[-1] == 1 else adv}
        b["avail"] = flat(ro.avail) if ro.avail is not None else None
        b["active"] = flat(ro.alive) if ro.alive is not None else None
        b["value_mask"] = flat(head_mask) if head_mask is not None else None
        return b

    @staticmethod
    def take(batch: dict[str, Tensor], idx: Tensor | None = None, agents: Tensor | None = None) -> dict[str, Tensor]:
        """Rows ``idx`` and agent columns ``agents`` of the per-agent fields of a batch."""
        out = {}
        for k in ("obs", "action", "logp", "dparams", "adv", "avail", "active"):
            x = batch[k]
            if x is None:
                out[k] = None
                continue
            if idx is not None:
                x = x[idx]
            if agents is not None:
                x = x.index_select(1, agents)
            out[k] = x
        return out

    def update_actor(self, batch: dict[str, Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def update_critic(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """Clipped Huber value loss on normalised targets (HARL App. K Table 4)."""
        cfg = self.cfg
        n = batch["state"].shape[0]
        total, k = 0.0, 0
        for _ in range(cfg.critic_epochs):
            for idx in minibatches(n, cfg.critic_minibatches, self.upd_gen):
                v = self.critic(batch["state"][idx])
                target, v_old = batch["target"][idx], batch["value"][idx]
                loss = self._value_err(target - v)
                if cfg.clipped_value_loss:
                    v_clip = v_old + (v - v_old).clamp(-cfg.clip, cfg.clip)
                    loss = torch.maximum(loss, self._value_err(target - v_clip))
                mask = batch["value_mask"]
                if mask is None:
                    loss = cfg.value_loss_coef * loss.mean()
                else:  # dead agents' heads out of the value loss (HARL active masks)
                    m = mask[idx].to(loss.dtype)
                    loss = cfg.value_loss_coef * (loss * m).sum() / m.sum().clamp(min=1.0)
                self.critic_opt.zero_grad()
                loss.backward()
                self.critic_opt.step()
                total, k = total + loss.item(), k + 1
        return {"critic_loss": total / k}

    def _value_err(self, err: Tensor) -> Tensor:
        d = self.cfg.huber_delta
        return F.huber_loss(err, torch.zeros_like(err), reduction="none", delta=d) if d > 0 else 0.5 * err**2

    @staticmethod
    def clipped_surrogate(ratio: Tensor, adv: Tensor, clip: float) -> Tensor:
        """PPO-Clip term min(r A, clip(r, 1 +- eps) A) (HARL Eq. 11 with adv = M A)."""
        return torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)

    # --- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, episodes: int | None = None) -> dict[str, float]:
        """Mean return of deterministic-policy episodes (one per parallel eval env), and the win
        rate where the env reports ``info["won"]``. Leaves the global RNGs as it found them (env
        construction and resets may draw from them), so evaluating does not change training."""
        rng = global_rng_state()
        try:
            return self._evaluate(episodes)
        finally:
            set_global_rng_state(rng)

    def _evaluate(self, episodes: int | None) -> dict[str, float]:
        episodes = episodes or self.cfg.eval_episodes
        if self._eval_env is None or self._eval_env.num_envs != episodes:
            self._eval_env = self.env_factory(episodes, self.cfg.seed + 7919)
        env = self._eval_env
        o = env.reset(seed=self.cfg.seed * 100_003 + 50_000 + self.iteration)
        ret = torch.zeros(episodes, device=self.device)
        alive = torch.ones(episodes, dtype=torch.bool, device=self.device)
        won = torch.zeros(episodes, dtype=torch.bool, device=self.device)
        lo, hi = self.spec.action_low, self.spec.action_high
        for _ in range(self.spec.max_steps):
            a, _, _ = self.actor.act(o.obs, o.avail_actions, deterministic=True)
            if not self.spec.discrete and lo is not None:
                a = a.clamp(lo, hi)
            res = env.step(a)
            ret += res.reward.mean(-1) * alive
            if "won" in res.info:
                won |= alive & res.done & res.info["won"].bool()
            alive &= ~res.done
            if not bool(alive.any()):
                break
            o = res.obs
        out = {"eval_return": float(ret.mean()), "eval_return_std": float(ret.std()) if episodes > 1 else 0.0}
        if "won" in res.info:
            out["eval_win_rate"] = float(won.float().mean())
        return out

    # --- checkpoint state --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "algo": self.algo, "iteration": self.iteration, "frames": self.frames, "plans": list(self.plans),
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "value_norm": self.value_norm.state_dict(),
            "act_gen": self.act_gen.get_state(), "upd_gen": self.upd_gen.get_state(),
            "env": env_state(self.env), "cursor": self.cursor.state_dict(),
            "recent_returns": list(self.recent_returns), "recent_wins": list(self.recent_wins),
        }

    def load_state_dict(self, sd: dict) -> None:
        if sd["algo"] != self.algo:
            raise ValueError(f"checkpoint is for algo {sd['algo']!r}, not {self.algo!r}.")
        self.actor.load_state_dict(sd["actor"])
        self.critic.load_state_dict(sd["critic"])
        # parameters may have been reallocated (regrouped): rebind the optimisers
        self.actor_opt.params = list(self.actor.parameters())
        self.actor_opt.load_state_dict(sd["actor_opt"])
        self.critic_opt.load_state_dict(sd["critic_opt"])
        self.value_norm.load_state_dict(sd["value_norm"])
        self.act_gen.set_state(sd["act_gen"])
        self.upd_gen.set_state(sd["upd_gen"])
        self.iteration, self.frames, self.plans = sd["iteration"], sd["frames"], list(sd["plans"])
        # the running envs mid-episode (checkpoints since 0.2.0; older ones, or a different --num-envs, restart episodes)
        if "env" in sd and sd["cursor"]["ep_ret"].shape[0] == self.env.num_envs:
            load_env_state(self.env, sd["env"])
            self.cursor = EnvCursor.from_state_dict(sd["cursor"], self.device)
        self.recent_returns.extend(sd.get("recent_returns", []))
        self.recent_wins.extend(sd.get("recent_wins", []))
