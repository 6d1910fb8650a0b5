"""hetero.metrics.snd matches the SND definition (Bettini et al., JMLR 2024) on cases with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hetero import SamplePool
from hetero.metrics import snd, snd_from_distributions

N, T = 3, 60


def _pool(obs_values):
    """A pool whose every observation is one of ``obs_values`` (1-d), cycling over rows and agents."""
    v = torch.tensor(obs_values, dtype=torch.float32)
    obs = v[torch.arange(T * N) % len(v)].view(T, N, 1)
    return SamplePool.from_transitions(obs, torch.zeros(T, N, 2), torch.zeros(T, N), obs)


def test_gaussian_policies_known_answer():
    """pi_i(.|o) = N(a_i * o, s_i^2): W2_ij(o) = sqrt(((a_i - a_j) o)^2 + (s_i - s_j)^2); averaged over o."""
    a, s = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 2.0])
    obs_values = [1.0, 2.0, 4.0]

    def policy(o):  # o [B, N, 1] -> mean, std [B, N, 2]
        return torch.cat([a.view(1, N, 1) * o, s.view(1, N, 1).expand_as(o)], -1)

    want = np.zeros((N, N))
    for i in range(N):
        for j in range(N):
            want[i, j] = np.mean([math.sqrt(((a[i] - a[j]) * o) ** 2 + (s[i] - s[j]) ** 2) for o in obs_values])
    res = snd(policy, _pool(obs_values), discrete=False, samples=30_000, seed=0)
    # the observations are drawn at random, so the average over o is a Monte-Carlo estimate
    np.testing.assert_allclose(res.matrix, want, rtol=0.02, atol=1e-6)
    pairs = [want[i, j] for i in range(N) for j in range(i + 1, N)]
    assert res.value == pytest.approx(np.mean(pairs), rel=0.02)
    assert res.metric == "w2" and res.n_obs == 30_000 and (res.stderr >= 0).all()


def test_exact_on_given_distributions_and_zero_for_identical_agents():
    mu = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]])  # agents 0 and 2 identical
    sd = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])
    res = snd_from_distributions(torch.cat([mu, sd], -1), discrete=False)
    np.testing.assert_allclose(res.matrix, [[0, 5, 0], [5, 0, 5], [0, 5, 0]], atol=1e-5)
    assert res.value == pytest.approx((5 + 0 + 5) / 3)


def test_categorical_policies_total_variation():
    p = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]]).expand(7, N, 3)
    res = snd_from_distributions(p, discrete=True)
    np.testing.assert_allclose(res.matrix, [[0, 0.5, 1], [0.5, 0, 1], [1, 1, 0]], atol=1e-6)
    assert res.value == pytest.approx(2.5 / 3) and res.metric == "tv"


def test_bad_params_name_the_problem():
    with pytest.raises(ValueError, match="mean and std"):
        snd_from_distributions(torch.zeros(4, N, 3), discrete=False)
    with pytest.raises(ValueError, match=r"\[B, N, Dy\]"):
        snd_from_distributions(torch.zeros(4, 1, 2), discrete=False)
