"""quantify(): samples -> CVAE representations -> agent-by-agent heterogeneity distances.

d_ij = E_x[ W2(p_i(z|x), p_j(z|x)) ] (paper Eq. 3 with the Wasserstein measure), estimated by
Monte Carlo over conditions x drawn from the sample pool; p_i(z|x) is the CVAE encoder's Gaussian
for agent i: model-based f(z | y_i(x), x) (Eq. 4) when the env can evaluate agent i's function at
x, model-free f(z | i, x) (Eq. 5) otherwise. Meta-Het (App. G) is model-based where the env
evaluates all its parts (:data:`~hetero.kinds.META_PARTS`), else model-free.

Every result carries the Monte-Carlo standard error of each entry and a structure test
(:mod:`hetero.structure`): which pairs of agents differ beyond noise, Holm-adjusted, and the
p-value of "all agents alike". Model-based, identical functions give exactly 0 and a pair differs
when d_ij exceeds its standard errors. Model-free, the encoder spreads even exchangeable agents
apart, so the scale says nothing on its own: the pool is split in two halves by episode, a CVAE is
fitted on each (the matrix is their mean), and each half's held-out transitions test whether
swapping two agents' ids costs reconstruction error (the cross-fitted swap test). The noise floor
is the largest distance between agents the test cannot tell apart.
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

from hetero.cvae import CVAEConfig, fit_cvae, fit_cvaes
from hetero.kinds import KINDS, META_CONDITIONS, META_PARTS, check_kind, model_free_xy, obs_het_undefined
from hetero.overlap import fit_id_classifier, pair_weights
from hetero.protocols import ModelAccess
from hetero.samples import SamplePool
from hetero.structure import StructureTest, model_based_test, split_halves, swap_contributions, swap_test
from hetero.wasserstein import mean_pairwise_w2

PolicyFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class QuantifyConfig:
    """Settings of one quantification.

    Attributes:
        mode: "auto" (model-based when the env offers it, else model-free), "model-based" or
            "model-free". Meta-Het is model-based when the env evaluates every part of it
            (response, obs, objective: :data:`~hetero.kinds.META_PARTS`).
        meta_condition: model-free Meta-Het's condition: "env" = (s_i, a_i, S^E) where the pool
            carries S^E (default), "own" = (s_i, a_i), App. G as printed (hetero/kinds.py says why).
        train_samples: conditions x used to train the CVAE (each gives one pair per agent).
        eval_samples: conditions x the distance is averaged over (Monte-Carlo samples).
        reward_repeat: dimension replication of the reward (App. G).
        split_half: model-free structure test from two CVAEs fitted on episode halves (else no
            test: every pair counts as different).
        alpha: family-wise error rate of the structure test (Holm over all pairs): the chance of
            reporting more than one group when all agents are alike.
        test_samples: held-out transitions per agent and half used by the swap test.
        validation: fraction of each half's blocks (episodes) set aside to stop its CVAE early
            (``CVAEConfig.patience``) at its best validation epoch, for fits with many epochs;
            0 (default) trains exactly ``cvae.epochs``. Model-free with ``split_half`` only. Off by
            default: at the default 5 epochs it costs power (the held-out episodes are not
            trained on), e.g. PMS Meta-Het ARI 1.0 in 6-9 of 10 seeds per task instead of 10.
        reweight: behaviour-invariant swap test (hetero/overlap.py): each pair's held-out
            transitions are importance-weighted to one condition distribution, so agents that
            act differently but share a transition function are not reported as different.
        seed: everything (sampling, init, training) follows from it.
        device: "cpu" or "cuda".
        cvae: CVAE hyperparameters.
        model_based_cvae: CVAE hyperparameters of a model-based fit (every agent evaluated at the
            same x), when it should differ from a model-free one's; None (default) = ``cvae``.
    """

    mode: str = "auto"
    meta_condition: str = "env"
    train_samples: int = 4000
    eval_samples: int = 2000
    reward_repeat: int = 8
    split_half: bool = True
    alpha: float = 0.01
    test_samples: int = 1000
    validation: float = 0.0
    reweight: bool = True
    seed: int = 0
    device: str = "cpu"
    cvae: CVAEConfig = field(default_factory=CVAEConfig)
    model_based_cvae: CVAEConfig | None = None

    def __post_init__(self) -> None:
        from hetero.errors import check_number

        if self.mode not in ("auto", "model-based", "model-free"):
            raise ValueError(f"QuantifyConfig.mode={self.mode!r}; choose auto, model-based or model-free.")
        if self.meta_condition not in META_CONDITIONS:
            raise ValueError(f"QuantifyConfig.meta_condition={self.meta_condition!r} (--meta-condition); choose env "
                             "(s_i, a_i, S^E) or own (s_i, a_i, App. G as printed).")
        for name in ("train_samples", "eval_samples", "reward_repeat", "test_samples"):  # --train-samples ...
            check_number(getattr(self, name), f"QuantifyConfig.{name} (--{name.replace('_', '-')})", ge=1)
        check_number(self.alpha, "QuantifyConfig.alpha (--alpha)", gt=0, lt=1)
        check_number(self.validation, "QuantifyConfig.validation (--early-stop)", ge=0, lt=0.5)


@dataclass
class HeterogeneityResult:
    """A distance matrix with what is needed to read it.

    matrix [N, N] (mean W2), stderr [N, N] (its Monte-Carlo standard error), test (the
    :class:`~hetero.structure.StructureTest`: per-pair decisions and the p-value of "all agents
    alike"; None without a split), noise_floor (largest distance between agents the test cannot
    tell apart), halves [2, N, N] (model-free split-half matrices, else None), mode
    ("model-based" / "model-free"), settings and timings (seconds per stage).
    """

    kind: str
    mode: str
    matrix: np.ndarray
    stderr: np.ndarray
    noise_floor: float
    halves: np.ndarray | None
    test: StructureTest | None
    settings: dict
    timings: dict
    loss_history: list[float]

    @property
    def n_agents(self) -> int:
        return self.matrix.shape[0]

    @property
    def p_value(self) -> float | None:
        """p-value of "all agents alike" (Holm-adjusted smallest pair p-value); None without a test."""
        return None if self.test is None else self.test.p_value

    @property
    def differ(self) -> np.ndarray | None:
        """[N, N] bool: pairs that differ beyond noise at level alpha (None without a test)."""
        return None if self.test is None else self.test.differ

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "title": KINDS[self.kind].title,
            "mode": self.mode,
            "matrix": self.matrix.tolist(),
            "stderr": self.stderr.tolist(),
            "noise_floor": self.noise_floor,
            "halves": None if self.halves is None else self.halves.tolist(),
            "p_value": self.p_value,
            "test": None if self.test is None else self.test.to_dict(),
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
        if self.test is not None:
            arrays |= {"pvalues": self.test.adjusted, "differ": self.test.differ, "p_value": np.array(self.test.p_value)}
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


def _held_out(part: Tensor, per_agent: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Up to ``per_agent`` random valid rows of every agent in ``part`` [T, N] -> (rows, agents)."""
    keys = torch.rand(part.shape, generator=gen).to(part.device).masked_fill(~part, float("inf"))
    order = keys.argsort(0)[:per_agent]  # [<=per_agent, N]
    keep = torch.isfinite(keys.gather(0, order))
    agents = torch.arange(part.shape[1], device=part.device).expand_as(order)
    return order[keep], agents[keep]


def _validation_split(parts: list[Tensor], half: Tensor, block: Tensor, fraction: float,
                      gen: torch.Generator) -> tuple[list[Tensor], list[Tensor] | None]:
    """Each half's [T, N] validity split into training and validation parts by whole blocks
    (episodes): ``fraction`` of the half's blocks, at least 1, from halves of >= 4 blocks; no
    validation (None) when ``fraction`` is 0 or some agent would keep no training rows."""
    if fraction <= 0:
        return parts, None
    train, val = [], []
    for h, part in enumerate(parts):
        blocks = torch.unique(block[half == h])
        if blocks.numel() < 4:
            return parts, None
        take = max(1, round(fraction * blocks.numel()))
        chosen = blocks[torch.randperm(blocks.numel(), generator=gen)[:take].to(blocks.device)]
        held = torch.isin(block, chosen).unsqueeze(1)
        train.append(part & ~held)
        val.append(part & held)
        if not train[-1].any(0).all() or not val[-1].any():
            return parts, None
    return train, val


def _model_free(pool: SamplePool, kind: str, cfg: QuantifyConfig, gen: torch.Generator, tick) -> dict:
    x_all, y_all, y_mask = model_free_xy(kind, pool, cfg.reward_repeat, cfg.meta_condition)
    n = pool.n_agents
    valid = pool.valid
    if cfg.split_half:  # two CVAEs on two halves of the episodes; each tests on the other's rows
        half, block = split_halves(pool.episode, valid, gen)
        parts = [valid & (half == h).unsqueeze(1) for h in (0, 1)]
    else:
        parts = [valid]
    er, ea = _draw(pool.rows, n, cfg.eval_samples, valid, gen)
    mats, ses, hist, contributions = [], [], [], []
    train, val = _validation_split(parts, half, block, cfg.validation, gen) if cfg.split_half else (parts, None)
    count = cfg.train_samples * n
    draws = [_draw(pool.rows, n, count, part, gen) for part in train]  # one CVAE per half, fitted together
    if val is not None:  # then each half's validation pairs (early stopping), behind the training pairs
        draws += [_draw(pool.rows, n, min(count // 4, 4096), part, gen) for part in val]
    rows, agents = (torch.cat(v) for v in zip(*draws))  # as one stacked model
    sets = list(torch.arange(rows.numel(), device=rows.device).split([d[0].numel() for d in draws]))
    members, validation = sets[:len(train)], (sets[len(train):] or None)
    models, curves = fit_cvaes(x_all[rows, agents], y_all[rows, agents], y_mask[agents], cfg.cvae, members,
                               agent=agents, n_agents=n, generator=gen, progress=tick, validation=validation)
    for h, (model, curve) in enumerate(zip(models, curves)):
        mu, sigma = _encode_all(model, x_all[er, ea], n)
        d, se = mean_pairwise_w2(mu, sigma)
        mats.append(d)
        ses.append(se)
        hist += curve
        if cfg.split_half:
            # q(id | x) from this half's own training rows, applied to the other half's
            fit = fit_id_classifier(x_all[draws[h][0], draws[h][1]], draws[h][1], n, gen) if cfg.reweight else None
            rows, agents = _held_out(parts[1 - h], cfg.test_samples, gen)
            weights = None if fit is None else pair_weights(*fit, x_all[rows, agents], agents)
            contributions.append(swap_contributions(model, x_all[rows, agents], y_all[rows, agents],
                                                    y_mask[agents], agents, block[rows], n, int(block.max()) + 1,
                                                    weights))
    d = torch.stack(mats).mean(0)
    se = torch.stack(ses).pow(2).mean(0).sqrt() / len(mats) ** 0.5
    test = swap_test(contributions, cfg.alpha) if cfg.split_half else None
    kept = [getattr(m, "epochs_kept", None) for m in models] if val is not None else None  # early stopping's pick
    return {"matrix": d, "stderr": se, "history": hist, "halves": torch.stack(mats) if cfg.split_half else None,
            "test": test, "epochs_kept": kept}


def meta_model_based(model: ModelAccess | None) -> bool:
    """True when ``model`` evaluates every part of the meta-transition (model-based Meta-Het)."""
    return model is not None and set(META_PARTS) <= set(model.kinds)


def _meta_model_based(model: ModelAccess, pool: SamplePool, rows: Tensor, ego: Tensor,
                      reward_repeat: int) -> tuple[Tensor, Tensor]:
    """Model-based meta-transition: x = the parts' distinct inputs side by side [B, Dx], y [B, N, Dy]
    = (response, obs, objective replicated R times, App. G), every agent at the same x."""
    xs, ys = [], []
    for part in META_PARTS:
        x, y = model.evaluate(part, pool, rows, ego)
        if not any(x.shape == seen.shape and torch.equal(x, seen) for seen in xs):  # parts often share x
            xs.append(x)
        ys.append(y.repeat_interleave(reward_repeat, -1) if part == "objective" else y)
    return torch.cat(xs, -1), torch.cat(ys, -1)


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
        if kind == "meta":  # (s_i', o_i, r_i x R) of every agent at one x
            return _meta_model_based(model, pool, rows, ego, cfg.reward_repeat)
        return model.evaluate(kind, pool, rows, ego)

    x, y = evaluate(cfg.train_samples)
    if not torch.isfinite(y).all():
        raise ValueError(f"the {kind} function returned NaN/inf for some inputs; check the env model or policy.")
    if y.shape[:2] != (x.shape[0], n):
        raise ValueError(f"model evaluation for {kind!r} returned y of shape {tuple(y.shape)}; expected [B, {n}, Dy].")
    xs, ys = x.repeat_interleave(n, 0), y.reshape(-1, y.shape[-1])
    cvae = cfg.model_based_cvae or cfg.cvae
    net, hist = fit_cvae(xs, ys, torch.ones_like(ys, dtype=torch.bool), cvae, generator=gen, progress=tick)
    xe, ye = evaluate(cfg.eval_samples)
    mu, sigma = _encode_all(net, xe, n, ye)
    d, se = mean_pairwise_w2(mu, sigma)
    test = model_based_test(d.cpu().numpy(), se.cpu().numpy(), cfg.alpha)
    return {"matrix": d, "stderr": se, "history": hist, "halves": None, "test": test}


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
    can_model = kind == "policy" or (model is not None and kind in model.kinds) or (
        kind == "meta" and meta_model_based(model))
    if cfg.mode == "model-based" and not can_model:
        raise ValueError(f"mode 'model-based' for kind {kind!r} needs an env whose model evaluates it; use 'auto'.")
    based = can_model and cfg.mode != "model-free"
    if kind == "obs" and not based and (why := obs_het_undefined(pool)) is not None:
        raise ValueError(f"{why}; use another kind (response, objective, meta), or give the pool a local state.")
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
    test: StructureTest | None = out["test"]
    alike = ~test.differ & ~np.eye(d.shape[0], dtype=bool) if test is not None else None
    floor = float(d[alike].max()) if alike is not None and alike.any() else 0.0
    halves = None if out["halves"] is None else out["halves"].cpu().numpy()
    settings = asdict(cfg) | {"kind": kind, "n_agents": pool.n_agents, "pool_rows": pool.rows}
    if out.get("epochs_kept"):  # early stopping: the epoch each half's CVAE kept
        settings["epochs_kept"] = out["epochs_kept"]
    return HeterogeneityResult(
        kind=kind,
        mode="model-based" if based else "model-free",
        matrix=d,
        stderr=se,
        noise_floor=floor,
        halves=halves,
        test=test,
        settings=settings,
        timings={"quantify_s": round(elapsed, 3)},
        loss_history=out["history"],
    )
