"""HetDPS: heterogeneity-based dynamic parameter sharing around any SharingTrainer (Sec. 5, Alg. 1).

Every ``interval`` updates: quantify the chosen kind (Meta-Het by default) on the trainer's recent
samples, cluster with Affinity Propagation checked by the structure test, match the clusters against the
current layout (overlap + Hungarian) and let the trainer apply the resulting RegroupPlan
(relabel / split / merge). The first round starts from whatever paradigm the trainer has (FPS,
NPS or static groups): matching against that layout is exactly Alg. 1's "assign networks,
copy parameters as needed" (lines 12-14); later rounds are lines 16-24.

The heterogeneity sample pool (Alg. 1 line 5) accumulates the trainer's last ``pool_rollouts``
sample pools before each round, so a round sees more than one batch of data without the cost of
keeping everything.

What a round measures. A grouping read off the agents' *current policies* feeds back on itself:
the policies are shaped by the layout the grouping chose, so a first grouping of barely trained
networks is locked in. A round therefore measures, by default, the most informative quantity that
does not depend on the current policies: the meta-transition (App. G) evaluated model-based where
the env can evaluate every agent's function at one input (identical agents give exactly 0,
whatever the agents do), else learned model-free with the env's own state S^E in the condition and
the behaviour-invariant swap test (overlap weights, hetero/overlap.py), so that agents which only
act differently are not told apart. Only where the pool carries no S^E does the model-free measure
see the agents' functions through their behaviour; each round logs which measure it used
(``info["measure"]``) and whether it depends on the policies.

Acting on a grouping. A model-based round's answer is a property of the env, so it is applied at
once. A model-free round's grouping is a noisy estimate; with ``confirm`` it is applied only when
the round before proposed the same partition (two independent pools, two CVAE seeds), so one
unlucky round cannot merge networks across true groups (from NPS, every first round that finds
structure merges). When the structure test finds no pair of agents that differs beyond noise,
``no_structure`` decides: "keep" (default: no evidence either way, leave the layout) or "merge"
(read "no structure" as "homogeneous" and share one network).

Schedule. The first round runs at update ``first_round`` (1 by default: the measure does not need
trained policies), then every ``interval`` updates; no round runs at the last update (there is no
training left to use it).

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

from hetero.cvae import HETDPS_CVAE, CVAEConfig
from hetero.grouping import MERGE_MODES, canonical, group, match
from hetero.plan import RegroupPlan
from hetero.protocols import ModelAccess, SharingTrainer
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool

NO_STRUCTURE = ("merge", "keep")

# A round's quantification: smaller than the CLI's (online cost), the first release's CVAE for
# model-free fits (measured with it), the CLI's CVAE for model-based ones (the fit `hetero quantify`
# calibrates; half the cost of the first release's), the behaviour-invariant swap test and Meta-Het
# conditioned on S^E (the module docstring says why). Trainers and the BenchMARL callback derive theirs from it.
HETDPS_QUANTIFY = QuantifyConfig(train_samples=1000, eval_samples=500, cvae=HETDPS_CVAE, reweight=True,
                                 meta_condition="env", model_based_cvae=CVAEConfig())
ON_ERROR = ("raise", "warn")


@dataclass(frozen=True)
class HetDPSConfig:
    """Attributes:
        kind: heterogeneity kind that drives the grouping (meta by default: model-based where the
            env evaluates it, else model-free on (s_i, a_i, S^E); any kind works).
        interval: trainer updates between two regrouping rounds (paper Table 6: insensitive
            between 20 and 2000).
        first_round: the update of the first round (1: right after the first rollout, since the
            default measure does not depend on the policies); later rounds every ``interval``.
        confirm: apply a model-free round's grouping only when the round before proposed the
            same partition (a model-based round acts at once).
        merge: merge mode when networks merge: majority | random | average | weighted.
        pool_rollouts: the heterogeneity sample pool holds the trainer's last this many sample
            pools (Alg. 1 line 5); they are gathered in the updates just before a round.
        no_structure: what a model-free round that finds nothing beyond its noise floor does:
            "keep" (leave the layout as it is; default) or "merge" (one group). A model-based
            round of an env kind that finds no structure has measured identical functions: it merges.
        quantify: settings of each round's quantification (:data:`HETDPS_QUANTIFY`: smaller than
            the CLI's defaults, to keep the online overhead low).
        seed: base seed; round k uses seed + k.
        on_error: what a round that fails (e.g. on a malformed sample pool) does: "raise" (default,
            so a wrong pool is found at the first round instead of freezing the layout) or "warn"
            (warn, log the error in the round and keep the layout; our trainers' ``--sharing hetdps``
            uses this, so one bad round cannot end a long run).
    """

    kind: str = "meta"
    interval: int = 50
    first_round: int = 1
    confirm: bool = True
    merge: str = "majority"
    pool_rollouts: int = 4
    no_structure: str = "keep"
    quantify: QuantifyConfig = HETDPS_QUANTIFY  # frozen, so one shared default is safe
    seed: int = 0
    on_error: str = "raise"

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"HetDPSConfig.interval={self.interval}; it must be a positive number of updates.")
        if self.first_round < 1:
            raise ValueError(f"HetDPSConfig.first_round={self.first_round}; it must be an update >= 1.")
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


def _add_note(info: dict, text: str) -> None:
    info["note"] = f"{info['note']}; {text}" if info.get("note") else text


def describe_measure(kind: str, mode: str, cfg: QuantifyConfig, pool: SamplePool) -> tuple[str, bool]:
    """(what a round measured, whether it is independent of the agents' current policies)."""
    if kind == "policy":
        return "Policy-Het of the current policies", False
    if mode == "model-based":
        return f"{kind} model-based (every agent's function at the same inputs)", True
    if kind == "meta" and cfg.meta_condition == "env" and pool.env_state is not None:
        return "meta model-free on (s_i, a_i, S^E), behaviour-invariant test" if cfg.reweight else \
            "meta model-free on (s_i, a_i, S^E)", cfg.reweight
    return (f"{kind} model-free without the env state S^E: differences that depend on S^E reach it only "
            "through the current policies' behaviour"), False


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
        measure, independent = describe_measure(self.kind, res.mode, cfg, pool)
        info = {"matrix": res.matrix, "noise_floor": res.noise_floor, "mode": res.mode,
                "grouping": groups.method, "note": groups.note, "p_value": res.p_value,
                "quantify_s": res.timings["quantify_s"], "measure": measure, "policy_independent": independent,
                "found": list(groups.labels)}
        exact = res.mode == "model-based" and self.kind != "policy"  # identical functions give exactly 0
        if self.no_structure == "keep" and not exact and res.test is not None and not res.test.structure:
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
        self.pending: tuple[int, ...] | None = None  # a model-free grouping awaiting confirmation

    # --- the online loop -----------------------------------------------------------------------
    def to_round(self, update: int) -> int:
        """Updates from ``update`` to the next scheduled round (0: a round is due now)."""
        first, every = self.cfg.first_round, self.cfg.interval
        return first - update if update < first else (first - update) % every

    def after_update(self, update: int, last: int | None = None) -> RegroupRound | None:
        """Gather the pool in the last ``pool_rollouts`` updates before a round; regroup on schedule.

        ``last`` is the run's final update: no round runs there (nothing would train on it). The pool
        is still gathered, so a run extended on resume gathers what an unbroken run would."""
        if update < 1:
            return None
        to_round = self.to_round(update)
        if to_round < self.cfg.pool_rollouts:
            self.pools = (self.pools + [self.trainer.sample_pool()])[-self.cfg.pool_rollouts:]
        if to_round == 0 and (last is None or update < last):
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
        labels = self._confirmed(labels, old, info)
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

    def _confirmed(self, labels, old: tuple[int, ...], info: dict):  # noqa: ANN001
        """With ``confirm``, hold a model-free round's new grouping until the next round proposes it again."""
        if labels is None or canonical(labels) == canonical(old):
            self.pending = None  # nothing new proposed: a held grouping is not confirmed
            return labels
        if not self.cfg.confirm or info.get("mode") != "model-free":
            return labels
        new = canonical(labels)
        if new != self.pending:
            self.pending = new
            _add_note(info, f"proposed {len(set(new))} group(s), held until the next round proposes the same "
                            "grouping (confirm)")
            info["proposed"] = list(new)
            return None
        self.pending = None
        _add_note(info, "confirmed by the round before")
        return labels

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
                 "history": [r.to_dict() for r in self.history], "pools": [asdict(p) for p in self.pools],
                 "pending": None if self.pending is None else list(self.pending)}
        if hasattr(self.grouper, "state_dict"):
            state["grouper_state"] = self.grouper.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("grouper") != self.grouper.name:
            raise ValueError(f"checkpoint's HetDPS state is for grouper {state.get('grouper')!r}, "
                             f"not {self.grouper.name!r}; resume with the same --grouper.")
        self.history = [RegroupRound.from_dict(r) for r in state["history"]]
        self.pools = [SamplePool(**p) for p in state.get("pools", [])]
        self.pending = None if state.get("pending") is None else tuple(state["pending"])
        if "grouper_state" in state and hasattr(self.grouper, "load_state_dict"):
            self.grouper.load_state_dict(state["grouper_state"])
