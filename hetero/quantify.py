"""quantify(): samples -> CVAE representations -> agent-by-agent heterogeneity distances.

d_ij = E_x[ W2(p_i(z|x), p_j(z|x)) ] (paper Eq. 3 with the Wasserstein measure), estimated by
Monte Carlo over conditions x drawn from the sample pool; p_i(z|x) is the CVAE encoder's Gaussian
for agent i: model-based f(z | y_i(x), x) (Eq. 4) when the env can evaluate agent i's function at
x, model-free f(z | i, x) (Eq. 5) otherwise, and always for Meta-Het (App. G).

Every result carries the Monte-Carlo standard error of each entry and a *noise floor*: the
distance two agents can show without being different. Model-based, identical functions give
exactly 0, so the floor is a few standard errors. Model-free, the encoder spreads even
exchangeable agents apart by a consistent amount, so the absolute scale says nothing; what noise
cannot do is put the *same* agents together twice. The pool is split in two halves by episode, a
CVAE is fitted on each, and the matrix is their mean. When Affinity Propagation groups the two
halves alike (adjusted Rand index >= ``stability``), the floor is the largest distance between
agents both halves group together; otherwise there is no structure beyond noise and the floor is
the largest distance, i.e. one group (DESIGN.md: two-seed stability, ARI 1.0 under
goal-directed behaviour vs 0.09 under random actions).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from hetero.cvae import CVAEConfig, fit_cvae
from hetero.grouping import cluster
from hetero.kinds import KINDS, check_kind, model_free_xy
from hetero.protocols import ModelAccess
from hetero.samples import SamplePool
from hetero.wasserstein import mean_pairwise_w2

PolicyFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class QuantifyConfig:
    """Settings of one quantification.

    Attributes:
        mode: "auto" (model-based when the env offers it, else model-free), "model-based" or
            "model-free". Meta-Het is always model-free.
        train_samples: conditions x used to train the CVAE (each gives one pair per agent).
        eval_samples: conditions x the distance is averaged over (Monte-Carlo samples).
        reward_repeat: dimension replication of the reward (App. G).
        split_half: model-free noise floor from two CVAEs fitted on episode halves (else 0).
        stability: minimum adjusted Rand index between the halves' groupings for the model-free
            structure to count as real.
        floor_se: model-based floor in standard errors of the mean.
        seed: everything (sampling, init, training) follows from it.
        device: "cpu" or "cuda".
        cvae: CVAE hyperparameters.
    """

    mode: str = "auto"
    train_samples: int = 4000
    eval_samples: int = 2000
    reward_repeat: int = 8
    split_half: bool = True
    stability: float = 0.5
    floor_se: float = 4.0
    seed: int = 0
    device: str = "cpu"
    cvae: CVAEConfig = field(default_factory=CVAEConfig)

    def __post_init__(self) -> None:
        from hetero.errors import check_number

        if self.mode not in ("auto", "model-based", "model-free"):
            raise ValueError(f"QuantifyConfig.mode={self.mode!r}; choose auto, model-based or model-free.")
        for name in ("train_samples", "eval_samples", "reward_repeat"):  # --train-samples, --eval-samples
            check_number(getattr(self, name), f"QuantifyConfig.{name} (--{name.replace('_', '-')})", ge=1)


@dataclass
class HeterogeneityResult:
    """A distance matrix with what is needed to read it.

    matrix [N, N] (mean W2), stderr [N, N] (its Monte-Carlo standard error), noise_floor (distance
    below which two agents are indistinguishable), halves [2, N, N] and stability (model-free
    split-half matrices and the ARI of their groupings, else None), mode ("model-based" /
    "model-free"), settings and timings (seconds per stage).
    """

    kind: str
    mode: str
    matrix: np.ndarray
    stderr: np.ndarray
    noise_floor: float
    halves: np.ndarray | None
    stability: float | None
    settings: dict
    timings: dict
    loss_history: list[float]

    @property
    def n_agents(self) -> int:
        return self.matrix.shape[0]

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "title": KINDS[self.kind].title,
            "mode": self.mode,
            "matrix": self.matrix.tolist(),
            "stderr": self.stderr.tolist(),
            "noise_floor": self.noise_floor,
            "halves": None if self.halves is None else self.halves.tolist(),
            "stability": self.stability,
            "settings": self.settings,
            "timings": self.timings,
            "loss_history": self.loss_history,
        }

    def save(self, folder: str | Path, stem: str | None = None) -> tuple[Path, Path]:
        """Write ``<kind>.npz`` and ``<kind>.json`` into folder; returns both paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or self.kind
        npz, js = folder / f"{stem}.npz", folder / f"{stem}.json"
        arrays = {"matrix": self.matrix, "stderr": self.stderr, "noise_floor": np.array(self.noise_floor)}
        if self.halves is not None:
            arrays["halves"] = self.halves
        np.savez(npz, **arrays)
        js.write_text(json.dumps(self.to_dict(), indent=1))
        return npz, js


def _draw(n_rows: int, n_agents: int, count: int, valid: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``count`` (row, agent) pairs drawn uniformly among valid samples."""
    flat = valid.flatten().nonzero().flatten()
    pick = flat[torch.randint(flat.numel(), (count,), generator=gen)]
    return pick // n_agents, pick % n_agents


def _encode_all(model, x: Tensor, n: int, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Encoder Gaussians of all N agents at the same conditions: x [B, Dx] -> mu, sigma [B, N, L]."""
    b = x.shape[0]
    with torch.no_grad():
        if y is None:  # model-free: f(z | i, x) for every i
            agents = torch.arange(n, device=x.device).repeat(b)
            mu, sigma = model.encode(x.repeat_interleave(n, 0), agent=agents)
        else:  # model-based: f(z | y_i(x), x)
            mu, sigma = model.encode(x.repeat_interleave(n, 0), y.reshape(b * n, -1))
    return mu.view(b, n, -1), sigma.view(b, n, -1)


def _model_free(pool: SamplePool, kind: str, cfg: QuantifyConfig, gen: torch.Generator, tick) -> dict:
    x_all, y_all, y_mask = model_free_xy(kind, pool, cfg.reward_repeat)
    n = pool.n_agents
    valid = pool.valid
    if cfg.split_half:  # halves by episode (by row when episodes are unknown)
        episode = pool.episode if pool.episode is not None else torch.arange(pool.rows, device=pool.device)
        n_ep = int(episode.max()) + 1
        if n_ep < 2:
            raise ValueError("the split-half noise floor needs at least 2 episodes in the pool; collect more, "
                             "or set QuantifyConfig(split_half=False).")
        half_of_ep = torch.randperm(n_ep, generator=gen).to(pool.device) % 2
        halves = [valid & (half_of_ep[episode] == h).unsqueeze(1) for h in (0, 1)]
    else:
        halves = [valid]
    er, ea = _draw(pool.rows, n, cfg.eval_samples, valid, gen)
    mats, ses, hist = [], [], []
    for part in halves:
        rows, agents = _draw(pool.rows, n, cfg.train_samples * n, part, gen)
        model, h = fit_cvae(x_all[rows, agents], y_all[rows, agents], y_mask[agents], cfg.cvae, agent=agents,
                            n_agents=n, generator=gen, progress=tick)
        mu, sigma = _encode_all(model, x_all[er, ea], n)
        d, se = mean_pairwise_w2(mu, sigma)
        mats.append(d)
        ses.append(se)
        hist += h
    d = torch.stack(mats).mean(0)
    se = torch.stack(ses).pow(2).mean(0).sqrt() / len(mats) ** 0.5
    return {"matrix": d, "stderr": se, "history": hist, "halves": torch.stack(mats) if cfg.split_half else None}


def _split_half_floor(halves: np.ndarray, d: np.ndarray, threshold: float, seed: int) -> tuple[float, float]:
    """(noise floor, stability ARI) from the two halves' Affinity Propagation groupings."""
    from sklearn.metrics import adjusted_rand_score

    la, lb = (np.asarray(cluster(h, 0.0, seed=seed).labels) for h in halves)
    ari = float(adjusted_rand_score(la, lb))
    off = ~np.eye(d.shape[0], dtype=bool)
    together = (la[:, None] == la[None, :]) & (lb[:, None] == lb[None, :]) & off
    if ari < threshold or not together.any():
        return float(d[off].max()), ari
    return float(d[together].max()), ari


def _model_based(pool: SamplePool, kind: str, cfg: QuantifyConfig, gen: torch.Generator, tick,
                 model: ModelAccess | None, policy_fn: PolicyFn | None) -> dict:
    n = pool.n_agents

    def evaluate(count: int) -> tuple[Tensor, Tensor]:
        rows, ego = _draw(pool.rows, n, count, pool.valid, gen)
        if kind == "policy":
            o = pool.obs[rows, ego]  # the same observation o fed to every agent's policy
            with torch.no_grad():
                y = policy_fn(o.unsqueeze(1).expand(-1, n, -1))
            return o, y.to(o.dtype)
        return model.evaluate(kind, pool, rows, ego)

    x, y = evaluate(cfg.train_samples)
    if not torch.isfinite(y).all():
        raise ValueError(f"the {kind} function returned NaN/inf for some inputs; check the env model or policy.")
    if y.shape[:2] != (x.shape[0], n):
        raise ValueError(f"model evaluation for {kind!r} returned y of shape {tuple(y.shape)}; expected [B, {n}, Dy].")
    xs, ys = x.repeat_interleave(n, 0), y.reshape(-1, y.shape[-1])
    net, hist = fit_cvae(xs, ys, torch.ones_like(ys, dtype=torch.bool), cfg.cvae, generator=gen, progress=tick)
    xe, ye = evaluate(cfg.eval_samples)
    mu, sigma = _encode_all(net, xe, n, ye)
    d, se = mean_pairwise_w2(mu, sigma)
    return {"matrix": d, "stderr": se, "history": hist, "halves": None}


def quantify(
    pool: SamplePool,
    kind: str = "meta",
    cfg: QuantifyConfig = QuantifyConfig(),
    model: ModelAccess | None = None,
    policy_fn: PolicyFn | None = None,
    progress: Callable[[str, int, float], None] | None = None,
) -> HeterogeneityResult:
    """Quantify one kind of heterogeneity between all agents of ``pool``.

    Args:
        pool: transitions (validated here: NaN/inf, empty agents, shapes).
        kind: obs | response | effect | objective | policy | meta.
        cfg: settings (mode, sample counts, seed, CVAE).
        model: the env's ModelAccess, for model-based obs/response/effect/objective.
        policy_fn: obs [B, N, Do] -> pi parameters [B, N, Dy], required for the policy kind.
        progress: optional callable(stage, epoch, loss) for progress bars.
    """
    check_kind(kind)
    if cfg.mode not in ("auto", "model-based", "model-free"):
        raise ValueError(f"QuantifyConfig.mode={cfg.mode!r}; use 'auto', 'model-based' or 'model-free'.")
    pool = pool.to(cfg.device).validate()
    if kind == "policy" and policy_fn is None:
        raise ValueError("kind 'policy' needs policy_fn (on the CLI: --checkpoint RUN_DIR, or a random-init policy).")
    can_model = kind == "policy" or (model is not None and kind in model.kinds)
    if kind == "meta" and cfg.mode == "model-based":
        raise ValueError("Meta-Het is defined model-free only (App. G); use mode 'auto' or 'model-free'.")
    if cfg.mode == "model-based" and not can_model:
        raise ValueError(f"mode 'model-based' for kind {kind!r} needs an env whose model evaluates it; use 'auto'.")
    based = can_model and kind != "meta" and cfg.mode != "model-free"
    if kind == "policy" and not based:
        raise ValueError("the policy kind is evaluated model-based only (pi_i on the same o); use mode 'auto'.")

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    tick = (lambda e, l: progress(kind, e, l)) if progress else None
    t0 = time.perf_counter()
    if based:
        out = _model_based(pool, kind, cfg, gen, tick, model, policy_fn)
    else:
        out = _model_free(pool, kind, cfg, gen, tick)
    elapsed = time.perf_counter() - t0

    d, se = out["matrix"].cpu().numpy(), out["stderr"].cpu().numpy()
    off = ~np.eye(d.shape[0], dtype=bool)
    halves, stability = None, None
    if out["halves"] is not None:
        halves = out["halves"].cpu().numpy()
        floor, stability = _split_half_floor(halves, d, cfg.stability, cfg.seed)
    else:
        scale = float(d[off].max()) if d.size > 1 else 0.0
        floor = float(cfg.floor_se * se[off].max()) + 1e-6 * (1.0 + scale) if based else 0.0
    settings = asdict(cfg) | {"kind": kind, "n_agents": pool.n_agents, "pool_rows": pool.rows}
    return HeterogeneityResult(
        kind=kind,
        mode="model-based" if based else "model-free",
        matrix=d,
        stderr=se,
        noise_floor=floor,
        halves=halves,
        stability=stability,
        settings=settings,
        timings={"quantify_s": round(elapsed, 3)},
        loss_history=out["history"],
    )
