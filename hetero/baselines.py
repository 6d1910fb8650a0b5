"""Baseline groupers from the paper's Table 2, on HetDPS's Grouper interface.

- :class:`SePSGrouper` (Christianos et al. 2021, *selective parameter sharing*): an agent
  embedding learned by a VAE whose encoder sees only the agent id, f(z|i), and whose decoder
  predicts the next observation and reward from (z, o, a); k-means with a *fixed* k on the
  embedding means. Not adaptive: it groups once (the first round) and keeps that layout.
  Needs: the number of groups k.
- :class:`MADPSGrouper` (Hu et al. 2024, *measuring policy distance*): the policy distance
  matrix (Policy-Het) with a division threshold (a group whose largest within-group distance
  exceeds it splits in two) and a fusion threshold (two groups whose mean distance falls below
  it merge). Adaptive. Needs: both thresholds, on the scale of the policy distance.

HetDPS needs neither k nor thresholds: Affinity Propagation plus the noise floor.
"""
from __future__ import annotations

import numpy as np
import torch

from hetero.cvae import HETDPS_CVAE, CVAEConfig, fit_cvae
from hetero.grouping import canonical
from hetero.protocols import SharingTrainer
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool


class SePSGrouper:
    """SePS: id-only VAE embedding + k-means with fixed k, applied once."""

    name = "seps"

    def __init__(self, k: int, cvae: CVAEConfig = HETDPS_CVAE, samples: int = 2000,
                 seed: int = 0) -> None:
        if k < 1:
            raise ValueError(f"SePSGrouper needs k >= 1 groups, got {k}.")
        self.k, self.cvae, self.samples, self.seed = k, cvae, samples, seed
        self.done = False

    def embeddings(self, pool: SamplePool) -> np.ndarray:
        """Mean of the id-only encoder f(z|i) for every agent i, [N, latent]."""
        pool = pool.validate()
        n = pool.n_agents
        gen = torch.Generator().manual_seed(self.seed)
        rows = torch.randint(pool.rows, (self.samples * n,), generator=gen)
        agents = torch.arange(n).repeat(self.samples)
        x = torch.cat([pool.obs, pool.action], -1)[rows, agents]
        y = torch.cat([pool.next_obs, pool.reward.unsqueeze(-1)], -1)[rows, agents]
        mask = torch.cat([pool.obs_mask.to(torch.bool), torch.ones(n, 1, dtype=torch.bool)], -1)[agents]
        torch.manual_seed(self.seed)
        model, _ = fit_cvae(x, y, mask, self.cvae, agent=agents, n_agents=n, generator=gen, encoder_x=False)
        with torch.no_grad():
            mu, _ = model.encode(x[:n], agent=torch.arange(n))
        return mu.numpy()

    def propose(self, pool: SamplePool, trainer: SharingTrainer, round_index: int):
        if self.done:
            return None, {"note": "SePS groups once (its first round) and keeps that layout"}
        emb = self.embeddings(pool)
        k = min(self.k, emb.shape[0])
        from sklearn.cluster import KMeans  # lazy: ~1 s to import

        labels = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit(emb).labels_
        self.done = True
        d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
        return canonical(labels), {"k": k, "matrix": d}

    def state_dict(self) -> dict:
        return {"done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.done = bool(state["done"])


class MADPSGrouper:
    """MADPS: policy distance with fusion / division thresholds."""

    name = "madps"

    def __init__(self, fusion: float, division: float, cfg: QuantifyConfig = QuantifyConfig(), seed: int = 0) -> None:
        if not 0 <= fusion < division:
            raise ValueError(f"MADPSGrouper needs 0 <= fusion < division thresholds, got {fusion}, {division}.")
        self.fusion, self.division, self.cfg, self.seed = fusion, division, cfg, seed

    def regroup(self, d: np.ndarray, layout) -> tuple[int, ...]:
        """Division of every group too spread out, then fusion of groups closer than the threshold."""
        from scipy.cluster.hierarchy import cut_tree, linkage  # lazy: ~0.5 s to import
        from scipy.spatial.distance import squareform

        labels = np.asarray(canonical(layout))
        nxt = labels.max() + 1
        for g in np.unique(labels):
            idx = np.flatnonzero(labels == g)
            if len(idx) > 1 and d[np.ix_(idx, idx)].max() > self.division:
                sub = d[np.ix_(idx, idx)]
                z = linkage(squareform(0.5 * (sub + sub.T), checks=False), "average")
                halves = cut_tree(z, n_clusters=2).ravel()  # fcluster(maxclust) returns 1 cluster on tied heights
                labels[idx[halves == 1]] = nxt
                nxt += 1
        while True:
            groups = np.unique(labels)
            best, pair = np.inf, None
            for i, a in enumerate(groups):
                for b in groups[i + 1:]:
                    m = d[np.ix_(labels == a, labels == b)].mean()
                    if m < best:
                        best, pair = m, (a, b)
            if pair is None or best >= self.fusion:
                return canonical(labels)
            labels[labels == pair[1]] = pair[0]

    def propose(self, pool: SamplePool, trainer: SharingTrainer, round_index: int):
        from dataclasses import replace

        res = quantify(pool, "policy", replace(self.cfg, seed=self.seed + round_index),
                       policy_fn=trainer.policy_distributions)
        return self.regroup(res.matrix, trainer.layout), {"matrix": res.matrix, "noise_floor": res.noise_floor}


__all__ = ["SePSGrouper", "MADPSGrouper"]
