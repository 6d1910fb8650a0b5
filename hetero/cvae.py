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
        batch_size: largest minibatch size.
        epochs: passes over the training pairs.
        min_steps: fewest minibatches per epoch; a small training set gets smaller minibatches,
            ceil(pairs / min_steps), so that it still gets enough Adam steps.
        patience: with validation pairs (``fit_cvaes(validation=...)``), stop after this many
            epochs in which no member's validation loss improved; each member keeps the
            parameters of its best validation epoch, so ``epochs`` is a cap, not a knob.

    0.2.0 changed (lr, batch_size, epochs) from (2e-3, 256, 10) to (4e-3, 1024, 5): a fifth of
    the per-sample work (the fit is compute-bound), and on Meta-Het of pms_15a_3c,
    pms_15a_5c_shuffle and pms_30a_5c (3 seeds each) the colours are still found (ARI 1.0, 9/9)
    with a higher between/within ratio, and random behaviour still gives one group
    (bench/results_cvae_settings.json, CHANGELOG 0.2.0).
    0.2.0 also changed kl_weight from 0.05 to 0.01, the predecessor's value: at 0.05 the CVAE
    leaves small id effects out of z (the fit prefers paying reconstruction error to paying KL),
    so the structure test had half the power. Calibration (case_studies/calibration.py, README):
    recovery of planted structures at effect 0.1 / 0.2 rose from 15-35% / 50-90% to 15-85% /
    90-100% of seeds, VMAS simple_tag roles by Meta-Het from 7/10 to 10/10 seeds, with false
    positives 0-2% of 50 seeds (0% at 0.05).
    HetDPS and SePS keep the old values explicitly (:data:`HETDPS_CVAE`, measured with them).
    """

    latent: int = 10
    hidden: int = 64
    kl_weight: float = 0.01
    lr: float = 4e-3
    batch_size: int = 1024
    epochs: int = 5
    min_steps: int = 50
    patience: int = 5

    def __post_init__(self) -> None:
        from hetero.errors import check_number

        for name in ("latent", "hidden", "batch_size", "epochs", "patience"):  # an untrained CVAE gives a meaningless matrix
            check_number(getattr(self, name), f"CVAEConfig.{name}" + (" (--epochs)" if name == "epochs" else ""), ge=1)
        check_number(self.lr, "CVAEConfig.lr", gt=0)
        check_number(self.kl_weight, "CVAEConfig.kl_weight", ge=0)


# The CVAE of HetDPS and SePS rounds: the first release's settings, with which their training
# comparisons (case_studies/results/hetdps_*) were measured; quantify's defaults moved on in 0.2.0.
HETDPS_CVAE = CVAEConfig(lr=2e-3, batch_size=256, epochs=10, kl_weight=0.05)


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
    optional callable(epoch, loss) for progress bars. The one-member case of :func:`fit_cvaes`.
    """
    everything = torch.arange(x.shape[0], device=x.device)
    models, histories = fit_cvaes(x, y, y_mask, cfg, [everything], agent, n_agents, generator, progress, encoder_x)
    return models[0], histories[0]


def _linears(model: CVAE) -> list[nn.Linear]:
    return [m for m in (*model.encoder, *model.decoder) if isinstance(m, nn.Linear)]


def _minibatches(parts: list[Tensor], steps: int, batch: int, generator: torch.Generator | None) -> Tensor:
    """Row indices [steps, K, batch] of one epoch: each member walks its own random permutations
    of its own rows (a member with fewer rows than steps * batch starts a fresh permutation)."""
    out = []
    for rows in parts:
        m = rows.numel()
        perms = [torch.randperm(m, generator=generator) for _ in range(-(-steps * batch // m))]
        out.append(rows[torch.cat(perms)[:steps * batch].to(rows.device)].view(steps, batch))
    return torch.stack(out, 1)


class StackedCVAEs:
    """K CVAEs of one architecture as stacked tensors: weights [K, in, out], biases [K, 1, out],
    standardisation statistics [K, 1, D]; every layer is one ``torch.baddbmm`` for all members.
    The model-free encoder's first layer on [one_hot(i), x] is computed as W_id[i] + W_x x."""

    def __init__(self, models: list[CVAE]) -> None:
        self.models = models
        self.layers = [_linears(m) for m in models]
        self.weights = [torch.stack([ls[j].weight.detach().T for ls in self.layers]).requires_grad_() for j in range(6)]
        self.biases = [torch.stack([ls[j].bias.detach()[None] for ls in self.layers]).requires_grad_() for j in range(6)]
        stat = lambda name: torch.stack([m.get_buffer(name)[None] for m in models])  # noqa: E731
        self.mx, self.sx = stat("norm_x.mean"), stat("norm_x.std")
        self.my, self.sy = stat("norm_y.mean"), stat("norm_y.std")
        self.members = torch.arange(len(models), device=self.mx.device)[:, None]
        self.cfg, self.n_agents, self.encoder_x = models[0].cfg, models[0].n_agents, models[0].encoder_x

    def parameters(self) -> list[Tensor]:
        return self.weights + self.biases

    def loss(self, x: Tensor, y: Tensor, mask: Tensor, agent: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        """Negative ELBO of every member (Eqs. 4-5), each on its own rows: x [K, B, Dx] -> [K].
        ``noise`` [K, B, L] is the reparameterisation's standard normal draw (default: drawn here)."""
        w, b, elu = self.weights, self.biases, nn.functional.elu
        xn, yn = (x - self.mx) / self.sx, (y - self.my) / self.sy
        if self.n_agents:  # one_hot(i) @ W_id is a row gather
            w_id = w[0][:, :self.n_agents].reshape(-1, w[0].shape[-1])
            h = w_id.index_select(0, (self.members * self.n_agents + agent).flatten()).view(*agent.shape, -1) + b[0]
            h = torch.baddbmm(h, xn, w[0][:, self.n_agents:]) if self.encoder_x else h
        else:
            h = torch.baddbmm(b[0], torch.cat([yn, xn], -1), w[0])
        h = torch.baddbmm(b[1], elu(h), w[1])
        mu, log_sigma = torch.baddbmm(b[2], elu(h), w[2]).chunk(2, -1)
        sigma = log_sigma.clamp(-8.0, 4.0).exp()
        z = mu + sigma * (torch.randn_like(mu) if noise is None else noise)
        h = torch.baddbmm(b[3], torch.cat([z, xn], -1), w[3])
        h = torch.baddbmm(b[4], elu(h), w[4])
        pred = torch.baddbmm(b[5], elu(h), w[5])
        rec = 0.5 * ((pred - yn).pow(2) * mask).sum(-1)
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * sigma.log()).sum(-1)
        return (rec + self.cfg.kl_weight * kl).mean(-1)

    def unstack(self) -> list[CVAE]:
        """Copy each member's slice back into its CVAE module (eval mode)."""
        with torch.no_grad():
            for k, ls in enumerate(self.layers):
                for j, lin in enumerate(ls):
                    lin.weight.copy_(self.weights[j][k].T)
                    lin.bias.copy_(self.biases[j][k, 0])
        return [m.eval() for m in self.models]


class _Adam:
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's defaults and update, for a few stacked tensors.

    Elementwise, so every member of a stack is updated as if alone. Written out because
    constructing ``torch.optim.Adam`` imports ``torch._dynamo``, which costs ~1-2 s per process,
    more than fitting the CVAEs of one quantification."""

    def __init__(self, params: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.t += 1
        step_size, bc2_sqrt = self.lr / (1 - b1 ** self.t), (1 - b2 ** self.t) ** 0.5
        for p, m, v in zip(self.params, self.m, self.v):
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, v.sqrt().div_(bc2_sqrt).add_(self.eps), value=-step_size)
            p.grad = None


def fit_cvaes(
    x: Tensor,
    y: Tensor,
    y_mask: Tensor,
    cfg: CVAEConfig,
    parts: list[Tensor],
    agent: Tensor | None = None,
    n_agents: int = 0,
    generator: torch.Generator | None = None,
    progress=None,
    encoder_x: bool = True,
    validation: list[Tensor] | None = None,
) -> tuple[list[CVAE], list[list[float]]]:
    """Train K independent CVAEs at once, member k on the pairs ``parts[k]`` (row indices into x).

    Each member has its own initialisation, standardisation statistics (of its own rows) and
    minibatches, but the K members run as one :class:`StackedCVAEs`; the loss is the sum of the
    members' negative ELBOs, so each member's gradient is its own and Adam (elementwise) updates
    it as if alone. An epoch is ceil(max_k |parts[k]| / B) full minibatches per member, where
    B = min(batch_size, ceil(max_k |parts[k]| / min_steps)).

    Returns the K members as ordinary :class:`CVAE` modules (eval mode) and each one's mean loss
    per epoch. ``progress`` (callable(epoch, loss)) is called once per member and epoch.
    ``generator`` is a CPU ``torch.Generator``: minibatches and reparameterisation noise are
    drawn on the CPU and moved to x's device, so a CUDA run follows the CPU run's draws.

    ``validation`` (row indices per member, pairs it does not train on, from other episodes):
    early stopping. After every epoch each member's negative ELBO on its validation pairs (a
    fixed noise draw) is measured, each member keeps its best epoch's parameters, and training
    stops once ``cfg.patience`` epochs pass without any member improving. A CVAE that starts to
    memorise its own episodes (e.g. PMS landmark layouts) is stopped before the id effects it
    learned fade.
    """
    if not parts or any(p.numel() == 0 for p in parts):
        raise ValueError(f"fit_cvaes needs K >= 1 non-empty row sets in parts; got sizes {[p.numel() for p in parts]}.")
    if n_agents and agent is None:
        raise ValueError("model-free fitting (n_agents > 0) needs the agent id of every pair (agent=...).")
    stacked = StackedCVAEs([CVAE(x[p], y[p], n_agents, cfg, encoder_x=encoder_x).to(x.device) for p in parts])
    mask = y_mask.to(x.dtype)
    opt = _Adam(stacked.parameters(), lr=cfg.lr)
    most = max(p.numel() for p in parts)
    batch = max(1, min(cfg.batch_size, -(-most // cfg.min_steps)))
    steps = -(-most // batch)
    histories: list[list[float]] = [[] for _ in parts]
    fields = (x, y, mask) if agent is None else (x, y, mask, agent)
    stopper = _EarlyStop(stacked, fields, validation, cfg) if validation else None
    for epoch in range(cfg.epochs):
        total = torch.zeros(len(parts), device=x.device)
        idx = _minibatches(parts, steps, batch, generator)  # [steps, K, B]
        # the noise comes from the (CPU) generator too, so a CUDA run follows the CPU run's draws
        noise = torch.randn(*idx.shape, cfg.latent, generator=generator).to(x.device)
        for step in range(steps):
            xb, yb, mb, *ab = (v.index_select(0, idx[step].flatten()).view(*idx.shape[1:], *v.shape[1:]) for v in fields)
            per_member = stacked.loss(xb, yb, mb, ab[0] if ab else None, noise[step])
            per_member.sum().backward()
            opt.step()
            total += per_member.detach()
        for k, v in enumerate((total / steps).tolist()):
            histories[k].append(v)
            if progress is not None:
                progress(epoch, v)
        if stopper is not None and stopper.done():
            break
    if stopper is not None:
        stopper.restore()
    return stacked.unstack(), histories


class _EarlyStop:
    """Per-member best-validation-epoch parameters of a :class:`StackedCVAEs` (see fit_cvaes)."""

    def __init__(self, stacked: StackedCVAEs, fields: tuple, validation: list[Tensor], cfg: CVAEConfig) -> None:
        if len(validation) != len(stacked.models) or any(v.numel() == 0 for v in validation):
            raise ValueError(f"fit_cvaes: validation needs one non-empty row set per member; got sizes "
                             f"{[v.numel() for v in validation]} for {len(stacked.models)} members.")
        size = min(v.numel() for v in validation)  # one [K, size] batch
        idx = torch.stack([v[:size] for v in validation])
        self.batch = [f.index_select(0, idx.flatten().to(f.device)).view(*idx.shape, *f.shape[1:]) for f in fields]
        # a fixed draw of its own: the training draws (minibatches, noise) are those of a run without validation
        self.noise = torch.randn(*idx.shape, cfg.latent, generator=torch.Generator().manual_seed(0)).to(idx.device)
        self.stacked, self.patience, self.since = stacked, cfg.patience, 0
        self.best = torch.full((len(validation),), float("inf"), device=idx.device)
        self.params = [p.detach().clone() for p in stacked.parameters()]
        self.epoch = 0
        self.kept = torch.zeros(len(validation), dtype=torch.long)  # the epoch each member keeps (1-based)

    def done(self) -> bool:
        """Measure the validation loss after an epoch; True when training should stop."""
        with torch.no_grad():
            loss = self.stacked.loss(*self.batch[:3], self.batch[3] if len(self.batch) > 3 else None, self.noise)
            better = loss < self.best
            for p, keep in zip(self.stacked.parameters(), self.params):
                keep[better] = p[better]
            self.best = torch.where(better, loss, self.best)
        self.epoch += 1
        self.kept[better.cpu()] = self.epoch
        self.since = 0 if bool(better.any()) else self.since + 1
        return self.since >= self.patience

    def restore(self) -> None:
        with torch.no_grad():
            for p, keep in zip(self.stacked.parameters(), self.params):
                p.copy_(keep)
        for model, epoch in zip(self.stacked.models, self.kept.tolist()):
            model.epochs_kept = epoch
