"""HetDPS: heterogeneity-based dynamic parameter sharing around any SharingTrainer (Sec. 5, Alg. 1).

Every ``interval`` updates: quantify the chosen kind (Meta-Het by default) on the trainer's recent
samples, cluster with the noise-floor-aware Affinity Propagation, match the clusters against the
current layout (overlap + Hungarian) and let the trainer apply the resulting RegroupPlan
(relabel / split / merge). The first round starts from whatever paradigm the trainer has (FPS,
NPS or static groups): matching against that layout is exactly Alg. 1's "assign networks,
copy parameters as needed".

The grouping step is a :class:`Grouper`, so the paper's baselines (Table 2) run on the same
interface: :class:`HetGrouper` (HetDPS), :class:`~hetero.baselines.SePSGrouper` and
:class:`~hetero.baselines.MADPSGrouper`.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from hetero.grouping import cluster, match
from hetero.plan import RegroupPlan
from hetero.protocols import ModelAccess, SharingTrainer
from hetero.quantify import QuantifyConfig, quantify


@dataclass(frozen=True)
class HetDPSConfig:
    """Attributes:
        kind: heterogeneity kind that drives the grouping (meta by default; any kind works).
        interval: trainer updates between two regrouping rounds (paper Table 6: insensitive
            between 20 and 2000).
        merge: merge mode when networks merge: majority | random | average | weighted.
        quantify: settings of each round's quantification (smaller than the CLI's defaults, to
            keep the online overhead low).
        seed: base seed; round k uses seed + k.
    """

    kind: str = "meta"
    interval: int = 200
    merge: str = "weighted"
    quantify: QuantifyConfig = field(default_factory=lambda: QuantifyConfig(train_samples=2000, eval_samples=1000))
    seed: int = 0


@dataclass
class RegroupRound:
    """One logged round: when, the matrix it saw, the labels it found, the plan it applied."""

    update: int
    labels: tuple[int, ...]
    plan: dict
    seconds: float
    matrix: np.ndarray | None = None
    noise_floor: float = 0.0
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["matrix"] = None if self.matrix is None else self.matrix.tolist()
        return d


class Grouper(Protocol):
    """Proposes new agent labels for a trainer (HetDPS, SePS, MADPS share this interface)."""

    name: str

    def propose(self, trainer: SharingTrainer, round_index: int) -> tuple[tuple[int, ...] | None, dict]:
        """Return (labels, info); labels None means "leave the layout as it is"."""
        ...


class HetGrouper:
    """HetDPS's grouping: quantify ``kind``, cluster with the noise floor (Sec. 5)."""

    name = "hetdps"

    def __init__(self, kind: str, cfg: QuantifyConfig, model: ModelAccess | None = None, seed: int = 0) -> None:
        self.kind, self.cfg, self.model, self.seed = kind, cfg, model, seed

    def propose(self, trainer: SharingTrainer, round_index: int):
        from dataclasses import replace

        cfg = replace(self.cfg, seed=self.seed + round_index)
        policy_fn = trainer.policy_distributions if self.kind == "policy" else None
        res = quantify(trainer.sample_pool(), self.kind, cfg, model=self.model, policy_fn=policy_fn)
        groups = cluster(res.matrix, res.noise_floor, seed=cfg.seed)
        info = {"matrix": res.matrix, "noise_floor": res.noise_floor, "mode": res.mode,
                "grouping": groups.method, "note": groups.note}
        return groups.labels, info


class HetDPS:
    """Drive a SharingTrainer's layout online.

    Use ``after_update(update)`` after every trainer update (it runs a round every ``interval``
    updates), or ``regroup(update)`` to force one. ``history`` holds every round; with
    ``log_dir`` each round is appended to ``hetdps_rounds.jsonl`` and its matrix saved as
    ``hetdps_round_<update>.npz``.
    """

    def __init__(self, trainer: SharingTrainer, cfg: HetDPSConfig = HetDPSConfig(), model: ModelAccess | None = None,
                 grouper: Grouper | None = None, log_dir: str | Path | None = None) -> None:
        if not isinstance(trainer, SharingTrainer):
            raise TypeError(
                f"{type(trainer).__name__} does not implement hetero.SharingTrainer (layout, sample_pool, "
                "policy_distributions, apply_plan); add those methods to wrap it in HetDPS."
            )
        if cfg.interval < 1:
            raise ValueError(f"HetDPSConfig.interval={cfg.interval}; it must be a positive number of updates.")
        self.trainer, self.cfg = trainer, cfg
        self.grouper = grouper or HetGrouper(cfg.kind, cfg.quantify, model, cfg.seed)
        self.log_dir = Path(log_dir) if log_dir else None
        self.history: list[RegroupRound] = []

    def after_update(self, update: int) -> RegroupRound | None:
        if update > 0 and update % self.cfg.interval == 0:
            return self.regroup(update)
        return None

    def regroup(self, update: int) -> RegroupRound:
        t0 = time.perf_counter()
        old = tuple(self.trainer.layout)
        try:
            labels, info = self.grouper.propose(self.trainer, len(self.history))
        except ValueError as e:  # a bad round must never crash training: keep the layout, log why
            labels, info = None, {"error": str(e)}
        if labels is None:
            labels = old
        plan = match(old, labels, merge=self.cfg.merge, seed=self.cfg.seed + len(self.history))
        if plan != RegroupPlan.identity(old):
            self.trainer.apply_plan(plan)
        matrix = info.pop("matrix", None)
        rnd = RegroupRound(update=update, labels=tuple(plan.layout), plan=plan.to_dict(),
                           seconds=time.perf_counter() - t0, matrix=matrix,
                           noise_floor=float(info.pop("noise_floor", 0.0)), info=info)
        self.history.append(rnd)
        self._log(rnd)
        return rnd

    def _log(self, rnd: RegroupRound) -> None:
        if self.log_dir is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "hetdps_rounds.jsonl", "a") as f:
            f.write(json.dumps({k: v for k, v in rnd.to_dict().items() if k != "matrix"}, default=str) + "\n")
        if rnd.matrix is not None:
            np.savez(self.log_dir / f"hetdps_round_{rnd.update:07d}.npz", matrix=rnd.matrix,
                     labels=np.asarray(rnd.labels), noise_floor=rnd.noise_floor)
