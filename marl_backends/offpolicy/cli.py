"""``hetero train --algo matd3|omdpg|matd3-gqc|matd3-omq``: the off-policy side of ``hetero train``.

``marl_backends/trainers/cli.py`` owns the ``train`` flags; it calls :func:`add_offpolicy_arguments` to
add the off-policy flags (every :class:`OffPolicyConfig` field not already a ``TrainConfig``
flag, 1:1, e.g. ``--n-critics``, ``--pu-coef``, ``--beta``, ``--batch-size``, ``--n-step``) and
hands runs whose ``--algo`` is off-policy to :func:`run_offpolicy_train`.

Shared ``TrainConfig`` flags keep their meaning: ``--env --sharing --seed --frames --num-envs
--hidden --lr`` (actor) ``--critic-lr --gamma --eval-interval --eval-episodes
--checkpoint-interval --out-dir --run-name --device --threads --progress --tensorboard
--resume``. One iteration = ``train_interval`` vectorised env steps + its burst of updates.
Defaults that differ from the on-policy ones follow HARL Table 15: 10 envs, hidden 256,256,
critic lr 1e-3. Sharing defaults: omdpg / matd3-* use the env's groups when it knows them
(the paper's ParPS), matd3 uses nps. Actions: envs with both modes (VMAS: spread, PMS) train
continuous by default and discrete with ``--no-continuous``; discrete-only envs (SMAX, SMACv2)
train discrete (one-hot actions with masks, see ``offpolicy.trainer``), and ``--continuous`` is
refused there by the env. The resolved mode is written to config.json (``run.continuous``).
Envs reporting ``info["won"]`` (SMAX) add ``train_win_rate`` (last 20 finished episodes) and,
when evaluating, ``eval_win_rate`` to metrics.csv. ``--resume`` is exact: ``checkpoint.pt`` carries networks,
optimisers, counters, the filled replay rows, the running envs and all RNG states
(:mod:`marl_backends.offpolicy.checkpoint`), so K/2 iterations + resume + K/2 equals K. As with
the on-policy runs, ``--resume`` takes only the flags in ``RESUME_OVERRIDABLE`` (frames,
eval / checkpoint intervals, progress, log interval, threads, device, tensorboard). A damaged
``checkpoint.pt`` falls back to the newest readable ``checkpoints/iter_*.pt`` (networks, optimisers
and counters; the replay buffer refills, so that continuation is not exact, and the message says so).
The run building (:func:`build`, :func:`resolve_hetdps`) lives in :mod:`marl_backends.offpolicy.build`
so that checkpoints load without this module (no import circle).

``--sharing hetdps[:INIT]`` regroups the actors online exactly as for the on-policy algos: the
same flags (``--hetdps-init --hetdps-kind --hetdps-interval --hetdps-rollouts --hetdps-samples
--hetdps-no-structure --merge --grouper --seps-k --seps-samples --madps-fusion
--madps-division``), the same checks (``trainers.config.check_hetdps``), the same controller
(``trainers.checkpoint.build_hetdps``, as ``trainer.hetdps``) run after every iteration, the
same run-folder log (``hetdps_rounds.jsonl``, ``hetdps_round_*.npz``, ``hetdps_*`` metrics) and
its round history and gathered pools in the checkpoint, so ``--resume`` stays exact. Off-policy
defaults (:data:`HETDPS_DEFAULTS`): ``--hetdps-interval`` 400 iterations (200k env steps at the
default 10 envs x train_interval 50, the frame cadence of the on-policy default 50 x 4000) and
``--hetdps-rollouts`` 1 (the pool is the trainer's ``sample_pool()``: the last ``--pool-size``
transitions of the replay buffer, which already span 20 iterations at the defaults). HetDPS flags
without ``--sharing hetdps`` are refused rather than ignored.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from hetero.errors import UsageError
from hetero.runinfo import versions
from marl_backends.offpolicy.build import HETDPS_DEFAULTS, OFFPOLICY_ALGOS, RUN_DEFAULTS, build, resolve_hetdps
from marl_backends.offpolicy.checkpoint import CHECKPOINT_KIND, apply_checkpoint, check_kind, save_checkpoint
from marl_backends.offpolicy.config import OffPolicyConfig
from marl_backends.offpolicy.trainer import OffPolicyTrainer
from marl_backends.trainers.config import HETDPS_FIELDS, RESUME_OVERRIDABLE, TrainConfig
from marl_backends.trainers.dataclass_cli import add_dataclass_arguments, attribute_docs
from marl_backends.trainers.interrupt import checkpoint_and_stop, finished
from marl_backends.trainers.recovery import check_same_run, read_checkpoint, resume_target
from marl_backends.trainers.report import RunReport
from marl_backends.trainers.run_io import MetricsLog, check_out_dir, default_run_name, make_run_dir, write_json
from marl_backends.trainers.run_lock import RunLock, holds_no_run

__all__ = ["HETDPS_DEFAULTS", "OFFPOLICY_ALGOS", "RUN_DEFAULTS", "add_offpolicy_arguments", "build",
           "is_offpolicy_run", "offpolicy_flags", "prepare_offpolicy", "resolve_hetdps", "run_offpolicy_train", "train_loop"]

# TrainConfig flag -> OffPolicyConfig field
_SHARED = {"lr": "actor_lr", "critic_lr": "critic_lr", "gamma": "gamma", "hidden": "hidden", "seed": "seed", "device": "device",
           "lr_schedule": "lr_schedule"}
_RUN = ("env", "algo", "sharing", "frames", "num_envs", "continuous", "eval_interval", "eval_episodes",
        "checkpoint_interval", "out_dir", "run_name", "threads", "progress", "tensorboard", "log_interval", "wandb",
        "wandb_project")
_OWN_SKIP = ("algo", "env", "actor_lr", "critic_lr", "gamma", "hidden", "seed", "device", "lr_schedule")
_CHOICES = {"target": ("own", "min"), "pu_batch": ("shared", "own"), "actor_loss": ("omq", "joint"),
            "omq_min": ("terms", "difference")}


def add_offpolicy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the OffPolicyConfig flags that ``TrainConfig`` does not already define, as one group."""
    group = parser.add_argument_group("off-policy (--algo " + " | ".join(OFFPOLICY_ALGOS) + ")")
    add_dataclass_arguments(group, OffPolicyConfig, skip=_OWN_SKIP + tuple(_CHOICES))
    docs = attribute_docs(OffPolicyConfig)
    for name, choices in _CHOICES.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, choices=choices, default=None,
                           help=docs.get(name, "").replace("%", "%%") + f" (default: {getattr(OffPolicyConfig, name)!r})")


def offpolicy_flags() -> tuple[str, ...]:
    """The argparse dests :func:`add_offpolicy_arguments` adds (the flags on-policy algos refuse)."""
    return tuple(f.name for f in dataclasses.fields(OffPolicyConfig) if f.name not in _OWN_SKIP)


def is_offpolicy_run(args: argparse.Namespace) -> bool:
    """True when the parsed flags (or the run folder given to --resume) are off-policy."""
    if getattr(args, "algo", None) in OFFPOLICY_ALGOS:
        return True
    resume = getattr(args, "resume", None)
    if resume:
        cfg = resume_target(resume)[0] / "config.json"
        try:
            return json.loads(cfg.read_text()).get("kind") == CHECKPOINT_KIND
        except (OSError, ValueError) as e:
            raise UsageError(f"--resume {resume}: cannot read {cfg} ({e}).") from e
    return False


def _given(args: argparse.Namespace, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _settings(args: argparse.Namespace) -> tuple[dict, dict]:
    """(run settings, OffPolicyConfig fields) the flags give; on-policy-only flags are refused."""
    onpolicy = [f.name for f in dataclasses.fields(TrainConfig) if getattr(args, f.name, None) is not None
                and f.name not in _RUN and f.name not in _SHARED and f.name not in HETDPS_FIELDS]
    if onpolicy:
        raise UsageError(f"--{onpolicy[0].replace('_', '-')} is an on-policy flag; it has no meaning for "
                         f"--algo {args.algo}. Off-policy flags: see `hetero train --help` (off-policy group).")
    run = _given(args, _RUN + ("hidden", "critic_lr") + HETDPS_FIELDS)
    own = {_SHARED[k]: v for k, v in _given(args, _SHARED).items() if k not in ("hidden", "critic_lr")}
    own.update(_given(args, offpolicy_flags()))
    return run, own


def run_offpolicy_train(args: argparse.Namespace, env_factory=None, stop=None, say=None) -> Path:  # noqa: ANN001
    """Train an off-policy run as the parsed flags say (or resume one); returns the run folder.

    ``stop``: a :class:`~marl_backends.trainers.interrupt.GracefulStop` (signals end the run at
    the next safe point); ``say(text)`` prints notes (default: stderr)."""
    with ExitStack() as locks:
        trainer, eval_env, run, run_dir, iteration = prepare_offpolicy(args, env_factory, say, locks)
        train_loop(trainer, eval_env, run, run_dir, iteration, stop=stop)
    return run_dir


def prepare_offpolicy(args: argparse.Namespace, env_factory=None, say=None, locks: ExitStack | None = None):  # noqa: ANN001, ANN201
    """Everything before the first iteration: check the flags, build (or restore) the trainer,
    create the run folder and write config.json. Returns (trainer, eval env, run settings, run
    folder, iteration to start from); input errors raise before any file is written. The run
    folder's writer lock goes into ``locks`` (without one it is held until the process ends)."""
    locks = locks if locks is not None else _HELD
    say = say or (lambda text: print(text, file=sys.stderr))
    resume = getattr(args, "resume", None)
    obj = None
    if resume:
        run_dir, file = resume_target(resume)
        flags = [f.name for f in dataclasses.fields(TrainConfig)] + list(offpolicy_flags())
        bad = [k for k in flags if getattr(args, k, None) is not None and k not in RESUME_OVERRIDABLE]
        if bad:
            raise UsageError(f"--resume continues the run as configured in {run_dir / 'config.json'}; "
                             f"--{bad[0].replace('_', '-')} cannot be changed (allowed with --resume: "
                             f"{', '.join('--' + k.replace('_', '-') for k in RESUME_OVERRIDABLE)}).")
        saved = json.loads((run_dir / "config.json").read_text())
        run = {**saved["run"], **_given(args, tuple(k for k in RESUME_OVERRIDABLE if k != "device"))}
        own = {k: tuple(v) if k == "hidden" else v for k, v in saved["config"].items() if k != "algo"}
        own.update(_given(args, ("device",)))
        locks.enter_context(RunLock(run_dir))
        obj, path, note = read_checkpoint(file or run_dir, check_kind)
        if obj is not None:
            check_same_run(obj, path, run_dir)
        if note:
            say(f"note: {note}")
    else:
        run, own = _settings(args)
        check_out_dir(run.get("out_dir") or RUN_DEFAULTS["out_dir"])
        name = run.get("run_name") or ""
        if name and (Path(run.get("out_dir") or RUN_DEFAULTS["out_dir"]) / name).exists() and not holds_no_run(
                Path(run.get("out_dir") or RUN_DEFAULTS["out_dir"]) / name):
            raise UsageError(_exists_message(Path(run.get("out_dir") or RUN_DEFAULTS["out_dir"]) / name))
    trainer, eval_env, run = build(run, own, env_factory)
    if run["threads"]:
        torch.set_num_threads(run["threads"])
    per_it = trainer.cfg.train_interval * trainer.env.num_envs
    if run["frames"] % per_it:
        say(f"note: --frames {run['frames']} is not a whole number of iterations ({per_it} env steps each: "
            f"--num-envs x --train-interval); training {-(-run['frames'] // per_it) * per_it} frames.")
    if resume:
        if obj is None:
            iteration = 0
            say(f"note: {run_dir} has no checkpoint (the run stopped before its first one); "
                "starting it again from iteration 0 with its config.json.")
        else:
            iteration = apply_checkpoint(trainer, obj)
            exact = "" if "resume" in obj else " (from a checkpoint without the replay buffer: it refills, so the " \
                                                 "continuation is not the exact uninterrupted run)"
            say(f"resuming {run_dir} at iteration {iteration} ({trainer.env_steps} env steps){exact}")
    else:
        iteration = 0
        name = run["run_name"] or default_run_name(run["env"], run["algo"], run["sharing"], trainer.cfg.seed)
        run_dir = make_run_dir(run["out_dir"], name, exact=bool(run["run_name"]))
        locks.enter_context(RunLock(run_dir))
    write_json(run_dir / "config.json", {
        "kind": CHECKPOINT_KIND, "run": {**run, "hidden": list(run["hidden"])},
        "config": {**dataclasses.asdict(trainer.cfg), "hidden": list(trainer.cfg.hidden)},
        "resolved": {"layout": list(trainer.layout), "append_id": trainer.sharing.append_id},
        "env_spec": {k: v for k, v in vars(trainer.env.spec).items()},
        "versions": versions(), "command": " ".join(sys.argv)})
    return trainer, eval_env, run, run_dir, iteration


_HELD = ExitStack()  # locks of prepare_offpolicy calls without an ExitStack of their own


def _exists_message(path: Path) -> str:
    return (f"--run-name {path.name}: {path} already exists; continue it with `hetero train --resume {path}`, "
            "or pick another --run-name (without one the folder name gets a time stamp).")


def train_loop(trainer: OffPolicyTrainer, eval_env, run: dict, run_dir: Path, iteration: int = 0, callback=None,  # noqa: ANN001
               stop=None) -> int:  # noqa: ANN001
    """Iterate until ``run['frames']`` env steps: metrics.csv, periodic evaluation and checkpoints;
    returns the last iteration.

    ``callback(trainer, metrics)`` runs after every iteration; it may add entries to ``metrics``.
    A trainer built with ``--sharing hetdps`` carries its HetDPS controller (``trainer.hetdps``):
    as in the on-policy loop (``trainers.loop.train``) it runs after every iteration, before
    evaluation, and logs its rounds into ``run_dir`` (hetdps_rounds.jsonl, hetdps_round_*.npz)
    and as a text line. With ``stop`` (a ``GracefulStop``), a signal ends the loop after the
    iteration in progress with its checkpoint written (``stop.stopped_at``)."""
    run = {**RUN_DEFAULTS, **run}
    log = MetricsLog(run_dir / "metrics.csv", run["tensorboard"], keep_until=iteration,
                     wandb_project=run["wandb_project"] if run["wandb"] else None,
                     config={**run, **dataclasses.asdict(trainer.cfg)})
    hetdps = getattr(trainer, "hetdps", None)
    if hetdps is not None:
        hetdps.attach_log(run_dir)  # drops rounds logged after the checkpoint a resumed run starts from
    per_it = trainer.cfg.train_interval * trainer.env.num_envs
    total = -(-run["frames"] // per_it)
    trainer.total_steps = total * per_it  # horizon of --lr-schedule linear
    report = RunReport(f"{run['algo']} {run['sharing']} {run['env']}", total, per_it, iteration, trainer.env_steps,
                       run["progress"], run["log_interval"])
    t0 = time.perf_counter()
    try:
        while iteration < total:
            m = dict(trainer.iterate())
            iteration += 1
            m.update(iteration=iteration, frames=trainer.env_steps, updates=trainer.n_updates,
                     train_return=trainer.mean_return())
            if getattr(trainer, "reports_wins", False):
                m["train_win_rate"] = trainer.win_rate()
            if hetdps is not None:
                old = tuple(trainer.layout)
                rnd = hetdps.after_update(iteration, last=total)
                m.update(hetdps.metrics())
                if rnd is not None:
                    report.round(rnd, old)
            if (run["eval_interval"] and iteration % run["eval_interval"] == 0) or iteration == total:
                m.update(trainer.evaluate(eval_env, run["eval_episodes"], seed=trainer.cfg.seed + 10_000, details=True))
            if callback is not None:
                callback(trainer, m)
            m["wall_s"] = time.perf_counter() - t0
            m["layout"] = "-".join(map(str, trainer.layout))
            log.log(m)
            report.update(iteration, trainer.env_steps, m, per_it)
            periodic = bool(run["checkpoint_interval"] and iteration % run["checkpoint_interval"] == 0)
            if checkpoint_and_stop(stop, iteration, total, periodic,
                                   lambda keep: save_checkpoint(trainer, run_dir, iteration, keep=keep)):
                break
        report.close()
        if finished(stop):  # summary.json + a few lines
            log.summary()
    finally:
        report.close()
        log.close()
    return iteration
