"""What ``hetero train`` checks before building anything big, shared with ``hetero sweep``.

The env name (registry or ``pettingzoo:``), then from a 1-env probe of the env (cached per env)
the layout (``--sharing`` against the env's agents and groups) and the memory estimate
(:mod:`marl_backends.memory`: on-policy rollouts and updates of ``--num-envs``, or the off-policy
replay buffer of ``--buffer-size``). Errors are ValueErrors naming the flag. The probe costs one
small env build (SMACv2: a StarCraft II launch); ``hetero train --ignore-memory-check`` skips it.
"""
from __future__ import annotations

from functools import lru_cache

from marl_backends import memory
from marl_backends.envs.registry import check_env_name, make_env, parse_env_args
from marl_backends.nets.layout import parse_sharing


@lru_cache(maxsize=64)
def _probe(env: str, env_args: str, continuous: bool | None):  # noqa: ANN202
    """(shapes, spec, continuous) of a 1-env copy; ``continuous=None``: off-policy's default mode."""
    if continuous is None:
        from marl_backends.offpolicy.build import _make_env

        e, continuous = _make_env(env, 1, "cpu", 0, None)
    else:
        e = make_env(env, num_envs=1, seed=0, continuous=continuous, **parse_env_args(env_args))
    try:
        return memory.Shapes.of(e), e.spec, continuous
    finally:
        getattr(e, "close", lambda: None)()


def probe(env: str, env_args: str = "", continuous: bool | None = False, seed: int = 0,
          env_factory=None):  # noqa: ANN001, ANN201
    """(shapes, spec) of ``env``: from ``env_factory(1, seed)`` when given, else a cached registry probe
    (shapes do not depend on the seed)."""
    if env_factory is not None:
        e = env_factory(1, seed)
        return memory.Shapes.of(e), e.spec
    check_env_name(env)
    return _probe(env, env_args, continuous)[:2]


def check_onpolicy(cfg, env_factory=None, check_memory: bool = True) -> None:  # noqa: ANN001
    """Env, layout and memory of an on-policy :class:`TrainConfig`."""
    shapes, spec = probe(cfg.env, cfg.env_args, cfg.continuous, cfg.seed, env_factory)
    parse_sharing(cfg.sharing_resolved, spec.n_agents, spec.groups)
    if not check_memory:
        return
    n_values = spec.n_agents if cfg.reward_resolved == "agent" else 1
    pool = cfg.hetdps_rollouts if cfg.dynamic_sharing else 0
    memory.check(lambda e: memory.train_bytes(shapes, e, cfg.rollout_steps, cfg.hidden, cfg.num_minibatches,
                                              cfg.critic_minibatches, n_values, pool),
                 cfg.num_envs, "--num-envs", f"rollouts of {cfg.rollout_steps} steps x {spec.n_agents} agents and "
                 "the updates on them", cfg.device)


def check_offpolicy(run: dict, cfg, env_factory=None, check_memory: bool = True) -> None:  # noqa: ANN001
    """Env, layout and replay-buffer memory of an off-policy run (``run`` settings, ``OffPolicyConfig``)."""
    shapes, spec = probe(run["env"], "", run.get("continuous"), cfg.seed, env_factory)
    default = "nps" if run["algo"] == "matd3" or spec.groups is None else "groups:env"
    parse_sharing(run.get("sharing") or default, spec.n_agents, spec.groups)
    if check_memory:
        num_envs = run["num_envs"]
        memory.check(lambda c: memory.replay_bytes(shapes, c, num_envs, cfg.n_step), cfg.buffer_size,
                     "--buffer-size", f"a replay buffer of {spec.n_agents} agents x {spec.obs_dim} obs features and "
                     "its checkpoint copy", cfg.device)
