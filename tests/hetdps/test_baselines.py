"""SePS and MADPS groupers (paper Table 2 baselines) on hand-made inputs."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_pool
from sklearn.metrics import adjusted_rand_score

from hetero.baselines import MADPSGrouper, SePSGrouper
from hetero.cvae import CVAEConfig

LAB = np.repeat([0, 1, 2], 3)


def blocks(within=0.2, between=2.0):
    d = np.where(LAB[:, None] == LAB[None, :], within, between)
    np.fill_diagonal(d, 0.0)
    return d


def test_madps_fusion_from_nps_merges_close_agents():
    m = MADPSGrouper(fusion=1.0, division=3.0)
    assert m.regroup(blocks(), tuple(range(9))) == tuple(LAB)


def test_madps_division_splits_spread_group_and_keeps_good_layout():
    m = MADPSGrouper(fusion=1.0, division=1.5)
    assert len(set(m.regroup(blocks(), (0,) * 9))) == 2  # one division per round: 1 -> 2 groups
    assert m.regroup(blocks(), tuple(LAB)) == tuple(LAB)


def test_madps_thresholds_checked():
    with pytest.raises(ValueError, match="fusion < division"):
        MADPSGrouper(fusion=2.0, division=1.0)


class PoolTrainer:
    def __init__(self, pool):
        self.pool, self.layout = pool, (0,) * pool.n_agents


def test_seps_kmeans_recovers_groups_once():
    pool = synthetic_pool(groups=(0, 0, 0, 1, 1, 1, 2, 2, 2), rows=400)
    pool.episode = None
    s = SePSGrouper(k=3, cvae=CVAEConfig(epochs=8, kl_weight=0.01), samples=400, seed=0)
    labels, info = s.propose(pool, PoolTrainer(pool), 0)
    assert adjusted_rand_score(LAB, labels) == 1.0 and info["matrix"].shape == (9, 9)
    assert s.propose(pool, PoolTrainer(pool), 1)[0] is None  # fixed after its round
    s2 = SePSGrouper(k=3)
    s2.load_state_dict(s.state_dict())
    assert s2.done


def test_seps_needs_k():
    with pytest.raises(ValueError, match="k >= 1"):
        SePSGrouper(k=0)
