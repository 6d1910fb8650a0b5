"""HAMDPO: HAPPO's sequential scheme with a mirror-descent objective instead of clipping.

For each unit i_m in a fresh random order (as HAPPO, App. C.4), take ``ppo_epochs`` x
``num_minibatches`` SGD steps on the MDPO-style objective

    max  E[ r(theta) M^{i_1:m} A ]  -  (1 / t_k) E[ KL(pi_theta^{i_m} || pi_old^{i_m}) ]

where r is the ratio to the pre-update policy, M the compound factor of the previously
updated units and t_k the mirror-descent step size (``mdpo_kl_coef`` = 1 / t_0; with
``mdpo_kl_anneal`` t_k = 1 - k/K, floored at 0.1). The KL to the old policy replaces PPO's
clip as the trust region (HAMDPO summary, 003 in the papers folder). Sharing modes and the
factor update are HAPPO's (see :mod:`marl_backends.trainers.happo`).
"""
from __future__ import annotations

from torch import Tensor

from marl_backends.nets.policy import kl_new_old
from marl_backends.trainers.happo import HAPPOTrainer, active_mean


class HAMDPOTrainer(HAPPOTrainer):
    algo = "hamdpo"

    def kl_coef(self) -> float:
        cfg = self.cfg
        if not cfg.mdpo_kl_anneal:
            return cfg.mdpo_kl_coef
        t_k = max(1.0 - self.frames / cfg.frames, 0.1)
        return cfg.mdpo_kl_coef / t_k

    def unit_loss(self, ratio: Tensor, madv: Tensor, ent: Tensor, dparams: Tensor, old_dparams: Tensor,
                  active: Tensor | None = None) -> Tensor:
        kl = kl_new_old(dparams, old_dparams, self.spec.discrete)
        return -active_mean(ratio * madv - self.kl_coef() * kl + self.cfg.entropy_coef * ent, active)
