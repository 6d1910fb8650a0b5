"""``hetero train``: its flags (1:1 with :class:`TrainConfig` and, for the off-policy algos,
``OffPolicyConfig``), in argument groups, and its handler :func:`run_train`.

``hetero.cli`` owns the command line and its dispatch; it registers ``train`` with
:func:`add_train_arguments` and :func:`run_train`. This module hands off-policy runs to
``marl_backends.offpolicy.cli`` (which never imports this one: no import circle).

``--resume RUN_DIR`` (or one of its checkpoint files) continues a run: the newest intact
checkpoint, a damaged ``checkpoint.pt`` skipped with a note; a run with no checkpoint yet starts
again from iteration 0 with its config.json. Only flags that do not change the experiment
(``RESUME_OVERRIDABLE``) may be given with it. SIGINT / SIGTERM stop a run after the iteration in
progress, with a checkpoint and the resume command (:mod:`marl_backends.trainers.interrupt`).
A run folder has one writer at a time (:class:`~marl_backends.trainers.run_lock.RunLock`, held from
its creation or ``--resume`` to the end); ``--resume`` refuses a checkpoint of another run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path

from hetero.errors import RunInterrupted, UsageError, usage_errors
from hetero.runinfo import versions
from marl_backends.offpolicy.cli import (add_offpolicy_arguments, is_offpolicy_run, offpolicy_flags, prepare_offpolicy,
                                         train_loop)
from marl_backends.offpolicy.config import ABLATION
from marl_backends.trainers.checkpoint import make_trainer, read_onpolicy_checkpoint, trainer_from_checkpoint
from marl_backends.trainers.config import ALGO_ONLY, ALGOS, HETDPS_FIELDS, RESUME_OVERRIDABLE, TrainConfig
from marl_backends.trainers.dataclass_cli import add_dataclass_arguments, given_fields
from marl_backends.trainers.interrupt import GracefulStop
from marl_backends.trainers.loop import train
from marl_backends.trainers.recovery import check_same_run, resume_target
from marl_backends.trainers.run_lock import RunLock, holds_no_run
from marl_backends.trainers.run_io import check_out_dir, default_run_name, make_run_dir, write_json

__all__ = ["ALL_ALGOS", "RESUME_OVERRIDABLE", "add_train_arguments", "run_train"]

ALL_ALGOS = ALGOS + tuple(ABLATION)

# --help groups: TrainConfig fields by topic; fields not listed (e.g. added later) go to "algorithm"
ARGUMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "environment": ("env", "num_envs", "continuous", "seed", "frames"),
    "algorithm and networks": ("algo", "sharing", "hidden", "activation", "feature_norm", "layer_norm", "lr",
                               "critic_lr", "adam_eps", "gamma", "max_grad_norm"),
    "PPO family (--algo mappo | happo | hamdpo)": (
        "rollout_steps", "ppo_epochs", "num_minibatches", "critic_epochs", "critic_minibatches", "clip",
        "entropy_coef", "gae_lambda", "value_loss_coef", "huber_delta", "clipped_value_loss", "value_norm",
        "normalize_advantages", "actor_gain", "std_x_coef", "std_y_coef", "reward", "happo_shared", "mdpo_kl_coef",
        "mdpo_kl_anneal"),
    "HetDPS (--sharing hetdps[:INIT])": HETDPS_FIELDS,
    "logging and checkpointing": ("eval_interval", "eval_episodes", "checkpoint_interval", "out_dir", "run_name",
                                  "device", "threads", "progress", "log_interval", "tensorboard", "wandb",
                                  "wandb_project"),
}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every :class:`TrainConfig` field as ``--field-name`` in its argument group, the off-policy
    group, and ``--resume RUN_DIR``."""
    parser.usage = ("%(prog)s [--env ENV] [--algo ALGO] [--sharing SHARING] [--frames N] [options]\n"
                    "       %(prog)s --resume RUN_DIR [--frames N] [options]")
    listed = {f for names in ARGUMENT_GROUPS.values() for f in names}
    rest = tuple(f.name for f in fields(TrainConfig) if f.name not in listed)
    for title, names in ARGUMENT_GROUPS.items():
        group = parser.add_argument_group(title)
        if title.startswith("algorithm"):
            names = names + rest
        add_dataclass_arguments(group, TrainConfig, skip=tuple(f.name for f in fields(TrainConfig) if f.name not in names))
        if title.startswith("logging"):
            group.add_argument("--resume", metavar="RUN_DIR", default=None,
                               help="continue the run in RUN_DIR (or from one of its checkpoint files) with the same "
                                    "numbers as an uninterrupted run; a damaged checkpoint.pt falls back to the newest "
                                    "intact checkpoints/iter_*.pt")
            group.add_argument("--ignore-memory-check", action="store_true",
                               help="start even when the up-front memory estimate (rollouts and updates of "
                                    "--num-envs, or the replay buffer of --buffer-size) exceeds the memory "
                                    "available here")
    add_offpolicy_arguments(parser)
    for action in parser._actions:  # noqa: SLF001 - the --algo help lists every algo, not only TrainConfig's
        if action.dest == "algo":
            action.help = f"{' | '.join(ALL_ALGOS)} (default: 'mappo')"
        elif action.dest == "env":
            action.help = action.help.replace("%", "%%")


def run_train(args: argparse.Namespace, env_factory=None) -> Path:  # noqa: ANN001
    """Train as the parsed flags say; returns the run folder.

    Input errors raise :class:`UsageError` before anything is written; SIGINT / SIGTERM raise
    :class:`RunInterrupted` after saving the checkpoint of the iteration in progress."""
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    with ExitStack() as locks:  # the run folder's writer lock, until the run ends
        with usage_errors():
            check_train_flags(args, env_factory, probe=not getattr(args, "ignore_memory_check", False))
            tb_note = _check_tensorboard(args)
            if is_offpolicy_run(args):
                trainer, eval_env, run, run_dir, iteration = prepare_offpolicy(args, env_factory, say, locks)
                go = lambda stop: train_loop(trainer, eval_env, run, run_dir, iteration, stop=stop)  # noqa: E731
            else:
                trainer, run_dir = _prepare_onpolicy(args, env_factory, say, locks)
                go = lambda stop: train(trainer, run_dir, stop=stop)  # noqa: E731
        if tb_note:
            say(tb_note)
        stop = GracefulStop()
        try:
            with stop:
                go(stop)
        except KeyboardInterrupt:  # a second signal: stopped at once, without a checkpoint
            stop.stopped_at = _iteration(trainer)
            raise _interrupted(stop, trainer, run_dir, saved=False) from None
        if stop.stopped_at is not None:
            raise _interrupted(stop, trainer, run_dir, saved=True)
    print(f"run folder: {run_dir}", file=sys.stderr)
    return run_dir


def _iteration(trainer) -> int:  # noqa: ANN001
    return int(getattr(trainer, "iteration", 0) or 0)


def _interrupted(stop: GracefulStop, trainer, run_dir: Path, saved: bool) -> RunInterrupted:  # noqa: ANN001
    frames = getattr(trainer, "frames", None)
    frames = trainer.env_steps if frames is None else frames
    return RunInterrupted(stop.signame or "SIGINT", stop.signum or 2, run_dir, stop.stopped_at or 0, int(frames),
                          saved, f"hetero train --resume {run_dir}")


def _prepare_onpolicy(args: argparse.Namespace, env_factory, say, locks: ExitStack):  # noqa: ANN001, ANN202
    """(trainer, run folder) of a new or resumed on-policy run; config.json written, the folder's
    writer lock entered into ``locks``."""
    given = given_fields(args, TrainConfig)
    if getattr(args, "resume", None):
        run_dir, file = resume_target(args.resume)
        bad = sorted(set(given) - set(RESUME_OVERRIDABLE)) + [k for k in offpolicy_flags() if getattr(args, k, None)
                                                              is not None]
        if bad:
            raise UsageError(f"--resume continues the run as configured in {run_dir / 'config.json'}; "
                             f"--{bad[0].replace('_', '-')} cannot be changed (allowed with --resume: "
                             f"{', '.join('--' + k.replace('_', '-') for k in RESUME_OVERRIDABLE)}).")
        locks.enter_context(RunLock(run_dir))
        obj, path, note = read_onpolicy_checkpoint(file or run_dir)
        if obj is not None:
            check_same_run(obj, path, run_dir)
        if note:
            say(f"note: {note}")
        if obj is None:  # killed before its first checkpoint: start again from its config.json
            saved = json.loads((run_dir / "config.json").read_text())
            names = {f.name for f in fields(TrainConfig)}
            cfg = TrainConfig.from_dict({k: v for k, v in saved.items() if k in names}).replace(**given)
            trainer = make_trainer(cfg, env_factory)
            say(f"note: {run_dir} has no checkpoint (the run stopped before its first one); starting it again "
                "from iteration 0 with its config.json.")
        else:
            trainer = trainer_from_checkpoint(obj, env_factory, **given)
            say(f"resuming {run_dir} at iteration {trainer.iteration} ({trainer.frames} frames)")
    else:
        cfg = TrainConfig(**given)
        check_out_dir(cfg.out_dir)
        if cfg.run_name and (Path(cfg.out_dir) / cfg.run_name).exists() and not holds_no_run(
                Path(cfg.out_dir) / cfg.run_name):
            path = Path(cfg.out_dir) / cfg.run_name
            raise UsageError(f"--run-name {cfg.run_name}: {path} already exists; continue it with "
                             f"`hetero train --resume {path}`, or pick another --run-name (without one the "
                             "folder name gets a time stamp).")
        trainer = make_trainer(cfg, env_factory)
        name = cfg.run_name or default_run_name(cfg.env, cfg.algo, cfg.sharing_resolved, cfg.seed)
        run_dir = make_run_dir(cfg.out_dir, name, exact=bool(cfg.run_name))
        locks.enter_context(RunLock(run_dir))
    cfg = trainer.cfg
    if cfg.frames % cfg.batch_frames:
        say(f"note: --frames {cfg.frames} is not a whole number of iterations ({cfg.batch_frames} frames each: "
            f"--num-envs x --rollout-steps); training {cfg.iterations * cfg.batch_frames} frames.")
    _write_config(run_dir, trainer)
    return trainer, run_dir


def check_train_flags(args: argparse.Namespace, env_factory=None, probe: bool = False) -> None:  # noqa: ANN001
    """Every check ``hetero train`` makes on its flags before building anything (raises
    :class:`UsageError`), so a sweep can refuse a bad grid point before its first run starts.
    ``probe``: also check the layout and the memory estimate (unless --ignore-memory-check) on a
    1-env copy of the env (:mod:`marl_backends.trainers.preflight`)."""
    from marl_backends.envs.registry import check_env_name
    from marl_backends.trainers import preflight

    memory = not getattr(args, "ignore_memory_check", False)
    with usage_errors():
        _check_algo_flags(args)
        if getattr(args, "resume", None):
            return
        if is_offpolicy_run(args):
            from marl_backends.offpolicy.build import RUN_DEFAULTS, resolve_hetdps
            from marl_backends.offpolicy.cli import _settings

            run, own = _settings(args)
            run = {**RUN_DEFAULTS, **run}
            resolve_hetdps(run)
            cfg = ABLATION[run["algo"]](**{"hidden": run["hidden"], "critic_lr": run["critic_lr"], **own})
            if probe:
                preflight.check_offpolicy(run, cfg, env_factory, memory)
            elif env_factory is None:
                check_env_name(run["env"])
        else:
            cfg = TrainConfig(**given_fields(args, TrainConfig))
            if probe:
                preflight.check_onpolicy(cfg, env_factory, memory)
            elif env_factory is None:
                check_env_name(cfg.env)


def _check_algo_flags(args: argparse.Namespace) -> None:
    """Refuse flags the chosen algo would silently ignore (the off-policy side checks its own)."""
    algo = getattr(args, "algo", None)
    if algo is not None and algo not in ALL_ALGOS:
        raise UsageError(f"unknown --algo {algo!r}; expected one of {' | '.join(ALL_ALGOS)}.")
    if getattr(args, "resume", None) or algo in ABLATION:
        return
    algo = algo or TrainConfig.algo
    foreign = [k for k in offpolicy_flags() if getattr(args, k, None) is not None]
    if foreign:
        raise UsageError(f"--{foreign[0].replace('_', '-')} is an off-policy flag; it has no meaning for --algo {algo} "
                         f"(off-policy algos: {' | '.join(ABLATION)}).")
    for name, algos in ALGO_ONLY.items():
        if getattr(args, name, None) is not None and algo not in algos:
            raise UsageError(f"--{name.replace('_', '-')} only applies to --algo {' | '.join(algos)}, not {algo}; "
                             "drop it or change --algo.")
    sharing = getattr(args, "sharing", None) or ""
    hetdps = [k for k in HETDPS_FIELDS if getattr(args, k, None) is not None]
    if hetdps and not sharing.strip().lower().startswith("hetdps"):
        raise UsageError(f"--{hetdps[0].replace('_', '-')} configures HetDPS, but --sharing is "
                         f"{sharing or 'the algo default'!r}, a static layout; add --sharing hetdps[:INIT] or drop "
                         f"--{hetdps[0].replace('_', '-')}.")


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _check_tensorboard(args: argparse.Namespace) -> str | None:
    """``--tensorboard`` without the package is an error; for the default (on) the note to print."""
    if tensorboard_installed() or getattr(args, "tensorboard", None) is False:
        return None
    if getattr(args, "tensorboard", None) is True:
        raise UsageError("--tensorboard needs the tensorboard package: pip install -c constraints.txt -e '.[tensorboard]' "
                         "(or drop --tensorboard).")
    if getattr(args, "resume", None):
        return None
    return ("note: tensorboard is not installed, so no TensorBoard events are written (metrics.csv has every "
            "metric); pip install -c constraints.txt -e '.[tensorboard]', or --no-tensorboard to silence this.")


def _write_config(run_dir: Path, trainer) -> None:  # noqa: ANN001
    cfg = trainer.cfg
    write_json(run_dir / "config.json", {
        **cfg.to_dict(),
        "resolved": {"sharing": cfg.sharing_resolved, "reward": cfg.reward_resolved, "layout": list(trainer.layout),
                     "append_id": trainer.sharing.append_id, "iterations": cfg.iterations,
                     "batch_frames": cfg.batch_frames},
        "env_spec": {k: v for k, v in vars(trainer.spec).items()},
        "versions": versions(),
        "command": " ".join(sys.argv),
    })
