"""Env registry: a plain dict of name -> (factory, one-line description).

Other backends add themselves with :func:`register`; a factory takes
``(num_envs, device, seed, continuous, **kw)`` and returns a VecMultiAgentEnv.
"""
from __future__ import annotations

import difflib
from typing import Callable

import torch

from marl_backends.envs.pms import PMS_TASKS, PmsScenario
from marl_backends.envs.spread import DESCRIPTIONS, VERSIONS, SpreadScenario
from marl_backends.envs.vmas_env import VmasEnv

Factory = Callable[..., object]
REGISTRY: dict[str, tuple[Factory, str]] = {}

VMAS_BUILTINS = {
    "balance": "agents carry a package on a line to a goal",
    "navigation": "agents navigate to their goals, lidar observations",
    "transport": "agents push a heavy package to a goal",
    "wheel": "agents rotate a wheel to a target angular velocity",
    "dispersion": "agents spread over food landmarks",
    "flocking": "agents flock around a target avoiding obstacles",
    "simple_tag": "MPE predator-prey: 3 adversaries chase 1 faster good agent; groups = roles",
}


def register(name: str, factory: Factory, description: str) -> None:
    """Add (or replace) an env; ``factory(num_envs, device, seed, continuous, **kw)``."""
    REGISTRY[name] = (factory, description)


def list_envs() -> dict[str, str]:
    """name -> one-line description, sorted by name."""
    return {k: REGISTRY[k][1] for k in sorted(REGISTRY)}


def make_env(name: str, num_envs: int = 32, device: str | torch.device = "cpu", seed: int = 0,
             continuous: bool = False, **kw):
    """Build a registered env, or ``pettingzoo:<module>:<env_fn>`` (any PettingZoo ParallelEnv);
    unknown names raise ValueError listing valid ones."""
    if name.startswith("pettingzoo:"):
        from marl_backends.envs.pettingzoo import make_pettingzoo_env

        return make_pettingzoo_env(name, num_envs=num_envs, device=device, seed=seed, continuous=continuous, **kw)
    check_env_name(name)
    return REGISTRY[name][0](num_envs=num_envs, device=device, seed=seed, continuous=continuous, **kw)


def check_env_name(name: str) -> None:
    """Raise the ValueError of :func:`make_env` for a name that is neither registered nor
    ``pettingzoo:...`` (builds nothing, imports nothing)."""
    if name in REGISTRY or name.startswith("pettingzoo:"):
        return
    close = difflib.get_close_matches(name, list(REGISTRY), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown env {name!r}.{hint} Valid envs: {', '.join(sorted(REGISTRY))}, or "
                     "pettingzoo:<module>:<env_fn> for a PettingZoo ParallelEnv.")


def parse_env_args(text: str) -> dict[str, object]:
    """``"n_agents=4,package_mass=5"`` -> ``{"n_agents": 4, "package_mass": 5}`` (scenario kwargs).

    Values parse as int, then float, then true/false, else stay strings; empty text gives {}."""
    out: dict[str, object] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"env argument {item!r} is not key=value; write e.g. n_agents=4,package_mass=5.")
        value: object = raw.strip()
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                pass
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        out[key.strip()] = value
    return out


def _pms(task: str, shuffle: bool) -> Factory:
    def factory(num_envs, device, seed, continuous, max_steps=50, **kw):
        name = f"pms_{task}" + ("_shuffle" if shuffle else "")
        return VmasEnv(PmsScenario(), name, num_envs, device, seed, continuous, max_steps,
                       groups=PMS_TASKS[task], shuffle=shuffle, **kw)
    return factory


def _spread(version: str) -> Factory:
    def factory(num_envs, device, seed, continuous, max_steps=50, **kw):
        return VmasEnv(SpreadScenario(), f"spread_{version}", num_envs, device, seed, continuous, max_steps,
                       version=version, **kw)
    return factory


def _builtin(scenario: str) -> Factory:
    def factory(num_envs, device, seed, continuous, max_steps=100, **kw):
        return VmasEnv(scenario, f"vmas_{scenario}", num_envs, device, seed, continuous, max_steps, **kw)
    return factory


for _task, _sizes in PMS_TASKS.items():
    _desc = f"PMS {len(_sizes)} colours, groups {'-'.join(map(str, _sizes))}"
    register(f"pms_{_task}", _pms(_task, False), _desc)
    register(f"pms_{_task}_shuffle", _pms(_task, True), _desc + ", observations permuted per colour")
for _v in VERSIONS:
    register(f"spread_{_v}", _spread(_v), f"case-study spread (2x2 agents): {DESCRIPTIONS[_v]}")
for _s, _d in VMAS_BUILTINS.items():
    register(f"vmas_{_s}", _builtin(_s), f"VMAS built-in {_s}: {_d} (no model access)")

# --- MaMuJoCo tasks (optional extra; owned by marl_backends/envs/mamujoco.py) ---
from marl_backends.envs.mamujoco import register_all as _register_mamujoco  # noqa: E402

_register_mamujoco(register)

# --- SMAX maps (optional extra: JaxMARL on CPU JAX; owned by marl_backends/envs/smax.py) ---
from marl_backends.envs.smax import register_all as _register_smax  # noqa: E402

_register_smax(register)

# --- SMACv2 tasks (optional extra: smacv2 from its git repository + StarCraft II; marl_backends/envs/smacv2.py) ---
from marl_backends.envs.smacv2 import register_all as _register_smacv2  # noqa: E402

_register_smacv2(register)
