"""SMACv2 backend (StarCraft II via ``smacv2.env.StarCraftCapabilityEnvWrapper``), optional extra.

Needs StarCraft II (``SC2PATH``), SMACv2's map ``32x32_flat.SC2Map`` (which every ``10gen_*``
map loads) in ``$SC2PATH/Maps/SMAC_Maps/`` and the ``smacv2`` package, which installs only from
its git repository (see README). Tasks are the SMACv2 paper's: protoss / terran / zerg with
5v5, 10v10, 10v11 and 20v20 units, weighted random teams and ``surrounded_and_reflect`` starts.

- ``obs`` [E, N, Do]: SMACv2's agent observation (move, enemy, ally, own features).
- ``state`` [E, Ds]: ``get_state()``.
- ``local_state`` [E, N, Dl]: the agent's own features (the entries SMACv2 names ``own_*``:
  health, shield, position), without the ``own_unit_type_bit_*`` entries: in x of the
  meta-transition they would hand the CVAE each agent's type (as in the SMAX backend).
- ``env_state`` [E, De]: the environment part S^E of ``get_state()``, the entries SMACv2 names
  ``enemy_*`` (every enemy unit), for ego-centric model-free conditions; None when the wrapper
  has no ``get_state_feature_names``.
- ``alive`` [E, N]: ``own_health > 0``; dead units' rows are left out of sample pools.
- ``avail_actions`` [E, N, A] bool: no-op 0 (dead only), stop 1, moves 2-5, attack/heal 6+k.
- reward [E, N]: the team reward on every agent. terminated: the battle ended; truncated: the
  episode limit was hit (the wrapper is built with ``continuing_episode=True`` so that SMACv2
  reports it as ``info["episode_limit"]``).
- ``info``: ``won`` [E] and ``unit_types`` [E, N] (ids in :func:`unit_type_names` order) of the
  episode the transition belongs to; ``env.unit_types`` holds the current episode's.

Unit types are drawn per episode, so ``spec.groups`` is None. Seeds: env ``e`` gets game seed
``seed + e`` and its team / start-position generators are re-seeded from it; SMACv2 also
shuffles with Python's global ``random`` and the game is not bit-exact, so runs are only
approximately reproducible.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from marl_backends.envs.base import EnvSpec, Observation, StepResult, check_discrete_actions, random_available_actions

INSTALL = "install smacv2 from its git repository (see README)"
MAP_FILE = "32x32_flat.SC2Map"  # the map file behind 10gen_protoss / 10gen_terran / 10gen_zerg

# race -> (unit types drawn, their weights, types that may not make up a whole team)
RACES: dict[str, tuple[tuple[str, ...], tuple[float, ...], tuple[str, ...]]] = {
    "protoss": (("stalker", "zealot", "colossus"), (0.45, 0.45, 0.1), ()),
    "terran": (("marine", "marauder", "medivac"), (0.45, 0.45, 0.1), ("medivac",)),
    "zerg": (("zergling", "baneling", "hydralisk"), (0.45, 0.1, 0.45), ("baneling",)),
}
# unit-type ids as SMACv2's get_unit_type_id numbers them (the order of the type bits)
TYPE_IDS: dict[str, tuple[str, ...]] = {
    "protoss": ("stalker", "zealot", "colossus"),
    "terran": ("marine", "marauder", "medivac"),
    "zerg": ("zergling", "hydralisk", "baneling"),
}
# non-default StarCraft2Env settings of SMACv2's example configs, plus our truncation flag
DEFAULT_KWARGS: dict[str, Any] = {
    "obs_own_pos": True, "use_unit_ranges": True, "min_attack_range": 2, "conic_fov": False,
    "continuing_episode": True,
}


@dataclass(frozen=True)
class Smacv2Task:
    """One registered task: ``race`` with ``n_units`` allies against ``n_enemies``."""

    race: str
    n_units: int
    n_enemies: int

    @property
    def map_name(self) -> str:
        return f"10gen_{self.race}"

    @property
    def description(self) -> str:
        names = "/".join(RACES[self.race][0])
        return (f"SMACv2 {self.race} {self.n_units}v{self.n_enemies}: random {names} teams and start "
                "positions per episode")


TASKS: dict[str, Smacv2Task] = {
    f"smacv2_{race}_{a}v{b}": Smacv2Task(race, a, b)
    for race in RACES for a, b in ((5, 5), (10, 10), (10, 11), (20, 20))
}


def _task(name: str) -> Smacv2Task:
    if name not in TASKS:
        raise ValueError(f"unknown SMACv2 task {name!r}; choose one of {', '.join(TASKS)}.")
    return TASKS[name]


def unit_type_names(task: str) -> tuple[str, ...]:
    """Names of the unit-type ids of ``info["unit_types"]`` for a task, e.g. stalker, zealot, colossus."""
    return TYPE_IDS[_task(task).race]


def capability_config(task: str) -> dict[str, Any]:
    """A fresh SMACv2 ``capability_config`` for a task (the wrapper mutates the one it gets)."""
    t = _task(task)
    types, weights, exceptions = RACES[t.race]
    team = {"dist_type": "weighted_teams", "unit_types": list(types), "weights": list(weights), "observe": True}
    if exceptions:
        team["exception_unit_types"] = list(exceptions)
    return {"n_units": t.n_units, "n_enemies": t.n_enemies, "team_gen": team,
            "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32}}


def wrapper_kwargs(task: str, seed: int, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``StarCraftCapabilityEnvWrapper`` for one env of a task."""
    return {"capability_config": capability_config(task), "map_name": _task(task).map_name, "seed": seed,
            **DEFAULT_KWARGS, **overrides}


def check_starcraft() -> Path:
    """The StarCraft II folder from ``SC2PATH``, with SMACv2's map in it; else a FileNotFoundError."""
    sc2 = os.environ.get("SC2PATH")
    if not sc2 or not Path(sc2).is_dir():
        where = "is not set" if not sc2 else f"points to {sc2!r}, which is not a folder"
        raise FileNotFoundError(f"SMACv2 needs StarCraft II, but SC2PATH {where}: install StarCraft II "
                                "(Linux: Blizzard's s2client-proto packages) and set SC2PATH to its folder.")
    maps = Path(sc2) / "Maps" / "SMAC_Maps" / MAP_FILE
    if not maps.is_file():
        raise FileNotFoundError(f"SMACv2 map file {maps} is missing: copy SMACv2's SMAC_Maps folder (with "
                                f"{MAP_FILE}, from the smacv2 repository's maps release) into {maps.parent.parent}.")
    return Path(sc2)


def smacv2_available() -> bool:
    """True when smacv2 is importable and StarCraft II with SMACv2's map is found."""
    try:
        check_starcraft()
    except FileNotFoundError:
        return False
    return importlib.util.find_spec("smacv2") is not None


def default_wrapper_factory(task: str, **overrides: Any) -> Callable[[int], Any]:
    """``seed -> StarCraftCapabilityEnvWrapper`` for a task; checks StarCraft II first, then smacv2."""
    check_starcraft()
    try:
        from smacv2.env import StarCraftCapabilityEnvWrapper
    except ImportError as err:
        raise ImportError(f"SMACv2 tasks need the smacv2 package, which is not importable: {INSTALL}.") from err
    return lambda seed: StarCraftCapabilityEnvWrapper(**wrapper_kwargs(task, seed, **overrides))


def _seed_distributions(wrapper: Any, seed: int) -> None:
    """Re-seed every numpy Generator of the wrapper's team / position distributions (SMACv2
    creates them unseeded); a no-op for wrappers without ``env_key_to_distribution_map``."""
    stack, k = list(getattr(wrapper, "env_key_to_distribution_map", {}).values()), 0
    while stack:
        dist = stack.pop(0)
        for attr, value in list(getattr(dist, "__dict__", {}).items()):
            if isinstance(value, np.random.Generator):
                setattr(dist, attr, np.random.default_rng([seed, k]))
                k += 1
            elif hasattr(value, "generate"):
                stack.append(value)


class Smacv2Env:
    """E independent SMACv2 battles behind the VecMultiAgentEnv protocol (one StarCraft II
    process per env, stepped in a loop over envs; all agent data is stacked).

    Args:
        name: a key of :data:`TASKS`. num_envs, device, seed: batch size, tensor device, base seed.
        wrapper_factory: ``seed -> wrapper`` with SMACv2's API (tests pass a fake); default
            :func:`default_wrapper_factory`. env_kwargs: StarCraft2Env overrides for the default.
    """

    def __init__(self, name: str, num_envs: int = 1, device: str | torch.device = "cpu", seed: int = 0,
                 wrapper_factory: Callable[[int], Any] | None = None, **env_kwargs: Any):
        task = _task(name)
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: give at least 1 env.")
        if wrapper_factory is not None and env_kwargs:
            raise ValueError(f"env kwargs {sorted(env_kwargs)} only apply to the default wrapper factory.")
        factory = wrapper_factory or default_wrapper_factory(name, **env_kwargs)
        self.task, self.num_envs, self.device = task, num_envs, torch.device(device)
        self._envs = [factory(seed + e) for e in range(num_envs)]
        for e, w in enumerate(self._envs):
            _seed_distributions(w, seed + e)
        info = self._envs[0].get_env_info()
        n, obs_dim = int(info["n_agents"]), int(info["obs_shape"])
        names = list(self._envs[0].get_obs_feature_names())
        own = [i for i, f in enumerate(names) if f.startswith("own_") and not f.startswith("own_unit_type_bit")]
        if len(names) != obs_dim or "own_health" not in names:
            raise ValueError(f"{name}: cannot find own_health among the {obs_dim} observation features; build the "
                             "env with obs_own_health=True (StarCraft2Env's default).")
        self._own = torch.tensor(own, device=self.device)
        self._health = names.index("own_health")
        state_names = list(self._envs[0].get_state_feature_names()) if hasattr(self._envs[0], "get_state_feature_names") else []
        enemy = [i for i, f in enumerate(state_names) if f.startswith("enemy_")]
        self._enemy = torch.tensor(enemy, device=self.device) if enemy else None
        self.spec = EnvSpec(
            name=name, n_agents=n, obs_dim=obs_dim, state_dim=int(info["state_shape"]), local_state_dim=len(own),
            action_dim=int(info["n_actions"]), discrete=True, max_steps=int(info["episode_limit"]),
            obs_dims=(obs_dim,) * n, groups=None,
        )
        self.unit_types: Tensor | None = None
        self._types: list[list[int]] = [[] for _ in self._envs]
        self._avail: Tensor | None = None

    @property
    def model(self):  # noqa: ANN201
        """No model access: quantification on SMACv2 is model-free."""
        return None

    def _read(self, w: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(w.get_obs(), np.float32), np.asarray(w.get_state(), np.float32),
                np.asarray(w.get_avail_actions()).astype(bool))

    def _reset_one(self, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self._envs[e]
        w.reset()
        # unit objects live in the game client, so this reads N ids once per episode
        self._types[e] = [int(w.get_unit_type_id(w.agents[i], True)) for i in range(self.spec.n_agents)]
        return self._read(w)

    def _stack(self, items: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Observation:
        obs, state, avail = (torch.from_numpy(np.stack([x[k] for x in items])).to(self.device) for k in range(3))
        return Observation(obs=obs, state=state, local_state=obs.index_select(-1, self._own), avail_actions=avail,
                           alive=obs[..., self._health] > 0,
                           env_state=None if self._enemy is None else state.index_select(-1, self._enemy))

    def _types_tensor(self) -> Tensor:
        return torch.tensor(self._types, dtype=torch.long, device=self.device)

    def reset(self, seed: int | None = None) -> Observation:
        """Start a new episode in every env; a given ``seed`` re-seeds the team / position draws."""
        if seed is not None:
            for e, w in enumerate(self._envs):
                _seed_distributions(w, seed + e)
        out = self._stack([self._reset_one(e) for e in range(self.num_envs)])
        self.unit_types, self._avail = self._types_tensor(), out.avail_actions
        return out

    def _check(self, actions: Tensor) -> np.ndarray:
        if self._avail is None:
            raise RuntimeError(f"{self.spec.name}: call reset() before step().")
        return check_discrete_actions(self.spec.name, actions, self._avail).cpu().numpy()

    def step(self, actions: Tensor) -> StepResult:
        act = self._check(actions)
        nxt, out, rew, term, trunc, won = [], [], [], [], [], []
        types = self._types_tensor()
        for e, w in enumerate(self._envs):
            r, done, info = w.step(act[e].tolist())
            limit = bool(done) and bool(info.get("episode_limit", False))
            item = self._read(w)
            nxt.append(item)
            out.append(self._reset_one(e) if done else item)
            rew.append(float(r))
            term.append(bool(done) and not limit)
            trunc.append(limit)
            won.append(bool(info.get("battle_won", False)))
        d, n = self.device, self.spec.n_agents
        reward = torch.tensor(rew, dtype=torch.float32, device=d)[:, None].expand(-1, n).clone()
        res = StepResult(
            next=self._stack(nxt), reward=reward,
            terminated=torch.tensor(term, device=d), truncated=torch.tensor(trunc, device=d), obs=self._stack(out),
            info={"won": torch.tensor(won, device=d), "unit_types": types},
        )
        self.unit_types, self._avail = self._types_tensor(), res.obs.avail_actions
        return res

    heuristic_is_random = True  # no scripted policy: --behaviour heuristic draws random actions

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """Uniformly random available actions (``noise`` is unused): SMACv2 has no goal-directed
        scripted policy without the game's internals, so model-free kinds see random behaviour."""
        return random_available_actions(obs.avail_actions, generator).to(self.device)

    def close(self) -> None:
        """Shut down every StarCraft II process."""
        for w in self._envs:
            w.close()


def make_smacv2(name: str) -> Callable[..., Smacv2Env]:
    """A registry factory with the registry's signature (task bound)."""
    _task(name)

    def factory(num_envs: int = 1, device: str | torch.device = "cpu", seed: int = 0, continuous: bool = False,
                **kw: Any) -> Smacv2Env:
        if continuous:
            raise ValueError(f"{name}: SMACv2 actions are discrete; drop --continuous.")
        return Smacv2Env(name, num_envs=num_envs, device=device, seed=seed, **kw)

    return factory


def register_all(register) -> None:  # noqa: ANN001
    """Add every SMACv2 task to the env registry (listed even without StarCraft II; building one
    then raises a FileNotFoundError / ImportError saying what to install)."""
    for name, task in TASKS.items():
        register(name, make_smacv2(name), task.description + " [optional extra: smacv2 + StarCraft II]")
