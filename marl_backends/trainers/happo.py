"""HAPPO (HARL Sec. 3.2.2, Eq. 11; pseudocode App. C.4) on grouped networks.

Per iteration: draw a fresh random permutation of the update units; set M = A (the joint
advantage from the centralised critic, team reward by default); for each unit i_m in turn,
maximise the PPO-Clip objective with advantage M^{i_1:m} A for ``ppo_epochs`` x
``num_minibatches`` steps, stepping *only* that unit's parameter groups (``GroupedAdam.step``),
then carry the compound factor forward: M <- M * pi_new^{i_m}(a|o) / pi_old^{i_m}(a|o).

Parameter sharing and the policy-updating baseline drift (OMDPG Sec. 3.2-3.3). HAPPO's theory
assumes each unit's policy changes only during its own turn. If agents in one group share
parameters but are updated one agent at a time (``happo_shared=naive``), updating agent i_1
also moves every other agent of its group: (1) a later same-group agent i_3 starts its turn
with pi^{i_3} != pi_old^{i_3}, and (2) i_1's ratio, already folded into M, goes stale when
i_3's update moves i_1's policy again. M then no longer equals prod pi_new/pi_old of the
previous agents (OMDPG Eq. 3), and training can oscillate or stall. Offered modes:

- ``group`` (default): the sequential unit is a *group* -- its agents act as one meta-agent
  whose policy is the product of its members' policies. The group's agents are updated
  together (mean of their clipped surrogates) and M is multiplied by the product of their
  ratios. Exact HAPPO over meta-agents: no drift; NPS gives HARL's HAPPO, FPS gives MAPPO.
- ``fpb``: OMDPG's fixed pre-update baseline. Units are agents, each with its full ``ppo_epochs``
  x ``num_minibatches`` steps (App. C.4 per agent), so a group of n_g agents' network takes n_g
  times as many Adam steps per iteration as under ``group`` (FPS on pms_15a_3c: 75 vs 5; the
  ``actor_steps`` metric logs the count). The denominators of all ratios
  are the pre-update policies fixed before optimisation (the rollout's log-probs), and at each
  turn M is recomputed from the *current* policies of all previously updated agents, so it
  is accurate even though shared parameters moved. Biased still: an agent's policy may already
  have moved before its turn (its ratio starts away from 1 and clipping sees that), and later
  updates of its group change it after it has contributed to M ("neglects sequential update
  effects", OMDPG Sec. 3.3). Costs one extra forward pass per turn.
- ``naive``: units are agents and M is accumulated right after each update, exactly HARL's
  code applied to shared parameters; reproduces the drift, for ablations.

With NPS all three modes coincide.
"""
from __future__ import annotations

import torch
from torch import Tensor

from marl_backends.trainers.onpolicy import OnPolicyTrainer, minibatches


def active_mean(x: Tensor, active: Tensor | None) -> Tensor:
    """Mean of ``x`` over the entries where ``active`` (same shape, bool) is set; all without it."""
    if active is None:
        return x.mean()
    m = active.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


class HAPPOTrainer(OnPolicyTrainer):
    algo = "happo"
    record_factors = False  # tests set True to inspect the factor each unit was trained with

    def update_mode(self) -> str:
        return "group" if self.actor.n_groups == self.spec.n_agents else self.cfg.happo_shared

    def units(self) -> list[Tensor]:
        """The sequential update units: agent index sets (groups, or single agents)."""
        layout = self.actor.layout
        if self.update_mode() == "group":
            return [(layout == g).nonzero().flatten() for g in range(self.actor.n_groups)]
        return [torch.tensor([i], device=layout.device) for i in range(self.spec.n_agents)]

    @torch.no_grad()
    def compound_factor(self, batch: dict, agents: Tensor) -> Tensor:
        """prod_{j in agents} pi^j(a^j|o^j) / pi_old^j(a^j|o^j) over the whole batch -> [B, 1]
        (App. C.4's M update; pi = current parameters, pi_old = rollout log-probs)."""
        sub = self.take(batch, None, agents)
        logp, _, _ = self.actor.evaluate(sub["obs"], sub["action"], sub["avail"], agents=agents)
        return (logp - sub["logp"]).sum(-1, keepdim=True).exp()

    def unit_loss(self, ratio: Tensor, madv: Tensor, ent: Tensor, dparams: Tensor, old_dparams: Tensor,
                  active: Tensor | None = None) -> Tensor:
        """HAPPO Eq. 11: -E[min(r M A, clip(r) M A)] - entropy bonus (mean over the unit's agents'
        active entries: dead agents weigh 0, HARL's active masks)."""
        surr = self.clipped_surrogate(ratio, madv, self.cfg.clip)
        return -active_mean(surr + self.cfg.entropy_coef * ent, active)

    def update_actor(self, batch: dict) -> dict[str, float]:
        cfg = self.cfg
        mode, units = self.update_mode(), self.units()
        order = torch.randperm(len(units), generator=self.upd_gen).tolist()
        n = batch["obs"].shape[0]
        factor = torch.ones(n, 1, device=batch["obs"].device)
        self.factor_log: list[tuple[Tensor, Tensor]] = []
        stats, steps, fstats = torch.zeros(5, device=batch["obs"].device), 0, []
        for k, u in enumerate(order):
            agents = units[u]
            groups = self.actor.layout.index_select(0, agents).unique()
            if mode == "fpb" and k > 0:
                factor = self.compound_factor(batch, torch.cat([units[j] for j in order[:k]]))
            if self.record_factors:
                self.factor_log.append((agents.clone(), factor.clone()))
            fstats.append(torch.stack([factor.mean(), factor.max()]))
            for _ in range(cfg.ppo_epochs):
                for idx in minibatches(n, cfg.num_minibatches, self.upd_gen):
                    mb = self.take(batch, idx, agents)
                    logp, ent, dp = self.actor.evaluate(mb["obs"], mb["action"], mb["avail"], agents=agents)
                    log_ratio = logp - mb["logp"]
                    ratio = log_ratio.exp()
                    loss = self.unit_loss(ratio, factor[idx] * mb["adv"], ent, dp, mb["dparams"], mb["active"])
                    self.actor_opt.zero_grad()
                    loss.backward()
                    norms = self.actor_opt.step(groups)
                    with torch.no_grad():
                        stats += torch.stack([loss.detach(), ent.mean(), ((ratio - 1) - log_ratio).mean(),
                                              ((ratio - 1).abs() > cfg.clip).float().mean(), norms[groups].max()])
                    steps += 1
            if mode != "fpb":
                factor = factor * self.compound_factor(batch, agents)
        s = (stats / steps).tolist()
        f = torch.stack(fstats)
        out = dict(zip(("actor_loss", "entropy", "approx_kl", "clip_frac", "grad_norm"), s))
        out.update(factor_mean=float(f[:, 0].mean()), factor_max=float(f[:, 1].max()), actor_steps=steps)
        return out
