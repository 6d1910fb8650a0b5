"""Trainer construction, atomic checkpoints and ``load_trainer`` (resume and quantification).

``run_dir/checkpoint.pt`` always holds the latest state (written tmp + ``os.replace``);
``run_dir/checkpoints/iter_XXXXXX.pt`` keeps one file per checkpoint interval so that policies
can be compared across training (Policy-Het evolution). A checkpoint stores the config, network
and optimiser state (layout included), value normalisation, RNG states and counters: resuming
continues with the same numbers as an uninterrupted run. With ``--sharing hetdps`` the trainer
carries a :class:`hetero.HetDPS` (``trainer.hetdps``) whose round history and gathered sample
pool are checkpointed too, so ``--resume`` continues with the same layout and round history.
Checkpoints hold plain data only and load weights-only (:mod:`marl_backends.trainers.safe_checkpoint`).
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.hamdpo import HAMDPOTrainer
from marl_backends.trainers.happo import HAPPOTrainer
from marl_backends.trainers.mappo import MAPPOTrainer
from marl_backends.trainers.onpolicy import EnvFactory, OnPolicyTrainer
from marl_backends.trainers.recovery import read_checkpoint, run_identity
from marl_backends.trainers.run_io import atomic_torch_save
from marl_backends.trainers.safe_checkpoint import FORMAT, encode

TRAINERS: dict[str, type[OnPolicyTrainer]] = {"mappo": MAPPOTrainer, "happo": HAPPOTrainer, "hamdpo": HAMDPOTrainer}
CHECKPOINT_VERSION = FORMAT  # 2 since 0.3.0: plain data, loaded weights-only


def make_trainer(cfg: TrainConfig, env_factory: EnvFactory | None = None) -> OnPolicyTrainer:
    """The trainer for ``cfg.algo`` (envs from the registry unless ``env_factory`` is given);
    with ``--sharing hetdps`` it gets its HetDPS controller as ``trainer.hetdps``."""
    trainer = TRAINERS[cfg.algo](cfg, env_factory)
    trainer.hetdps = build_hetdps(trainer, cfg) if cfg.dynamic_sharing else None
    return trainer


def build_hetdps(trainer, cfg: TrainConfig):  # noqa: ANN001, ANN201
    """The HetDPS controller (with the grouper ``cfg.grouper``) for a trainer, from the config.

    ``cfg`` is a :class:`TrainConfig` or any object with its ``HETDPS_FIELDS`` plus ``seed`` and
    ``device`` (the off-policy CLI passes such a view); model-based kinds use ``trainer.env.model``."""
    from hetero.baselines import MADPSGrouper, SePSGrouper
    from hetero.hetdps import HETDPS_QUANTIFY, HetDPS, HetDPSConfig

    qcfg = replace(HETDPS_QUANTIFY, train_samples=cfg.hetdps_samples, eval_samples=max(1, cfg.hetdps_samples // 2),
                   device=cfg.device)
    hcfg = HetDPSConfig(kind=cfg.hetdps_kind, interval=cfg.hetdps_interval, merge=cfg.merge,
                        pool_rollouts=cfg.hetdps_rollouts, no_structure=cfg.hetdps_no_structure, quantify=qcfg,
                        seed=cfg.seed, on_error="warn")  # a long run outlives one failed round (logged)
    grouper = None
    if cfg.grouper == "seps":
        grouper = SePSGrouper(cfg.seps_k, samples=cfg.seps_samples, seed=cfg.seed)
    elif cfg.grouper == "madps":
        grouper = MADPSGrouper(cfg.madps_fusion, cfg.madps_division, qcfg, seed=cfg.seed)
    return HetDPS(trainer, hcfg, model=getattr(trainer.env, "model", None), grouper=grouper)


def save_checkpoint(trainer: OnPolicyTrainer, run_dir: str | Path, keep: bool = True) -> Path:
    """Write ``checkpoint.pt`` (and ``checkpoints/iter_*.pt`` if ``keep``) atomically."""
    run_dir = Path(run_dir)
    cfg = trainer.cfg
    obj = {"version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "trainer": trainer.state_dict(),
           "identity": run_identity({**cfg.to_dict(), "resolved": {"sharing": cfg.sharing_resolved}})}
    if getattr(trainer, "hetdps", None) is not None:
        obj["hetdps"] = trainer.hetdps.state_dict()
    obj = encode(obj)
    path = run_dir / "checkpoint.pt"
    atomic_torch_save(obj, path)
    if keep:
        atomic_torch_save(obj, run_dir / "checkpoints" / f"iter_{trainer.iteration:06d}.pt")
    return path


def check_version(obj: dict, path: Path) -> None:
    """ValueError unless ``obj`` (loaded from ``path``) is an on-policy checkpoint of this version."""
    if "kind" in obj or obj.get("version") != CHECKPOINT_VERSION:
        what = "an off-policy checkpoint" if "kind" in obj else f"checkpoint version {obj.get('version')}"
        raise ValueError(f"{path}: {what} cannot be loaded as an on-policy checkpoint "
                         f"(version {CHECKPOINT_VERSION}).")


def read_onpolicy_checkpoint(path: str | Path) -> tuple[dict | None, Path | None, str | None]:
    """(checkpoint, file, note) of a run folder (its newest intact checkpoint; None if it has none)
    or of a checkpoint file; see :func:`marl_backends.trainers.recovery.read_checkpoint`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a run folder written by `hetero train` "
                                "or a checkpoint file (checkpoints/iter_*.pt).")
    return read_checkpoint(path, check_version)


def trainer_from_checkpoint(obj: dict, env_factory: EnvFactory | None = None, **overrides) -> OnPolicyTrainer:  # noqa: ANN003
    """Rebuild a trainer (config, networks, optimisers, RNGs, HetDPS state) from a loaded checkpoint."""
    cfg = TrainConfig.from_dict(obj["config"]).replace(**overrides)
    trainer = make_trainer(cfg, env_factory)
    trainer.load_state_dict(obj["trainer"])
    if getattr(trainer, "hetdps", None) is not None and "hetdps" in obj:
        trainer.hetdps.load_state_dict(obj["hetdps"])
    return trainer


def load_trainer(run_dir: str | Path, env_factory: EnvFactory | None = None, **overrides) -> OnPolicyTrainer:  # noqa: ANN003
    """Rebuild a trainer from a run folder (its ``checkpoint.pt``, or the newest intact
    ``checkpoints/iter_*.pt`` when that one is damaged, with a note on stderr) or a checkpoint file.

    ``overrides`` replace config fields that do not change the model (e.g. ``device``,
    ``frames``, ``progress``). ``trainer.policy_distributions(obs)`` then gives the trained
    policies' action distributions."""
    obj, _, note = read_onpolicy_checkpoint(run_dir)
    if obj is None:
        raise FileNotFoundError(f"{note}; there are no trained policies to load yet.")
    if note:
        print(f"note: {note}", file=sys.stderr)
    return trainer_from_checkpoint(obj, env_factory, **overrides)
