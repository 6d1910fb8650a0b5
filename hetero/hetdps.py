"""HetDPS: heterogeneity-based dynamic parameter sharing around any SharingTrainer (Sec. 5, Alg. 1).

Every ``interval`` updates: quantify the chosen kind (Meta-Het by default) on the trainer's recent
samples, cluster with Affinity Propagation checked by the structure test, match the clusters against the
current layout (overlap + Hungarian) and let the trainer apply the resulting RegroupPlan
(relabel / split / merge). The first round starts from whatever paradigm the trainer has (FPS,
NPS or static groups): matching against that layout is exactly Alg. 1's "assign networks,
copy parameters as needed" (lines 12-14); later rounds are lines 16-24.

The heterogeneity sample pool (Alg. 1 line 5) accumulates the trainer's last ``pool_rollouts``
sample pools before each round, so a round sees more than one batch of data without the cost of
keeping everything. When a round's structure test finds no pair of agents that differs beyond noise
(e.g. Meta-Het under near-random behaviour), ``no_structure`` decides: "keep" (default: no
evidence either way yet, so leave the layout until the data shows something) or "merge" (read
"no structure" as "homogeneous" and share one network). Measured on pms_15a_3c from NPS (seed 0,
160k frames, interval 10): "merge" collapsed to one group at the first, signal-free round and
had only 2 groups after 40 updates (return -101); "keep" found the exact colours at update 20
and kept them (return -58, FPS -99). Its cost: a homogeneous task started from NPS never merges.

The grouping step is a :class:`Grouper`, so the paper's baselines (Table 2) run on the same
interface: :class:`HetGrouper` (HetDPS), :class:`~hetero.baselines.SePSGrouper` and
:class:`~hetero.baselines.MADPSGrouper`.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from hetero.cvae import HETDPS_CVAE
from hetero.grouping import MERGE_MODES, group, match
from hetero.plan import RegroupPlan
from hetero.protocols import ModelAccess, SharingTrainer
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool

NO_STRUCTURE = ("merge", "keep")

# A round's quantification: smaller than the CLI's, the first release's CVAE and the plain swap test,
# the settings HetDPS's comparisons were measured with (README, HetDPS). Trainers and the BenchMARL
# callback derive theirs from it.
HETDPS_QUANTIFY = QuantifyConfig(train_samples=1000, eval_samples=500, cvae=HETDPS_CVAE, reweight=False)
ON_ERROR = ("raise", "warn")


@dataclass(frozen=True)
class HetDPSConfig:
    """Attributes:
        kind: heterogeneity kind that drives the grouping (meta by default; any kind works).
        interval: trainer updates between two regrouping rounds (paper Table 6: insensitive
            between 20 and 2000). 50 keeps a round's cost under 5% of training on pms_15a_3c
            with the default batch (bench/bench_hetdps.py: 0.905x of FPS at 25 on a loaded CPU).
        merge: merge mode when networks merge: majority | random | average | weighted.
        pool_rollouts: the heterogeneity sample pool holds the trainer's last this many sample
            pools (Alg. 1 line 5); they are gathered in the updates just before a round.
        no_structure: what a model-free round that finds nothing beyond its noise floor does:
            "keep" (leave the layout as it is; default) or "merge" (one group).
        quantify: settings of each round's quantification (:data:`HETDPS_QUANTIFY`: smaller than
            the CLI's defaults, to keep the online overhead low, and the plain swap test, with which
            HetDPS's comparisons were measured: on the NPS runs' checkpoints of pms_15a_3c the
            behaviour-invariant test gave groupings no closer to the colours, README, HetDPS).
        seed: base seed; round k uses seed + k.
        on_error: what a round that fails (e.g. on a malformed sample pool) does: "raise" (default,
            so a wrong pool is found at the first round instead of freezing the layout) or "warn"
            (warn, log the error in the round and keep the layout; our trainers' ``--sharing hetdps``
            uses this, so one bad round cannot end a long run).
    """

    kind: str = "meta"
    interval: int = 50
    merge: str = "majority"
    pool_rollouts: int = 4
    no_structure: str = "keep"
    quantify: QuantifyConfig = HETDPS_QUANTIFY  # frozen, so one shared default is safe
    seed: int = 0
    on_error: str = "raise"

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"HetDPSConfig.interval={self.interval}; it must be a positive number of updates.")
        if self.pool_rollouts < 1:
            raise ValueError(f"HetDPSConfig.pool_rollouts={self.pool_rollouts}; it must be >= 1.")
        if self.merge not in MERGE_MODES:
            raise ValueError(f"HetDPSConfig.merge={self.merge!r}; choose one of {', '.join(MERGE_MODES)}.")
        if self.no_structure not in NO_STRUCTURE:
            raise ValueError(f"HetDPSConfig.no_structure={self.no_structure!r}; choose merge or keep.")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"HetDPSConfig.on_error={self.on_error!r}; choose raise or warn.")


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

    @property
    def n_groups(self) -> int:
        return len(set(self.labels))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["matrix"] = None if self.matrix is None else np.asarray(self.matrix).tolist()
        return d

    @staticmethod
    def from_dict(d: dict) -> "RegroupRound":
        d = dict(d)
        d["labels"] = tuple(d["labels"])
        d["matrix"] = None if d.get("matrix") is None else np.asarray(d["matrix"], dtype=np.float64)
        return RegroupRound(**d)


class Grouper(Protocol):
    """Proposes new agent labels for a trainer (HetDPS, SePS, MADPS share this interface)."""

    name: str

    def propose(self, pool: SamplePool, trainer: SharingTrainer,
                round_index: int) -> tuple[tuple[int, ...] | None, dict]:
        """Return (labels, info); labels None means "leave the layout as it is"."""
        ...


class HetGrouper:
    """HetDPS's grouping (Alg. 1 lines 10-11): quantify ``kind``, cluster with its structure test."""

    name = "hetdps"

    def __init__(self, kind: str, cfg: QuantifyConfig, model: ModelAccess | None = None, seed: int = 0,
                 no_structure: str = "keep") -> None:
        self.kind, self.cfg, self.model, self.seed, self.no_structure = kind, cfg, model, seed, no_structure

    def propose(self, pool: SamplePool, trainer: SharingTrainer, round_index: int):
        cfg = replace(self.cfg, seed=self.seed + round_index)
        policy_fn = trainer.policy_distributions if self.kind == "policy" else None
        res = quantify(pool, self.kind, cfg, model=self.model, policy_fn=policy_fn)
        groups = group(res, seed=cfg.seed)
        info = {"matrix": res.matrix, "noise_floor": res.noise_floor, "mode": res.mode,
                "grouping": groups.method, "note": groups.note, "p_value": res.p_value,
                "quantify_s": res.timings["quantify_s"]}
        if self.no_structure == "keep" and res.test is not None and not res.test.structure:
            info["note"] = (f"structure test p = {res.p_value:.3g} >= alpha {res.test.alpha}: no pair of agents "
                            "differs beyond noise yet; layout kept (no_structure='keep')")
            return None, info
        return groups.labels, info


class HetDPS:
    """Drive a SharingTrainer's layout online (Alg. 1).

    Call ``after_update(update)`` after every trainer update: it gathers the heterogeneity sample
    pool in the ``pool_rollouts`` updates before a round and runs a round every ``interval``
    updates; ``regroup(update)`` forces one. ``history`` holds every round; with ``log_dir``
    each round is appended to ``hetdps_rounds.jsonl`` and its matrix saved as
    ``hetdps_round_<update>.npz``. ``state_dict`` / ``load_state_dict`` carry the round history
    and the pool gathered so far through checkpoints, so a resumed run continues identically.
    """

    def __init__(self, trainer: SharingTrainer, cfg: HetDPSConfig = HetDPSConfig(), model: ModelAccess | None = None,
                 grouper: Grouper | None = None, log_dir: str | Path | None = None, **overrides) -> None:  # noqa: ANN003
        """``overrides`` replace config fields: ``HetDPS(trainer, kind="meta", interval=200)``."""
        cfg = replace(cfg, **overrides) if overrides else cfg
        if not isinstance(trainer, SharingTrainer):
            raise TypeError(
                f"{type(trainer).__name__} does not implement hetero.SharingTrainer (layout, sample_pool, "
                "policy_distributions, apply_plan); add those methods to wrap it in HetDPS."
            )
        self.trainer, self.cfg = trainer, cfg
        self.grouper = grouper or HetGrouper(cfg.kind, cfg.quantify, model, cfg.seed, cfg.no_structure)
        self.log_dir = Path(log_dir) if log_dir else None
        self.history: list[RegroupRound] = []
        self.pools: list[SamplePool] = []

    # --- the online loop -----------------------------------------------------------------------
    def after_update(self, update: int) -> RegroupRound | None:
        """Gather the pool in the last ``pool_rollouts`` updates before a round; regroup on schedule."""
        if update < 1:
            return None
        to_round = (-update) % self.cfg.interval  # updates until the next round (0: now)
        if to_round < self.cfg.pool_rollouts:
            self.pools = (self.pools + [self.trainer.sample_pool()])[-self.cfg.pool_rollouts:]
        if to_round == 0:
            return self.regroup(update)
        return None

    def heterogeneity_pool(self) -> SamplePool:
        """The pool a round quantifies: the gathered pools, or the trainer's latest one."""
        if not self.pools:
            return self.trainer.sample_pool()
        return self.pools[0] if len(self.pools) == 1 else SamplePool.concat(self.pools)

    def regroup(self, update: int) -> RegroupRound:
        """One round (Alg. 1 lines 10-25). A failing round raises, or with ``on_error="warn"`` keeps the
        layout and logs why."""
        t0 = time.perf_counter()
        old = tuple(self.trainer.layout)
        try:
            labels, info = self.grouper.propose(self.heterogeneity_pool(), self.trainer, len(self.history))
        except Exception as e:  # noqa: BLE001 - on_error="warn": a bad round must never crash training
            if self.cfg.on_error == "raise":
                raise RuntimeError(
                    f"HetDPS round at update {update} failed ({type(e).__name__}: {e}). Fix the trainer's "
                    "sample_pool() (SamplePool.from_transitions builds a valid one), or pass "
                    "HetDPSConfig(on_error='warn') to log failed rounds and keep the layout.") from e
            labels, info = None, {"error": f"{type(e).__name__}: {e}"}
            warnings.warn(f"HetDPS round at update {update} failed ({info['error']}); layout kept.", stacklevel=2)
        self.pools = []
        if labels is None:
            labels = old
        plan = match(old, labels, merge=self.cfg.merge, seed=self.cfg.seed + len(self.history))
        if plan != RegroupPlan.identity(old):
            self.trainer.apply_plan(plan)
        matrix = info.pop("matrix", None)
        rnd = RegroupRound(update=update, labels=tuple(plan.layout), plan=plan.to_dict(),
                           seconds=time.perf_counter() - t0, matrix=None if matrix is None else np.asarray(matrix),
                           noise_floor=float(info.pop("noise_floor", 0.0)),
                           info={k: v for k, v in info.items() if v is not None and v != ""})
        self.history.append(rnd)
        self._log(rnd)
        return rnd

    def metrics(self) -> dict:
        """Entries for the trainer's metrics row: groups now, rounds so far, last round's seconds."""
        last = self.history[-1] if self.history else None
        return {"hetdps_groups": len(set(self.trainer.layout)), "hetdps_rounds": len(self.history),
                "hetdps_round_s": last.seconds if last else 0.0}

    # --- logs and checkpoints --------------------------------------------------------------------
    def attach_log(self, log_dir: str | Path) -> None:
        """Log to ``log_dir``; rewrites ``hetdps_rounds.jsonl`` from ``history`` (so a resumed run
        drops rounds logged after its last checkpoint)."""
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(self._line(r) for r in self.history)
        tmp = self.log_dir / ".hetdps_rounds.jsonl.tmp"
        tmp.write_text(lines)
        tmp.replace(self.log_dir / "hetdps_rounds.jsonl")

    @staticmethod
    def _line(rnd: RegroupRound) -> str:
        from hetero.runinfo import json_safe  # standard JSON: a non-finite floor is written as null

        return json.dumps(json_safe({k: v for k, v in rnd.to_dict().items() if k != "matrix"}), default=str) + "\n"

    def _log(self, rnd: RegroupRound) -> None:
        if self.log_dir is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "hetdps_rounds.jsonl", "a") as f:
            f.write(self._line(rnd))
        if rnd.matrix is not None:
            np.savez(self.log_dir / f"hetdps_round_{rnd.update:07d}.npz", matrix=rnd.matrix,
                     labels=np.asarray(rnd.labels), noise_floor=rnd.noise_floor)

    def state_dict(self) -> dict:
        state = {"config": asdict(self.cfg), "grouper": self.grouper.name,
                 "history": [r.to_dict() for r in self.history], "pools": [asdict(p) for p in self.pools]}
        if hasattr(self.grouper, "state_dict"):
            state["grouper_state"] = self.grouper.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("grouper") != self.grouper.name:
            raise ValueError(f"checkpoint's HetDPS state is for grouper {state.get('grouper')!r}, "
                             f"not {self.grouper.name!r}; resume with the same --grouper.")
        self.history = [RegroupRound.from_dict(r) for r in state["history"]]
        self.pools = [SamplePool(**p) for p in state.get("pools", [])]
        if "grouper_state" in state and hasattr(self.grouper, "load_state_dict"):
            self.grouper.load_state_dict(state["grouper_state"])
