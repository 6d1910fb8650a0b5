"""W2 closed form vs POT, and the metric properties of the heterogeneity distance (App. E)."""
import numpy as np
import ot
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hetero.wasserstein import mean_pairwise_w2, w2_diag_gaussians, w2_naive


def _gaussians(seed: int, b: int, n: int, l: int):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, n, l, generator=g, dtype=torch.float64)
    sigma = torch.rand(b, n, l, generator=g, dtype=torch.float64) * 2 + 0.05
    return mu, sigma


def test_matches_pot_bures_wasserstein():
    mu, sigma = _gaussians(0, 1, 6, 5)
    d = w2_diag_gaussians(mu, sigma)[0].numpy()
    for i in range(6):
        for j in range(6):
            ref = ot.gaussian.bures_wasserstein_distance(
                mu[0, i].numpy(), mu[0, j].numpy(),
                np.diag(sigma[0, i].numpy() ** 2), np.diag(sigma[0, j].numpy() ** 2))
            assert abs(float(ref) - d[i, j]) < 1e-5


def test_matches_naive_broadcast_and_exact_zero_diagonal():
    mu, sigma = _gaussians(1, 50, 40, 10)
    fast = w2_diag_gaussians(mu.float(), sigma.float())
    torch.testing.assert_close(fast.double(), w2_naive(mu, sigma), atol=1e-5, rtol=1e-5)
    assert torch.all(torch.diagonal(fast, dim1=-2, dim2=-1) == 0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12), l=st.integers(1, 6), b=st.integers(1, 20))
def test_metric_properties(seed, n, l, b):
    mu, sigma = _gaussians(seed, b, n, l)
    d, se = mean_pairwise_w2(mu.float(), sigma.float())
    d = d.double()
    assert torch.allclose(d, d.T, atol=1e-6)
    assert torch.all(torch.diagonal(d) == 0)
    assert torch.all(d >= 0) and torch.all(se >= 0)
    # triangle inequality d_ij <= d_ik + d_kj for every triple
    assert torch.all(d[:, None, :] <= d[:, :, None] + d[None, :, :].transpose(1, 2) + 1e-5)


def test_identical_agents_have_distance_zero():
    mu, sigma = _gaussians(2, 30, 4, 3)
    mu[:, 1] = mu[:, 0]
    sigma[:, 1] = sigma[:, 0]
    d, _ = mean_pairwise_w2(mu.float(), sigma.float())
    assert d[0, 1] == 0 and d[2, 3] > 0


def test_chunking_does_not_change_the_mean():
    mu, sigma = _gaussians(3, 101, 5, 4)
    a, sa = mean_pairwise_w2(mu.float(), sigma.float(), chunk=7)
    b, sb = mean_pairwise_w2(mu.float(), sigma.float(), chunk=1000)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(sa, sb)
