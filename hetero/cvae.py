"""Conditional VAE representations of each agent's core function (paper Sec. 4.2, Eqs. 4-5).

Model-based (Eq. 4): the encoder sees the function's output and its input, f(z | y, x); the
decoder reconstructs y from (z, x). Identical functions give identical y, hence identical
encodings and distance 0 (App. E, property 3).

Model-free (Eq. 5): the encoder sees the agent id and the input, f(z | i, x); the decoder
predicts y from (z, x). The id reaches the decoder *only through z*: a decoder that also sees i
predicts y without z, the latent collapses to the prior and the groups blur (DESIGN.md).

Both use a standard-normal prior, a unit-variance Gaussian decoder (masked squared error over
the real y dimensions) and inputs standardised with pool statistics.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class CVAEConfig:
    """CVAE hyperparameters (defaults follow the predecessor work: latent 10, KL weight 0.01).

    Attributes:
        latent: size of z.
        hidden: width of the two hidden layers of encoder and decoder.
        kl_weight: weight of the prior-matching term of the ELBO.
        lr: Adam learning rate.
        batch_size: minibatch size.
        epochs: passes over the training pairs.
    """

    latent: int = 10
    hidden: int = 64
    kl_weight: float = 0.05
    lr: float = 2e-3
    batch_size: int = 256
    epochs: int = 10

    def __post_init__(self) -> None:
        from hetero.errors import check_number

        for name in ("latent", "hidden", "batch_size", "epochs"):  # an untrained CVAE gives a meaningless matrix
            check_number(getattr(self, name), f"CVAEConfig.{name}" + (" (--epochs)" if name == "epochs" else ""), ge=1)
        check_number(self.lr, "CVAEConfig.lr", gt=0)
        check_number(self.kl_weight, "CVAEConfig.kl_weight", ge=0)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ELU(), nn.Linear(h, h), nn.ELU(), nn.Linear(h, o))


class _Standardise(nn.Module):
    def __init__(self, data: Tensor) -> None:
        super().__init__()
        flat = data.reshape(-1, data.shape[-1])
        self.register_buffer("mean", flat.mean(0))
        self.register_buffer("std", flat.std(0).clamp_min(1e-4) if flat.shape[0] > 1 else torch.ones_like(flat[0]))

    def forward(self, v: Tensor) -> Tensor:
        return (v - self.mean) / self.std


class CVAE(nn.Module):
    """One CVAE for all agents.

    Args:
        x: sample of conditions [..., Dx] (for standardisation statistics).
        y: sample of targets [..., Dy].
        n_agents: 0 for model-based (encoder f(z|y,x)); N for model-free (encoder f(z|i,x)).
        encoder_x: model-free only; False gives an id-only encoder f(z|i), the agent embedding
            of SePS (Christianos et al. 2021), used by the SePS baseline grouper.
    """

    def __init__(self, x: Tensor, y: Tensor, n_agents: int, cfg: CVAEConfig, encoder_x: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_agents = n_agents
        self.encoder_x = encoder_x or not n_agents
        dx, dy = x.shape[-1], y.shape[-1]
        self.norm_x = _Standardise(x)
        self.norm_y = _Standardise(y)
        enc_in = (n_agents if n_agents else dy) + (dx if self.encoder_x else 0)
        self.encoder = _mlp(enc_in, cfg.hidden, 2 * cfg.latent)
        self.decoder = _mlp(cfg.latent + dx, cfg.hidden, dy)

    @property
    def model_free(self) -> bool:
        return self.n_agents > 0

    def encode(self, x: Tensor, y: Tensor | None = None, agent: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(mu, sigma) of f(z|y,x) (model-based) or f(z|i,x) (model-free, ``agent`` = ids)."""
        xn = self.norm_x(x)
        if self.model_free:
            cond = nn.functional.one_hot(agent, self.n_agents).to(xn.dtype)
        else:
            cond = self.norm_y(y)
        h = self.encoder(torch.cat([cond, xn], -1) if self.encoder_x else cond)
        mu, log_sigma = h.chunk(2, -1)
        return mu, log_sigma.clamp(-8.0, 4.0).exp()

    def loss(self, x: Tensor, y: Tensor, y_mask: Tensor, agent: Tensor | None = None) -> Tensor:
        """Negative ELBO (Eq. 4 / Eq. 5): masked reconstruction + kl_weight * KL(f || N(0, I))."""
        mu, sigma = self.encode(x, y, agent)
        z = mu + sigma * torch.randn_like(mu)
        pred = self.decoder(torch.cat([z, self.norm_x(x)], -1))
        rec = 0.5 * ((pred - self.norm_y(y)).pow(2) * y_mask).sum(-1)
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * sigma.log()).sum(-1)
        return (rec + self.cfg.kl_weight * kl).mean()


def fit_cvae(
    x: Tensor,
    y: Tensor,
    y_mask: Tensor,
    cfg: CVAEConfig,
    agent: Tensor | None = None,
    n_agents: int = 0,
    generator: torch.Generator | None = None,
    progress=None,
    encoder_x: bool = True,
) -> tuple[CVAE, list[float]]:
    """Train a CVAE on pairs x [M, Dx], y [M, Dy] with y_mask [M, Dy] (and agent ids [M] model-free).

    Returns the model (in eval mode) and the mean loss of every epoch. ``progress`` is an
    optional callable(epoch, loss) for progress bars.
    """
    model = CVAE(x, y, n_agents, cfg, encoder_x=encoder_x).to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    m = x.shape[0]
    history: list[float] = []
    mask = y_mask.to(x.dtype)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(m, generator=generator, device="cpu").to(x.device)
        total = 0.0
        for start in range(0, m, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            loss = model.loss(x[idx], y[idx], mask[idx], None if agent is None else agent[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        history.append(total / m)
        if progress is not None:
            progress(epoch, history[-1])
    model.eval()
    return model, history
