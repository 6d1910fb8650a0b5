"""The structure test (hetero.structure): per-pair swap test, robust split, grouping with it."""
import warnings

import numpy as np
import pytest
import torch

from case_studies.planted import planted_pool
from hetero.grouping import cluster, group
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool
from hetero.structure import holm, model_based_test, split_halves

FAST = QuantifyConfig(train_samples=400, eval_samples=200, test_samples=300)  # default CVAE


def mirror_pool(episodes: int = 24, steps: int = 20, seed: int = 0) -> SamplePool:
    """Two agents: agent 0 has s' = s, agent 1 has s' = -s (the issue's two-agent case)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(episodes * steps, 2, 3, generator=g)
    a = torch.nn.functional.one_hot(torch.randint(4, (episodes * steps, 2), generator=g), 4).float()
    s2 = s * torch.tensor([1.0, -1.0]).view(1, 2, 1) + 0.05 * torch.randn(s.shape, generator=g)
    return SamplePool(state=s.flatten(1), next_state=s2.flatten(1), local_state=s, obs=s, action=a,
                      reward=torch.zeros(episodes * steps, 2), next_local_state=s2, next_obs=s2,
                      episode=torch.arange(episodes).repeat(steps))


def test_two_different_agents_are_two_groups():
    # main: the split-half floor became the only distance, so this was always one group
    res = quantify(mirror_pool(), "meta", FAST)
    assert res.test.structure and res.p_value < 1e-3
    assert group(res).labels == (0, 1)


@pytest.mark.parametrize("n", [3, 4])
def test_all_different_agents_are_all_separated(n):
    pool, truth = planted_pool(tuple(range(n)), effect=2.0, episodes=24, steps=20, seed=n)
    res = quantify(pool, "meta", FAST)
    assert group(res).n_groups == n


def test_singleton_and_unequal_groups():
    pool, truth = planted_pool((0, 0, 0, 0, 1, 1, 2), effect=2.0, episodes=24, steps=20, seed=3)
    res = quantify(pool, "meta", FAST)
    labels = group(res).labels
    same = lambda lab: np.equal.outer(lab, lab)  # noqa: E731
    assert (same(np.array(labels)) == same(np.array(truth))).all()


def test_homogeneous_agents_rarely_split():
    """The calibration study's core at small size: 8 seeds of exchangeable agents, alpha 0.05."""
    groups = []
    for seed in range(8):
        pool, _ = planted_pool((0,) * 5, effect=0.0, episodes=24, steps=20, seed=seed)
        groups.append(group(quantify(pool, "meta", QuantifyConfig(**{**FAST.__dict__, "seed": seed}))).n_groups)
    assert sum(g > 1 for g in groups) <= 1, groups


def test_sparse_episode_ids_and_missing_halves():
    pool = mirror_pool()
    pool.episode = pool.episode * 7 + 1000  # ids not 0..E-1: main crashed half the time
    assert group(quantify(pool, "meta", FAST)).labels == (0, 1)
    valid = torch.ones(pool.rows, 2, dtype=torch.bool)
    valid[pool.episode != 1000, 1] = False  # agent 1 lives in one episode only
    with pytest.raises(ValueError, match=r"agent\(s\) \[1\] have no valid rows in one half"):
        for seed in range(4):  # whichever half that episode falls in, the other lacks agent 1
            split_halves(pool.episode, valid, torch.Generator().manual_seed(seed))
    with pytest.raises(ValueError, match="at least 2 are needed"):
        split_halves(torch.zeros(pool.rows, dtype=torch.long), valid | True, torch.Generator())


def test_pool_without_episode_ids_warns_and_splits_by_time():
    pool = mirror_pool()
    pool.episode = None
    with pytest.warns(UserWarning, match="no episode ids"):
        half, block = split_halves(None, pool.valid, torch.Generator())
    assert (half[: pool.rows // 2] == 0).all() and (half[pool.rows // 2:] == 1).all()
    assert int(block.max()) + 1 >= 16  # time chunks give the variance enough blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert group(quantify(pool, "meta", FAST)).labels == (0, 1)


def test_holm_adjustment():
    p = np.array([[1, 0.01, 0.04], [0.01, 1, 0.03], [0.04, 0.03, 1]])
    adj = holm(p)
    assert adj[0, 1] == pytest.approx(0.03) and adj[1, 2] == pytest.approx(0.06) and adj[0, 2] == pytest.approx(0.06)
    assert (adj == adj.T).all()


def test_model_based_test_keeps_exact_zeros_and_tests_each_pair():
    d = np.array([[0, 0, 2.0, 0.01], [0, 0, 2.0, 0.01], [2.0, 2.0, 0, 2.0], [0.01, 0.01, 2.0, 0]])
    se = np.array([[0, 0, 0.1, 0.02], [0, 0, 0.1, 0.02], [0.1, 0.1, 0, 0.1], [0.02, 0.02, 0.1, 0]])
    t = model_based_test(d, se, alpha=0.05)
    assert not t.differ[0, 1]  # exact zero
    assert t.differ[0, 2] and t.differ[2, 3]
    assert not t.differ[0, 3]  # 0.01 +/- 0.02 is noise for this pair (main: 4 x the largest se of any pair)
    assert cluster(d, test=t).labels == (0, 0, 1, 0)


def test_validation_episodes_are_whole_blocks_of_the_own_half():
    """Early stopping validates each half's CVAE on whole episodes of its own half, never on the
    other half (the swap test's held-out data) nor on its own training episodes."""
    from hetero.quantify import _validation_split

    pool = mirror_pool(episodes=40)
    gen = torch.Generator().manual_seed(0)
    half, block = split_halves(pool.episode, pool.valid, gen)
    parts = [pool.valid & (half == h).unsqueeze(1) for h in (0, 1)]
    train, val = _validation_split(parts, half, block, 0.125, gen)
    for h in (0, 1):
        assert not (train[h] & val[h]).any() and ((train[h] | val[h]) == parts[h]).all()
        val_eps, train_eps = set(pool.episode[val[h].any(1)].tolist()), set(pool.episode[train[h].any(1)].tolist())
        assert not val_eps & train_eps and len(val_eps) == round(0.125 * 20)
        assert (half[val[h].any(1)] == h).all()
    assert _validation_split(parts, half, block, 0.0, gen) == (parts, None)
    res = quantify(mirror_pool(), "meta", QuantifyConfig(**{**FAST.__dict__, "validation": 0.125}))
    assert group(res).labels == (0, 1)  # and with early stopping the two agents still differ
