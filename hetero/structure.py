"""Is there structure beyond noise? Per-pair tests behind every grouping (DESIGN.md, "the floor").

Model-free (Eq. 5) distances are never exactly 0: the encoder f(z|i,x) spreads even exchangeable
agents apart, so the scale of d_ij says nothing on its own. The test asks instead whether agent
i's *identity* carries information about its transitions that holds on data the CVAE never saw.

Cross-fitted swap test. The pool is split into two halves by episode; a CVAE is fitted on each.
On the other half's held-out transitions of agents i and j, let L_k(x, y) be the decoder's
reconstruction error of y when the encoder is given id k (z = its mean, f(z|k, x)). The statistic

    S_ij = mean_{(x,y) of i} [L_j - L_i]  +  mean_{(x,y) of j} [L_i - L_j]

is the excess error of swapping the two ids. If i and j have the same core function and the same
visitation, their held-out (x, y) have one distribution, so E[S_ij | fitted CVAE] = 0 exactly,
whatever the CVAE learned: the spread the encoder gives exchangeable ids cancels. Different agents
give S_ij > 0 (each id predicts its own agent better). Both halves serve once as held-out data;
the variance of S is estimated over blocks (episodes, or time chunks of them when there are few),
so correlated rows within an episode are accounted for, and S / se is referred to a t
distribution. Holm's step-down over the N(N-1)/2 pairs controls the family-wise error, so
"more than one group" is reported with probability <= alpha when all agents are alike.

The test needs no agreement between the halves' clusterings, and works for N = 2, all-distinct
agents, singletons and unequal groups alike. Model-based distances of identical functions are
exactly 0; there a pair differs when d_ij exceeds z_(alpha) standard errors (Holm-adjusted).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

MIN_BLOCKS = 16  # held-out blocks per half below which episodes are cut into time chunks


@dataclass(frozen=True)
class StructureTest:
    """Per-pair decisions and the whole-matrix p-value.

    statistic [N, N] (S_ij, or d_ij / se_ij model-based), pvalues [N, N] (one-sided, raw),
    adjusted [N, N] (Holm), differ [N, N] bool (adjusted < alpha), p_value (smallest adjusted
    p: the test of "all agents alike"), alpha, method ("swap" | "model-based"), dof, blocks
    [B, N, N] (the swap statistic's per-block contributions, for tests between groups).
    """

    statistic: np.ndarray
    pvalues: np.ndarray
    adjusted: np.ndarray
    differ: np.ndarray
    p_value: float
    alpha: float
    method: str
    dof: int | None = None
    blocks: np.ndarray | None = None

    @property
    def structure(self) -> bool:
        """True when at least one pair of agents differs beyond noise."""
        return bool(self.differ.any())

    def between(self, a, b) -> float:
        """p-value of "groups a and b (agent index lists) are alike".

        Swap test: the statistic summed over every cross pair, with its block standard error (one
        test that pools the evidence of all cross pairs). Model-based: the smallest cross-pair
        p-value, Bonferroni-corrected over the cross pairs.
        """
        a, b = np.asarray(a), np.asarray(b)
        if self.blocks is None:
            return float(min(1.0, self.pvalues[np.ix_(a, b)].min() * a.size * b.size))
        from scipy.stats import t as student_t

        v = self.blocks[:, a][:, :, b].sum((1, 2))
        n = v.size
        s = v.sum()
        se = np.sqrt(((v - s / n) ** 2).sum() * n / max(n - 1, 1))
        return float(student_t.sf(s / se, self.dof)) if se > 0 else (0.0 if s > 0 else 1.0)

    def to_dict(self) -> dict:
        return {"method": self.method, "alpha": self.alpha, "p_value": self.p_value, "dof": self.dof,
                "structure": self.structure, "statistic": self.statistic.tolist(),
                "pvalues": self.pvalues.tolist(), "adjusted": self.adjusted.tolist(),
                "differ": self.differ.tolist()}


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a symmetric [N, N] p-value matrix over its upper triangle."""
    n = p.shape[0]
    iu = np.triu_indices(n, 1)
    flat = p[iu]
    m = flat.size
    order = np.argsort(flat, kind="stable")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate(flat[order] * (m - np.arange(m))))
    adj = np.empty(m)
    adj[order] = adj_sorted
    out = np.zeros_like(p, dtype=np.float64)
    out[iu] = adj
    out = out + out.T
    np.fill_diagonal(out, 1.0)
    return out


def _decide(stat: np.ndarray, p: np.ndarray, alpha: float, method: str, dof: int | None,
            blocks: np.ndarray | None = None) -> StructureTest:
    p = np.asarray(p, dtype=np.float64)
    np.fill_diagonal(p, 1.0)
    adj = holm(p)
    differ = adj < alpha
    np.fill_diagonal(differ, False)
    return StructureTest(statistic=np.asarray(stat, dtype=np.float64), pvalues=p, adjusted=adj, differ=differ,
                         p_value=float(adj[np.triu_indices(p.shape[0], 1)].min()), alpha=alpha, method=method,
                         dof=dof, blocks=blocks)


# ---- the split --------------------------------------------------------------------------------
def split_halves(episode: Tensor | None, valid: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(half [T] in {0, 1}, block [T] long) for a pool with rows [T] and validity [T, N].

    Halves are drawn over the episode ids *present* (sparse ids are fine), half of them each. A
    pool without episode ids is cut into its first and second half of rows (time-contiguous, so
    the halves share only the rows next to the cut) with a warning. Every agent must have valid
    rows in both halves, else a ValueError says how to fix the pool. Blocks (for the variance of
    the swap statistic) are episodes, cut into time chunks when a half has fewer than MIN_BLOCKS.
    """
    t = valid.shape[0]
    dev = valid.device
    if episode is None:
        warnings.warn("the sample pool has no episode ids: its halves are the first and second half of the rows; "
                      "pass SamplePool(episode=...) (the env stream or episode of each row) so the halves are "
                      "independent.", stacklevel=3)
        episode = torch.zeros(t, dtype=torch.long, device=dev)
        ids, dense = torch.zeros(1, dtype=torch.long, device=dev), episode
        half = (torch.arange(t, device=dev) >= t // 2).long()
    else:
        ids, dense = torch.unique(episode, return_inverse=True)
        if ids.numel() < 2:
            raise ValueError(f"the sample pool holds {ids.numel()} episode id(s); the structure test fits one CVAE on "
                             "each half of the episodes, so at least 2 are needed (collect with more envs or steps).")
        half_of = (torch.randperm(ids.numel(), generator=gen) % 2).to(dev)
        half = half_of[dense]
    for h in (0, 1):
        have = (valid & (half == h).unsqueeze(1)).any(0)
        if not have.all():
            missing = (~have).nonzero().flatten().tolist()
            raise ValueError(f"agent(s) {missing} have no valid rows in one half of the episodes; the structure test "
                             "needs every agent in both halves: collect more episodes (more envs or steps) or drop "
                             "agents that are almost never alive.")
    # rank of each row inside its episode (rows are in time order within an episode)
    order = torch.argsort(dense, stable=True)
    counts = torch.bincount(dense)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(dense)
    rank[order] = torch.arange(t, device=dev) - starts[dense[order]]
    n_ep = ids.numel()
    if n_ep >= 2 * MIN_BLOCKS:
        block = dense
    else:  # few episodes: cut each into time chunks so that every half has about MIN_BLOCKS blocks
        chunks = -(-MIN_BLOCKS // max(1, n_ep // 2)) * (2 if n_ep == 1 else 1)
        length = -(-int(counts.max()) // chunks)
        block = dense * (int(rank.max()) // length + 1) + rank // length
    block = torch.unique(block * 2 + half, return_inverse=True)[1]
    return half, block


# ---- the swap test ----------------------------------------------------------------------------
def _swap_losses(model, x: Tensor, y: Tensor, mask: Tensor, n: int, chunk: int = 65536) -> Tensor:
    """L[k, j]: reconstruction error of sample k with the encoder given id j (z = its mean)."""
    out = []
    rows = max(1, chunk // n)
    with torch.no_grad():
        for s in range(0, x.shape[0], rows):
            xs, ys, ms = x[s:s + rows], y[s:s + rows], mask[s:s + rows]
            b = xs.shape[0]
            xr = xs.repeat_interleave(n, 0)
            ids = torch.arange(n, device=x.device).repeat(b)
            mu, _ = model.encode(xr, agent=ids)
            pred = model.decoder(torch.cat([mu, model.norm_x(xr)], -1)).view(b, n, -1)
            err = (pred - model.norm_y(ys).unsqueeze(1)).pow(2) * ms.unsqueeze(1)
            out.append(0.5 * err.sum(-1))
    return torch.cat(out, 0)


def swap_contributions(model, x: Tensor, y: Tensor, mask: Tensor, agent: Tensor, block: Tensor,
                       n: int, n_blocks: int, weights: Tensor | None = None) -> Tensor:
    """Per-block contributions V [n_blocks, N, N] with sum_b V[b] = S (held-out rows of one half).

    ``weights`` [K, N] (hetero.overlap.pair_weights): row k's weight in its pair with each agent;
    each pair's means become self-normalised weighted means (the behaviour-invariant test)."""
    loss = _swap_losses(model, x, y, mask, n).double()  # [K, N]
    g = loss - loss.gather(1, agent.unsqueeze(1))  # excess error of every id over the own one
    w = torch.ones_like(g) if weights is None else weights.double()
    total = torch.zeros(n, n, dtype=torch.float64, device=x.device).index_add_(0, agent, w)  # [i, j] sum of i's weights
    u = torch.zeros(n_blocks * n, n, dtype=torch.float64, device=x.device)
    u.index_add_(0, block * n + agent, w * g / total[agent].clamp_min(1e-300))
    u = u.view(n_blocks, n, n)
    return u + u.transpose(1, 2)


def swap_test(contributions: list[Tensor], alpha: float) -> StructureTest:
    """Combine the halves' block contributions into S, its block standard error and Holm decisions."""
    from scipy.stats import t as student_t

    v = torch.stack(contributions).sum(0)  # [B, N, N]: every block is held out by exactly one half
    b = v.shape[0]
    s = v.sum(0)
    var = (v - s / b).pow(2).sum(0) * b / max(b - 1, 1)
    se = var.sqrt()
    z = torch.where(se > 0, s / se.clamp_min(1e-300), torch.zeros_like(s))
    dof = max(b - len(contributions), 1)
    p = student_t.sf(z.cpu().numpy(), dof)
    return _decide(s.cpu().numpy(), p, alpha, "swap", dof, v.cpu().numpy())


def model_based_test(d: np.ndarray, se: np.ndarray, alpha: float) -> StructureTest:
    """Per-pair test of a model-based matrix: identical functions give exactly 0.

    A pair differs when d_ij exceeds both a numerical tolerance (1e-6 of the scale) and, by the
    Monte-Carlo standard error, zero at level alpha (one-sided normal, Holm-adjusted).
    """
    from scipy.stats import norm

    d = np.asarray(d, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    off = ~np.eye(d.shape[0], dtype=bool)
    tol = 1e-6 * (1.0 + (float(d[off].max()) if off.any() else 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, d / np.where(se > 0, se, 1.0), np.where(d > tol, np.inf, 0.0))
    p = np.where(d > tol, norm.sf(z), 1.0)
    return _decide(z, p, alpha, "model-based", None)
