"""Trainer construction, atomic checkpoints and ``load_trainer`` (resume and quantification).

``run_dir/checkpoint.pt`` always holds the latest state (written tmp + ``os.replace``);
``run_dir/checkpoints/iter_XXXXXX.pt`` keeps one file per checkpoint interval so that policies
can be compared across training (Policy-Het evolution). A checkpoint stores the config, network
and optimiser state (layout included), value normalisation, RNG states and counters: resuming
continues with the same numbers as an uninterrupted run.
"""
from __future__ import annotations

from pathlib import Path

import torch

from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.hamdpo import HAMDPOTrainer
from marl_backends.trainers.happo import HAPPOTrainer
from marl_backends.trainers.mappo import MAPPOTrainer
from marl_backends.trainers.onpolicy import EnvFactory, OnPolicyTrainer
from marl_backends.trainers.run_io import atomic_torch_save

TRAINERS: dict[str, type[OnPolicyTrainer]] = {"mappo": MAPPOTrainer, "happo": HAPPOTrainer, "hamdpo": HAMDPOTrainer}
CHECKPOINT_VERSION = 1


def make_trainer(cfg: TrainConfig, env_factory: EnvFactory | None = None) -> OnPolicyTrainer:
    """The trainer for ``cfg.algo`` (envs from the registry unless ``env_factory`` is given)."""
    return TRAINERS[cfg.algo](cfg, env_factory)


def save_checkpoint(trainer: OnPolicyTrainer, run_dir: str | Path, keep: bool = True) -> Path:
    """Write ``checkpoint.pt`` (and ``checkpoints/iter_*.pt`` if ``keep``) atomically."""
    run_dir = Path(run_dir)
    obj = {"version": CHECKPOINT_VERSION, "config": trainer.cfg.to_dict(), "trainer": trainer.state_dict()}
    path = run_dir / "checkpoint.pt"
    atomic_torch_save(obj, path)
    if keep:
        atomic_torch_save(obj, run_dir / "checkpoints" / f"iter_{trainer.iteration:06d}.pt")
    return path


def _checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoint.pt").exists():
            raise FileNotFoundError(f"{path} has no checkpoint.pt; pass a run folder written by `hetero train` "
                                    "or a checkpoint file (checkpoints/iter_*.pt).")
        return path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a run folder or a .pt file.")
    return path


def load_trainer(run_dir: str | Path, env_factory: EnvFactory | None = None, **overrides) -> OnPolicyTrainer:  # noqa: ANN003
    """Rebuild a trainer from a run folder (its ``checkpoint.pt``) or a checkpoint file.

    ``overrides`` replace config fields that do not change the model (e.g. ``device``,
    ``frames``, ``progress``). ``trainer.policy_distributions(obs)`` then gives the trained
    policies' action distributions."""
    path = _checkpoint_path(run_dir)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if obj.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {obj.get('version')} is not supported (expected {CHECKPOINT_VERSION}).")
    cfg = TrainConfig.from_dict(obj["config"]).replace(**overrides)
    trainer = make_trainer(cfg, env_factory)
    trainer.load_state_dict(obj["trainer"])
    return trainer
