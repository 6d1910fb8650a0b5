"""Building an off-policy run from its settings (no command line here, so ``offpolicy.checkpoint``
can rebuild a trainer without importing the CLI).

:func:`build` returns the trainer, its evaluation env and the resolved run settings from the
run-level settings (``run``: env, sharing, frames, HetDPS, ...; :data:`RUN_DEFAULTS`) and the
:class:`OffPolicyConfig` fields (``own``). :func:`resolve_hetdps` fills in and checks the HetDPS
settings of a run (:data:`HETDPS_DEFAULTS`: TrainConfig's, except the interval and pool size, whose
unit differs off-policy; see ``offpolicy.cli``).
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from marl_backends.envs import make_env
from marl_backends.nets import parse_sharing
from marl_backends.offpolicy.config import ABLATION
from marl_backends.offpolicy.trainer import OffPolicyTrainer
from marl_backends.trainers.checkpoint import build_hetdps
from marl_backends.trainers.config import HETDPS_FIELDS, TrainConfig, check_hetdps, is_dynamic_sharing

OFFPOLICY_ALGOS = tuple(ABLATION)
RUN_DEFAULTS = {"env": "mamujoco_halfcheetah_2x3", "frames": 1_000_000, "num_envs": 10, "eval_interval": 25,
                "eval_episodes": 10, "checkpoint_interval": 25, "out_dir": "runs", "run_name": "", "threads": 1,
                "progress": True, "tensorboard": True, "log_interval": 10, "wandb": False, "wandb_project": "hetero",
                "sharing": "", "hidden": (256, 256), "critic_lr": 1e-3}
# --sharing hetdps: TrainConfig's defaults, except the two whose unit differs off-policy (module docstring)
HETDPS_DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in HETDPS_FIELDS},
                   "hetdps_interval": 400, "hetdps_rollouts": 1}



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
