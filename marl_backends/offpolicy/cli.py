"""``hetero train --algo matd3|omdpg|matd3-gqc|matd3-omq``: the off-policy side of ``hetero train``.

``marl_backends/trainers/cli.py`` owns the parser; it calls :func:`add_offpolicy_arguments` to
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
eval / checkpoint intervals, progress, threads, device, tensorboard).

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
import math
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from marl_backends.envs import make_env
from marl_backends.nets import parse_sharing
from marl_backends.offpolicy.checkpoint import CHECKPOINT_KIND, load_checkpoint, save_checkpoint
from marl_backends.offpolicy.config import ABLATION, OffPolicyConfig
from marl_backends.offpolicy.trainer import OffPolicyTrainer
from marl_backends.trainers.checkpoint import build_hetdps
from marl_backends.trainers.cli import RESUME_OVERRIDABLE
from marl_backends.trainers.config import HETDPS_FIELDS, TrainConfig, check_hetdps, is_dynamic_sharing
from marl_backends.trainers.dataclass_cli import add_dataclass_arguments, attribute_docs
from marl_backends.trainers.run_io import MetricsLog, default_run_name, make_run_dir, write_json

OFFPOLICY_ALGOS = tuple(ABLATION)
# TrainConfig flag -> OffPolicyConfig field
_SHARED = {"lr": "actor_lr", "critic_lr": "critic_lr", "gamma": "gamma", "hidden": "hidden", "seed": "seed", "device": "device",
           "lr_schedule": "lr_schedule"}
_RUN = ("env", "algo", "sharing", "frames", "num_envs", "continuous", "eval_interval", "eval_episodes",
        "checkpoint_interval", "out_dir", "run_name", "threads", "progress", "tensorboard")
_OWN_SKIP = ("algo", "env", "actor_lr", "critic_lr", "gamma", "hidden", "seed", "device", "lr_schedule")
_CHOICES = {"target": ("own", "min"), "pu_batch": ("shared", "own"), "actor_loss": ("omq", "joint"),
            "omq_min": ("terms", "difference")}
RUN_DEFAULTS = {"env": "mamujoco_halfcheetah_2x3", "frames": 1_000_000, "num_envs": 10, "eval_interval": 25,
                "eval_episodes": 10, "checkpoint_interval": 25, "out_dir": "runs", "run_name": "", "threads": 0,
                "progress": True, "tensorboard": True, "sharing": "", "hidden": (256, 256), "critic_lr": 1e-3}
# --sharing hetdps: TrainConfig's defaults, except the two whose unit differs off-policy (module docstring)
HETDPS_DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in HETDPS_FIELDS},
                   "hetdps_interval": 400, "hetdps_rollouts": 1}


def add_offpolicy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the OffPolicyConfig flags that ``TrainConfig`` does not already define."""
    group = parser.add_argument_group("off-policy (--algo " + " | ".join(OFFPOLICY_ALGOS) + ")")
    add_dataclass_arguments(group, OffPolicyConfig, skip=_OWN_SKIP + tuple(_CHOICES))
    docs = attribute_docs(OffPolicyConfig)
    for name, choices in _CHOICES.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, choices=choices, default=None,
                           help=docs.get(name, "").replace("%", "%%") + f" (default: {getattr(OffPolicyConfig, name)!r})")


def is_offpolicy_run(args: argparse.Namespace) -> bool:
    """True when the parsed flags (or the run folder given to --resume) are off-policy."""
    if getattr(args, "algo", None) in OFFPOLICY_ALGOS:
        return True
    resume = getattr(args, "resume", None)
    if resume and (Path(resume) / "config.json").exists():
        return json.loads((Path(resume) / "config.json").read_text()).get("kind") == CHECKPOINT_KIND
    return False


def _given(args: argparse.Namespace, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def resolve_hetdps(run: dict) -> dict | None:
    """Fill in (in place) and check the HetDPS settings of a run dict; None for static sharing.

    ``run["sharing"]`` becomes ``hetdps:INIT`` and ``run`` gets every ``HETDPS_FIELDS`` entry
    (given ones, else :data:`HETDPS_DEFAULTS`), so config.json describes the run completely."""
    given = {k: run[k] for k in HETDPS_FIELDS if run.get(k) is not None}
    if not is_dynamic_sharing(run["sharing"]):
        if given:
            k = next(iter(given)).replace("_", "-")
            raise ValueError(f"--{k} configures HetDPS, but --sharing is {run['sharing'] or 'the algo default'!r}, "
                             f"a static layout; add --sharing hetdps[:INIT] or drop --{k}.")
        return None
    explicit = run["sharing"].strip().lower()[len("hetdps"):].lstrip(":")
    init = str(given.get("hetdps_init", "")).strip().lower()
    if explicit and init and init != explicit:
        raise ValueError(f"--sharing {run['sharing']} already names the initial layout ({explicit}) but --hetdps-init "
                         f"says {init}; give it once: --sharing hetdps --hetdps-init {init} or --sharing hetdps:{init}.")
    h = {**HETDPS_DEFAULTS, **given}
    if explicit:
        h["hetdps_init"] = explicit
    run["sharing"] = f"hetdps:{h['hetdps_init']}"
    h = {k: h[k] for k in HETDPS_FIELDS}
    check_hetdps(SimpleNamespace(sharing=run["sharing"], **h))
    for k in HETDPS_FIELDS:  # in field order in config.json
        run.pop(k, None)
    run.update(h)
    return h


def _make_env(name: str, num_envs: int, device: str, seed: int, continuous: bool | None):  # noqa: ANN202
    """(env, continuous) for --continuous / --no-continuous as given; not given: continuous where
    the env has both modes (off-policy's usual mode), discrete where it has discrete actions only
    (those factories refuse ``continuous=True`` with a message naming discrete actions before
    building anything, so the fallback costs nothing)."""
    if continuous is not None:
        return make_env(name, num_envs=num_envs, device=device, seed=seed, continuous=continuous), continuous
    try:
        return make_env(name, num_envs=num_envs, device=device, seed=seed, continuous=True), True
    except ValueError as e:
        if "discrete" not in str(e):
            raise
    return make_env(name, num_envs=num_envs, device=device, seed=seed, continuous=False), False


def build(run: dict, own: dict, env_factory=None,  # noqa: ANN001
          with_eval: bool = True) -> tuple[OffPolicyTrainer, object, dict]:
    """(trainer, eval env (None without ``with_eval``), resolved run settings) from run-level and
    OffPolicyConfig settings.

    ``env_factory(num_envs, seed)`` builds envs (as in ``hetero train``); default: the registry.
    With ``--sharing hetdps[:INIT]`` the trainer carries its HetDPS controller as
    ``trainer.hetdps`` (built like the on-policy one), else ``trainer.hetdps`` is None."""
    run = {**RUN_DEFAULTS, **run}
    hetdps = resolve_hetdps(run)  # checked before any env is built
    dev = own.get("device", "cpu")
    if env_factory is None:
        env, cont = _make_env(run["env"], run["num_envs"], dev, own.get("seed", 0), run.get("continuous"))
        mk = lambda n, seed: make_env(run["env"], num_envs=n, device=dev, seed=seed, continuous=cont)  # noqa: E731
    else:
        mk = env_factory
        env = mk(run["num_envs"], own.get("seed", 0))
    run["continuous"] = not env.spec.discrete
    default_sharing = "nps" if run["algo"] == "matd3" or env.spec.groups is None else "groups:env"
    run["sharing"] = run["sharing"] or default_sharing
    sharing = parse_sharing(run["sharing"], env.spec.n_agents, env.spec.groups)
    cfg = ABLATION[run["algo"]](**{"hidden": run["hidden"], "critic_lr": run["critic_lr"], **own, "env": run["env"]})
    eval_env = mk(run["eval_episodes"], cfg.seed + 10_000) if with_eval else None
    trainer = OffPolicyTrainer(env, cfg, sharing)
    if hetdps is not None:
        trainer.hetdps = build_hetdps(trainer, SimpleNamespace(**hetdps, seed=cfg.seed, device=cfg.device))
    return trainer, eval_env, run


def run_offpolicy_train(args: argparse.Namespace, env_factory=None) -> Path:  # noqa: ANN001
    """Train an off-policy run as the parsed flags say (or resume one); returns the run folder."""
    resume = getattr(args, "resume", None)
    if resume:
        run_dir = Path(resume)
        flags = [f.name for f in dataclasses.fields(TrainConfig)]
        flags += [f.name for f in dataclasses.fields(OffPolicyConfig) if f.name not in _OWN_SKIP]
        bad = [k for k in flags if getattr(args, k, None) is not None and k not in RESUME_OVERRIDABLE]
        if bad:
            raise ValueError(f"--resume continues the run as configured in {run_dir / 'config.json'}; "
                             f"--{bad[0].replace('_', '-')} cannot be changed (allowed with --resume: "
                             f"{', '.join('--' + k.replace('_', '-') for k in RESUME_OVERRIDABLE)}).")
        saved = json.loads((run_dir / "config.json").read_text())
        run = {**saved["run"], **_given(args, tuple(k for k in RESUME_OVERRIDABLE if k != "device"))}
        own = {k: tuple(v) if k == "hidden" else v for k, v in saved["config"].items() if k != "algo"}
        own.update(_given(args, ("device",)))
    else:
        onpolicy = [f.name for f in dataclasses.fields(TrainConfig) if getattr(args, f.name, None) is not None
                    and f.name not in _RUN and f.name not in _SHARED and f.name not in HETDPS_FIELDS]
        if onpolicy:
            raise ValueError(f"--{onpolicy[0].replace('_', '-')} is an on-policy flag; it has no meaning for "
                             f"--algo {args.algo}. Off-policy flags: see `hetero train --help` (off-policy group).")
        run = _given(args, _RUN + ("hidden", "critic_lr") + HETDPS_FIELDS)
        own = {_SHARED[k]: v for k, v in _given(args, _SHARED).items() if k not in ("hidden", "critic_lr")}
        own.update(_given(args, [f.name for f in dataclasses.fields(OffPolicyConfig) if f.name not in _OWN_SKIP]))
    trainer, eval_env, run = build(run, own, env_factory)
    if run["threads"]:
        torch.set_num_threads(run["threads"])
    if resume:
        iteration = load_checkpoint(trainer, run_dir)
        print(f"resuming {run_dir} at iteration {iteration} ({trainer.env_steps} env steps)", file=sys.stderr)
    else:
        iteration = 0
        name = run["run_name"] or default_run_name(run["env"], run["algo"], run["sharing"], trainer.cfg.seed)
        run_dir = make_run_dir(run["out_dir"], name)
    write_json(run_dir / "config.json", {
        "kind": CHECKPOINT_KIND, "run": {**run, "hidden": list(run["hidden"])},
        "config": {**dataclasses.asdict(trainer.cfg), "hidden": list(trainer.cfg.hidden)},
        "resolved": {"layout": list(trainer.layout), "append_id": trainer.sharing.append_id},
        "env_spec": {k: v for k, v in vars(trainer.env.spec).items()},
        "versions": {"torch": torch.__version__, "python": platform.python_version()}, "command": " ".join(sys.argv)})
    train_loop(trainer, eval_env, run, run_dir, iteration)
    print(f"run folder: {run_dir}", file=sys.stderr)
    return run_dir


def train_loop(trainer: OffPolicyTrainer, eval_env, run: dict, run_dir: Path, iteration: int = 0, callback=None) -> None:  # noqa: ANN001
    """Iterate until ``run['frames']`` env steps: metrics.csv, periodic evaluation and checkpoints.

    ``callback(trainer, metrics)`` runs after every iteration; it may add entries to ``metrics``.
    A trainer built with ``--sharing hetdps`` carries its HetDPS controller (``trainer.hetdps``):
    as in the on-policy loop (``trainers.loop.train``) it runs after every iteration, before
    evaluation, and logs its rounds into ``run_dir`` (hetdps_rounds.jsonl, hetdps_round_*.npz)."""
    from tqdm.auto import tqdm

    log = MetricsLog(run_dir / "metrics.csv", run["tensorboard"], keep_until=iteration)
    hetdps = getattr(trainer, "hetdps", None)
    if hetdps is not None:
        hetdps.attach_log(run_dir)  # drops rounds logged after the checkpoint a resumed run starts from
    per_it = trainer.cfg.train_interval * trainer.env.num_envs
    total = -(-run["frames"] // per_it)
    trainer.total_steps = total * per_it  # horizon of --lr-schedule linear
    bar = tqdm(total=total * per_it, initial=trainer.env_steps, unit="frame", unit_scale=True, disable=not run["progress"],
               desc=f"{run['algo']} {run['sharing']} {run['env']}", dynamic_ncols=True)
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
                hetdps.after_update(iteration)
                m.update(hetdps.metrics())
            if (run["eval_interval"] and iteration % run["eval_interval"] == 0) or iteration == total:
                m.update(trainer.evaluate(eval_env, run["eval_episodes"], seed=trainer.cfg.seed + 10_000, details=True))
            if callback is not None:
                callback(trainer, m)
            m["wall_s"] = time.perf_counter() - t0
            m["layout"] = "-".join(map(str, trainer.layout))
            log.log(m)
            bar.update(per_it)
            post = {"ret": f"{m['train_return']:.3g}" if math.isfinite(m["train_return"]) else "nan"}
            if "eval_return" in m:
                post["eval"] = f"{m['eval_return']:.3g}"
            if math.isfinite(m.get("train_win_rate", math.nan)):
                post["win"] = f"{m['train_win_rate']:.2f}"
            bar.set_postfix(post)
            if (run["checkpoint_interval"] and iteration % run["checkpoint_interval"] == 0) or iteration == total:
                save_checkpoint(trainer, run_dir, iteration)
    finally:
        bar.close()
        log.close()
