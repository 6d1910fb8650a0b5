"""``hetero train``: flags (1:1 with :class:`TrainConfig`), run folder, resume.

``add_train_arguments(parser)`` adds the flags; ``run_train(args)`` trains and returns the run
folder. ``--resume RUN_DIR`` continues a run from its last checkpoint; only flags that do not
change the experiment (frames, eval/checkpoint intervals, progress, threads, device,
tensorboard) may be given with it. Also runnable as ``python -m marl_backends.trainers.cli``.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from marl_backends.trainers.checkpoint import load_trainer, make_trainer
from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.dataclass_cli import add_dataclass_arguments, given_fields
from marl_backends.trainers.loop import train
from marl_backends.trainers.run_io import default_run_name, make_run_dir, write_json

RESUME_OVERRIDABLE = ("frames", "eval_interval", "eval_episodes", "checkpoint_interval", "progress", "threads",
                      "device", "tensorboard", "wandb", "wandb_project")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every :class:`TrainConfig` field as ``--field-name`` plus ``--resume RUN_DIR``."""
    add_dataclass_arguments(parser, TrainConfig)
    # --- off-policy hook (matd3 / omdpg; owned by marl_backends/offpolicy/cli.py) ---
    from marl_backends.offpolicy.cli import add_offpolicy_arguments
    add_offpolicy_arguments(parser)
    # --- end off-policy hook ---
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its checkpoint.pt (same numbers as an uninterrupted run)")


def run_train(args: argparse.Namespace, env_factory=None) -> Path:  # noqa: ANN001
    """Train as the parsed flags say; returns the run folder."""
    # --- off-policy hook (matd3 / omdpg; owned by marl_backends/offpolicy/cli.py) ---
    from marl_backends.offpolicy.cli import is_offpolicy_run, run_offpolicy_train
    if is_offpolicy_run(args):
        return run_offpolicy_train(args, env_factory)
    # --- end off-policy hook ---
    given = given_fields(args, TrainConfig)
    if getattr(args, "resume", None):
        run_dir = Path(args.resume)
        bad = sorted(set(given) - set(RESUME_OVERRIDABLE))
        if bad:
            raise ValueError(f"--resume continues the run as configured in {run_dir / 'config.json'}; "
                             f"--{bad[0].replace('_', '-')} cannot be changed (allowed with --resume: "
                             f"{', '.join('--' + k.replace('_', '-') for k in RESUME_OVERRIDABLE)}).")
        trainer = load_trainer(run_dir, env_factory, **given)
        if given:
            _write_config(run_dir, trainer)
        print(f"resuming {run_dir} at iteration {trainer.iteration} ({trainer.frames} frames)", file=sys.stderr)
    else:
        cfg = TrainConfig(**given)
        trainer = make_trainer(cfg, env_factory)
        name = cfg.run_name or default_run_name(cfg.env, cfg.algo, cfg.sharing_resolved, cfg.seed)
        run_dir = make_run_dir(cfg.out_dir, name)
        _write_config(run_dir, trainer)
    train(trainer, run_dir)
    print(f"run folder: {run_dir}", file=sys.stderr)
    return run_dir


def _write_config(run_dir: Path, trainer) -> None:  # noqa: ANN001
    cfg = trainer.cfg
    write_json(run_dir / "config.json", {
        **cfg.to_dict(),
        "resolved": {"sharing": cfg.sharing_resolved, "reward": cfg.reward_resolved, "layout": list(trainer.layout),
                     "append_id": trainer.sharing.append_id, "iterations": cfg.iterations,
                     "batch_frames": cfg.batch_frames},
        "env_spec": {k: v for k, v in vars(trainer.spec).items()},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "command": " ".join(sys.argv),
    })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hetero train", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_train(args)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
