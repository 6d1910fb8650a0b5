"""Closed-form 2-Wasserstein distance between diagonal Gaussians, for all agent pairs at once.

For N(mu_i, diag(sigma_i^2)) and N(mu_j, diag(sigma_j^2)) the Bures-Wasserstein distance is
W2 = sqrt(|mu_i - mu_j|^2 + |sigma_i - sigma_j|^2) (the covariances commute). Concatenating
[mu, sigma] turns it into a Euclidean distance, so all pairs are one batched ``torch.cdist`` over
[B, N, 2L] -- never a [B, N, N, L] tensor. ``donot_use_mm_for_euclid_dist`` avoids the
matmul path, which leaves ~1e-3 on the diagonal. Averaging over the B conditions x is the
Monte-Carlo estimate of the heterogeneity distance (paper Eq. 3).
"""
from __future__ import annotations

import torch
from torch import Tensor


def w2_diag_gaussians(mu: Tensor, sigma: Tensor) -> Tensor:
    """All-pairs W2: mu, sigma [..., N, L] -> [..., N, N]."""
    if mu.shape != sigma.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)} must have the same shape.")
    z = torch.cat([mu, sigma], dim=-1)
    return torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist")


def w2_naive(mu: Tensor, sigma: Tensor) -> Tensor:
    """Reference broadcast implementation ([..., N, N, L] intermediate); for tests and benchmarks."""
    dmu = mu.unsqueeze(-2) - mu.unsqueeze(-3)
    dsig = sigma.unsqueeze(-2) - sigma.unsqueeze(-3)
    return (dmu.pow(2).sum(-1) + dsig.pow(2).sum(-1)).sqrt()


def mean_pairwise_w2(mu: Tensor, sigma: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Average the all-pairs W2 over the leading batch dim B, in chunks.

    mu, sigma: [B, N, L]. Returns (mean [N, N], standard error of the mean [N, N]).
    """
    b = mu.shape[0]
    if b == 0:
        raise ValueError("mean_pairwise_w2 needs at least one condition x (B = 0).")
    total = torch.zeros(mu.shape[1], mu.shape[1], dtype=torch.float64, device=mu.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, b, chunk):
        d = w2_diag_gaussians(mu[start:start + chunk], sigma[start:start + chunk]).double()
        total += d.sum(0)
        total_sq += d.pow(2).sum(0)
    mean = total / b
    var = (total_sq / b - mean.pow(2)).clamp_min(0.0) * (b / max(b - 1, 1))
    se = (var / b).sqrt()
    mean.fill_diagonal_(0.0)
    se.fill_diagonal_(0.0)
    return mean.float(), se.float()
