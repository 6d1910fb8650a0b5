"""quantify() end to end on synthetic pools: groups, noise floor, reproducibility, bad input."""
import numpy as np
import pytest
import torch

from hetero.cvae import CVAEConfig
from hetero.grouping import group, group_stats
from hetero.quantify import QuantifyConfig, quantify
from tests.core.synthetic import synthetic_pool

FAST = QuantifyConfig(train_samples=600, eval_samples=300, cvae=CVAEConfig(epochs=6, hidden=32))


def test_meta_separates_groups_above_noise_floor():
    pool = synthetic_pool()
    res = quantify(pool, "meta", FAST)
    assert res.mode == "model-free" and res.halves is not None and res.test.structure
    labels = group(res).labels
    assert labels == (0, 0, 0, 1, 1, 1)
    assert group_stats(res.matrix, labels)["ratio"] > 3


def test_homogeneous_agents_give_one_group():
    pool = synthetic_pool(heterogeneous=False, seed=1)
    res = quantify(pool, "meta", FAST)
    assert group(res).labels == (0,) * 6


def test_same_seed_same_matrix():
    pool = synthetic_pool(rows=200)
    cfg = QuantifyConfig(train_samples=200, eval_samples=100, split_half=False, cvae=CVAEConfig(epochs=2))
    a, b = quantify(pool, "meta", cfg), quantify(pool, "meta", cfg)
    np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-6)


def test_policy_kind_is_model_based_and_identical_policies_give_zero():
    pool = synthetic_pool(rows=200)
    w = torch.randn(6, 5)

    sign = torch.tensor([1.0, 1, 1, -1, -1, -1])[None, :, None]

    def policy_fn(obs):  # agents 0-2 share a policy, 3-5 another
        return ((obs @ w) * sign).softmax(-1)

    cfg = QuantifyConfig(train_samples=300, eval_samples=100, cvae=CVAEConfig(epochs=3))
    res = quantify(pool, "policy", cfg, policy_fn=policy_fn)
    assert res.mode == "model-based"
    assert res.matrix[0, 1] == 0 and res.matrix[3, 5] == 0 and res.matrix[0, 4] > 0
    assert group(res).labels == (0, 0, 0, 1, 1, 1)


def test_model_free_fallback_for_env_kinds_without_model():
    pool = synthetic_pool(rows=200)
    cfg = QuantifyConfig(train_samples=200, eval_samples=100, split_half=False, cvae=CVAEConfig(epochs=1))
    for kind in ("obs", "response", "effect", "objective"):
        res = quantify(pool, kind, cfg)
        assert res.mode == "model-free" and res.matrix.shape == (6, 6)


# ---- bad input: one test each ----------------------------------------------------------------

def test_nan_in_pool():
    pool = synthetic_pool(rows=50)
    pool.reward[3, 2] = float("nan")
    with pytest.raises(ValueError, match=r"reward contains NaN or inf"):
        quantify(pool, "meta", FAST)


def test_agent_with_no_samples():
    pool = synthetic_pool(rows=50)
    pool.valid[:, 4] = False
    with pytest.raises(ValueError, match=r"agent\(s\) \[4\] have no valid samples"):
        quantify(pool, "meta", FAST)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind 'colour'"):
        quantify(synthetic_pool(rows=50), "colour", FAST)


def test_mismatched_dimensions():
    pool = synthetic_pool(rows=50)
    pool.next_obs = pool.next_obs[:, :5]
    with pytest.raises(ValueError, match=r"next_obs has shape \(50, 5, 6\)"):
        quantify(pool, "meta", FAST)


def test_fewer_than_two_agents():
    pool = synthetic_pool(groups=(0,), rows=50)
    with pytest.raises(ValueError, match="at least 2 are needed"):
        quantify(pool, "meta", FAST)


def test_policy_without_policy_fn():
    with pytest.raises(ValueError, match="policy_fn"):
        quantify(synthetic_pool(rows=50), "policy", FAST)
