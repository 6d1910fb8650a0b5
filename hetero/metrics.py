"""System Neural Diversity (SND; Bettini, Shankar & Prorok, JMLR 2024) beside our CVAE distances.

SND measures behavioural diversity directly on the policies, without a learned representation:

    SND = 2 / (N (N-1)) * sum_{i<j} d_ij,    d_ij = 1/|O| * sum_{o in O} W(pi_i(.|o), pi_j(.|o)),

the mean over agent pairs of the Wasserstein distance between the two agents' action
distributions evaluated on the *same* observations o, averaged over a set O of observations
(here: observations the agents met, drawn from a SamplePool, each fed to every agent's policy,
exactly as Policy-Het does). For diagonal Gaussian policies W is the closed-form W2
sqrt(|mu_i - mu_j|^2 + |sigma_i - sigma_j|^2) (the same formula as our latent distances, applied
in action space). For categorical policies we use the Wasserstein distance under the discrete
ground metric 1[a != b], which is the total variation 0.5 * |p_i - p_j|_1 (in [0, 1]); SND's own
experiments use continuous actions.

Policy-Het (paper Eq. 16) differs in what it compares: CVAE encodings of pi_i(.|o) (latent
distributions), not the action distributions themselves, so the two scales are not comparable;
their orderings (which agents / which sharing paradigm is more diverse) are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hetero.samples import SamplePool
from hetero.wasserstein import mean_pairwise_w2


@dataclass
class SNDResult:
    """value: SND (mean of the off-diagonal of ``matrix``); matrix [N, N]: d_ij averaged over the
    observations; stderr [N, N]: its Monte-Carlo standard error; n_obs: |O|; metric: "w2" | "tv"."""

    value: float
    matrix: np.ndarray
    stderr: np.ndarray
    n_obs: int
    metric: str

    def to_dict(self) -> dict:
        return {"snd": self.value, "matrix": self.matrix.tolist(), "stderr": self.stderr.tolist(),
                "n_obs": self.n_obs, "metric": self.metric}


def _mean_pairwise_tv(p: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """p [B, N, A] probabilities -> mean and standard error over B of 0.5 |p_i - p_j|_1, [N, N]."""
    b, n = p.shape[:2]
    total = torch.zeros(n, n, dtype=torch.float64, device=p.device)
    total_sq = torch.zeros_like(total)
    for s in range(0, b, chunk):
        d = 0.5 * torch.cdist(p[s:s + chunk].double(), p[s:s + chunk].double(), p=1)
        total += d.sum(0)
        total_sq += d.pow(2).sum(0)
    mean = total / b
    se = ((total_sq / b - mean.pow(2)).clamp_min(0.0) * (b / max(b - 1, 1)) / b).sqrt()
    return mean.float(), se.float()


def snd_from_distributions(params: Tensor, discrete: bool) -> SNDResult:
    """SND from every agent's action distribution on the same observations.

    params: [B, N, Dy]: row b holds pi_i(.|o_b) for every agent i: probabilities [B, N, A] when
    ``discrete``, else mean and std concatenated [B, N, 2A] (the ``policy_distributions`` format
    of :class:`hetero.SharingTrainer`)."""
    if params.dim() != 3 or params.shape[0] == 0 or params.shape[1] < 2:
        raise ValueError(f"snd: params has shape {tuple(params.shape)}; expected [B, N, Dy] with B >= 1 observations "
                         "and N >= 2 agents.")
    if not torch.isfinite(params).all():
        raise ValueError("snd: the policy returned NaN/inf action-distribution parameters; check the policy.")
    n = params.shape[1]
    if discrete:
        d, se = _mean_pairwise_tv(params)
    else:
        if params.shape[-1] % 2:
            raise ValueError(f"snd: continuous params have {params.shape[-1]} features; expected mean and std "
                             "concatenated (2 x action dim). Pass discrete=True for action probabilities.")
        mu, sigma = params.chunk(2, dim=-1)
        d, se = mean_pairwise_w2(mu, sigma)
    d.fill_diagonal_(0.0)
    se.fill_diagonal_(0.0)
    value = float(d.double().sum() / (n * (n - 1)))
    return SNDResult(value, d.cpu().numpy(), se.cpu().numpy(), params.shape[0], "tv" if discrete else "w2")


def snd(policy_fn, pool: SamplePool, discrete: bool, samples: int = 2000, seed: int = 0) -> SNDResult:  # noqa: ANN001
    """SND of the policies ``policy_fn`` (obs [B, N, Do] -> params [B, N, Dy], agent i fed obs[:, i])
    on ``samples`` observations drawn from the pool (a random valid (row, agent) each), every agent
    evaluated on each. Returns the scalar and the pairwise matrix."""
    pool.validate()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    valid = pool.valid.nonzero()  # [K, 2] (row, agent) pairs with a real observation
    pick = valid[torch.randint(len(valid), (samples,), generator=gen)]
    o = pool.obs[pick[:, 0], pick[:, 1]]  # [B, Do]
    with torch.no_grad():
        params = policy_fn(o.unsqueeze(1).expand(-1, pool.n_agents, -1))
    return snd_from_distributions(params.float(), discrete)
