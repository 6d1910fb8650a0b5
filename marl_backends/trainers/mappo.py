"""MAPPO: PPO-Clip for all agents at once, parameters shared within groups.

Every agent's clipped surrogate (HARL Eq. 11 with M = A, i.e. no sequential factor) is computed
in one batched forward over [B, N]. A group's loss is the mean over its agents, so each group's
gradient is what a stand-alone network trained on its agents' data would get: FPS is the usual
parameter-shared MAPPO (mean over all agents), NPS is N independent PPO learners sharing a
centralised critic. Dead agents' entries (active masks, envs reporting ``alive``) weigh 0.
"""
from __future__ import annotations

import torch

from marl_backends.trainers.onpolicy import OnPolicyTrainer, group_mean_weights, minibatches


class MAPPOTrainer(OnPolicyTrainer):
    algo = "mappo"

    def update_actor(self, batch: dict) -> dict[str, float]:
        cfg = self.cfg
        layout = self.actor.layout
        n = batch["obs"].shape[0]
        stats = torch.zeros(5, device=batch["obs"].device)
        steps = 0
        for _ in range(cfg.ppo_epochs):
            for idx in minibatches(n, cfg.num_minibatches, self.upd_gen):
                mb = self.take(batch, idx)
                logp, ent, _ = self.actor.evaluate(mb["obs"], mb["action"], mb["avail"])
                log_ratio = logp - mb["logp"]
                ratio = log_ratio.exp()
                surr = self.clipped_surrogate(ratio, mb["adv"], cfg.clip)
                w = group_mean_weights(surr.shape, layout, mb["active"])  # per-group mean over active entries
                loss = -((surr + cfg.entropy_coef * ent) * w).sum()
                self.actor_opt.zero_grad()
                loss.backward()
                norms = self.actor_opt.step()
                with torch.no_grad():
                    stats += torch.stack([loss.detach(), ent.mean(), ((ratio - 1) - log_ratio).mean(),
                                          ((ratio - 1).abs() > cfg.clip).float().mean(), norms.max()])
                steps += 1
        s = (stats / steps).tolist()
        return {**dict(zip(("actor_loss", "entropy", "approx_kl", "clip_frac", "grad_norm"), s)), "actor_steps": steps}
