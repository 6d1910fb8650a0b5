"""The CUDA path gives what the CPU path gives (users run Meta-Het and the W2 matrix on GPUs).

Minibatches, reparameterisation noise and initialisation all come from CPU generators, so a CUDA
run follows the CPU run's random draws; only float rounding differs.
"""
import numpy as np
import pytest
import torch

from hetero.cvae import CVAEConfig
from hetero.grouping import cluster
from hetero.quantify import QuantifyConfig, quantify
from hetero.wasserstein import mean_pairwise_w2
from tests.core.synthetic import synthetic_pool

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device; this torch build or machine has none (torch.cuda.is_available() is False)",
)


def test_mean_pairwise_w2_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    mu, sigma = torch.randn(5000, 12, 10, generator=g), torch.rand(5000, 12, 10, generator=g) + 0.05
    d_cpu, se_cpu = mean_pairwise_w2(mu, sigma, chunk=1024)
    d_gpu, se_gpu = mean_pairwise_w2(mu.cuda(), sigma.cuda(), chunk=1024)
    assert d_gpu.device.type == "cuda"
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(se_gpu.cpu(), se_cpu, rtol=1e-3, atol=1e-5)
    assert (d_gpu.diagonal() == 0).all()


@pytest.mark.parametrize("split_half", [True, False])
def test_meta_quantify_on_cuda_matches_cpu(split_half):
    pool = synthetic_pool(groups=(0, 0, 0, 1, 1, 1, 2, 2), rows=400)
    cfg = QuantifyConfig(train_samples=400, eval_samples=300, split_half=split_half,
                         cvae=CVAEConfig(epochs=4, hidden=32, batch_size=128))
    cpu = quantify(pool, "meta", cfg)
    gpu = quantify(pool, "meta", QuantifyConfig(**{**cfg.__dict__, "device": "cuda"}))
    assert gpu.mode == cpu.mode == "model-free"
    scale = float(cpu.matrix.max())
    np.testing.assert_allclose(gpu.matrix, cpu.matrix, atol=0.02 * scale)
    labels = cluster(cpu.matrix, cpu.noise_floor).labels
    assert labels == cluster(gpu.matrix, gpu.noise_floor).labels
    assert labels == (0, 0, 0, 1, 1, 1, 2, 2)
