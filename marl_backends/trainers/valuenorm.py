"""Running value-target normalisation (HARL ``ValueNorm``, App. K Table 4: use valuenorm).

Debiased exponential running mean and mean-of-squares per value head (beta = 0.99999 as HARL);
the critic regresses normalised returns and its outputs are denormalised for GAE.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class ValueNorm(nn.Module):
    def __init__(self, n: int, beta: float = 0.99999, eps: float = 1e-5, enabled: bool = True) -> None:
        super().__init__()
        self.beta, self.eps, self.enabled = beta, eps, enabled
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("mean_sq", torch.zeros(n))
        self.register_buffer("debias", torch.zeros(()))

    def _stats(self) -> tuple[Tensor, Tensor]:
        d = self.debias.clamp(min=self.eps)
        mean, mean_sq = self.mean / d, self.mean_sq / d
        return mean, (mean_sq - mean**2).clamp(min=1e-2)

    @torch.no_grad()
    def update(self, x: Tensor, mask: Tensor | None = None) -> None:
        """x [..., n]: update the running statistics with a batch of targets; ``mask`` [..., n]
        bool keeps only active entries (dead agents' heads, HARL's active masks); a head with no
        active entry in the batch contributes its current statistics."""
        if not self.enabled:
            return
        flat = x.reshape(-1, x.shape[-1])
        if mask is None:
            m1, m2 = flat.mean(0), (flat**2).mean(0)
        else:
            w = mask.reshape(-1, x.shape[-1]).to(flat.dtype)
            cnt = w.sum(0)
            cur_mean, cur_var = self._stats()
            m1 = torch.where(cnt > 0, (flat * w).sum(0) / cnt.clamp(min=1), cur_mean)
            m2 = torch.where(cnt > 0, (flat**2 * w).sum(0) / cnt.clamp(min=1), cur_var + cur_mean**2)
        self.mean.mul_(self.beta).add_(m1 * (1 - self.beta))
        self.mean_sq.mul_(self.beta).add_(m2 * (1 - self.beta))
        self.debias.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        mean, var = self._stats()
        return (x - mean) / var.sqrt()

    def denormalize(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        mean, var = self._stats()
        return x * var.sqrt() + mean
