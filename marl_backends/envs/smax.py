"""SMAX backend: JaxMARL's JAX re-implementation of SMAC, vectorised with ``jax.vmap`` (optional extra).

Install with ``pip install -c constraints.txt -e '.[smax]'`` (JaxMARL on CPU JAX, about 16 s).
No StarCraft II binary is needed. Every SMAX map is registered as ``smax_<map>``, e.g.
``smax_3s5z``, ``smax_3s5z_vs_3s6z`` (the core paper's heterogeneous maps, Table 4) and the
SMACv2-style ``smax_smacv2_5_units`` / ``_10_units`` / ``_20_units`` (unit types and start
positions drawn per episode). We control the allies; the enemies run SMAX's scripted heuristic.

Layout of one env step (all in one jitted, vmapped call): decode ally actions, step the world,
auto-reset finished envs, and return the true next observation and the reset one side by side
(``StepResult.next`` / ``StepResult.obs``), so no per-step Python loop over envs or agents.

- ``obs`` [E, N, Do]: SMAX's unit-list observation (13 features per other unit, then the
  agent's own 10: health, x, y, weapon cooldown, unit-type one-hot).
- ``state`` [E, Ds]: SMAX's world state (every unit's own features, teams, unit types).
- ``local_state`` [E, N, 4]: the agent's own health, x, y and weapon cooldown (the first 4 of
  its own features). The unit-type bits are left out on purpose: in x of the meta-transition they
  would hand the CVAE each agent's type and hide the very difference we want to measure.
- ``env_state`` [E, ne * 10]: the environment part S^E of the world state, every enemy unit's
  features (health, x, y, cooldown, unit-type one-hot; zeros once dead), for ego-centric
  model-free conditions.
- ``avail_actions`` [E, N, A] bool: SMAX's masks (moves 0-3, stop 4, attack enemy k at 5+k; a
  dead unit may only stop). The trainers never sample an unavailable action.
- ``alive`` [E, N]: dead units' rows are left out of sample pools (they say nothing about the
  unit's type).
- reward [E, N]: the allies' shared team reward (enemy health lost, +1 for a won battle).
- terminated: a team was wiped out; truncated: the step limit was hit first.
- ``info``: ``won`` [E] (all enemies dead, an ally alive) and ``unit_types`` [E, N].

Unit types: on fixed maps ``spec.groups`` is the allies' types (stalker / zealot on 3s5z), so
``--sharing groups:env`` is the paper's "original type" layout; SMACv2-style maps draw types per
episode, so ``spec.groups`` is None and ``info["unit_types"]`` carries them.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch
from torch import Tensor

from marl_backends.envs.base import EnvSpec, Observation, StepResult, check_discrete_actions, random_available_actions

N_MOVE = 5  # moves 0-3 (N, E, S, W after SMAX's rotation), stop 4
STOP = 4
OWN_FEATURES = 10  # health, x, y, cooldown, 6 unit-type bits
LOCAL_STATE = 4  # health, x, y, cooldown: the unit's physical state, without its type
UNIT_FEATURES = 13  # health, dx, dy, last move (2), last target, cooldown, 6 unit-type bits
UNIT_TYPE_NAMES = ("marine", "marauder", "stalker", "zealot", "zergling", "hydralisk")
INSTALL = "pip install -c constraints.txt -e '.[smax]'  (JaxMARL on CPU JAX)"

# SMAX maps and what they are (map names as in JaxMARL's MAP_NAME_TO_SCENARIO)
MAPS: dict[str, str] = {
    "3m": "3 marines vs 3",
    "8m": "8 marines vs 8",
    "25m": "25 marines vs 25",
    "5m_vs_6m": "5 marines vs 6",
    "10m_vs_11m": "10 marines vs 11",
    "27m_vs_30m": "27 marines vs 30",
    "2s3z": "2 stalkers + 3 zealots vs the same (heterogeneous)",
    "3s5z": "3 stalkers + 5 zealots vs the same (heterogeneous; paper Table 4)",
    "3s5z_vs_3s6z": "3 stalkers + 5 zealots vs 3 + 6 (heterogeneous, hard; paper Table 4)",
    "3s_vs_5z": "3 stalkers vs 5 zealots",
    "6h_vs_8z": "6 hydralisks vs 8 zealots",
    "smacv2_5_units": "SMACv2-style 5v5, unit types and positions drawn per episode",
    "smacv2_10_units": "SMACv2-style 10v10, unit types and positions drawn per episode",
    "smacv2_20_units": "SMACv2-style 20v20, unit types and positions drawn per episode",
}


def smax_available() -> bool:
    return importlib.util.find_spec("jaxmarl") is not None


def _import_jax():
    if not smax_available():
        raise ImportError(f"SMAX envs need JaxMARL and JAX, which are not installed. Install them with: {INSTALL}")
    # on a GPU machine JAX must not preallocate the memory torch needs
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax
    import jax.numpy as jnp
    from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario
    return jax, jnp, HeuristicEnemySMAX, map_name_to_scenario


def _to_torch(x, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    """A JAX array as a torch tensor (zero-copy through DLPack on CPU, then cast / moved)."""
    t = torch.from_dlpack(x)
    return t.to(device=device, dtype=dtype or t.dtype)


_COMPILED: dict[tuple, tuple] = {}


def _batch_functions(jax, jnp, env):  # noqa: ANN001, ANN202
    """(reset, step): SMAX reset and step-with-auto-reset, vmapped over envs and jitted."""
    agents, n = env.agents, env.num_allies

    def observe(obs_dict, state):
        obs = jnp.stack([obs_dict[a] for a in agents])
        avail = env.get_avail_actions(state)
        return obs, obs_dict["world_state"], jnp.stack([avail[a] for a in agents]).astype(bool)

    def strong(state):  # weakly typed leaves change type after a step and would force a recompile
        return jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype), state)

    def reset_one(key):
        obs, state = env.reset(key)
        return (*observe(obs, state), strong(state))

    def step_one(key, state, actions, max_steps):
        key, k_step, k_reset = jax.random.split(key, 3)
        obs_d, nstate, rew, _, _ = env.step_env(k_step, state, {a: actions[i] for i, a in enumerate(agents)})
        inner = nstate.state
        allies_dead = ~jnp.any(inner.unit_alive[:n])
        enemies_dead = ~jnp.any(inner.unit_alive[n:])
        terminated = allies_dead | enemies_dead
        done = terminated | (inner.step >= max_steps)
        obs, world, avail = observe(obs_d, nstate)
        r_obs, r_world, r_avail, r_state = reset_one(k_reset)
        pick = lambda a, b: jnp.where(done, a, b)  # noqa: E731
        out_state = strong(jax.tree.map(pick, r_state, nstate))
        return (key, out_state, obs, world, avail, jnp.stack([rew[a] for a in agents]), terminated, done,
                enemies_dead & ~allies_dead, inner.unit_types[:n], pick(r_obs, obs), pick(r_world, world),
                pick(r_avail, avail), out_state.state.unit_types[:n])

    return jax.jit(jax.vmap(reset_one)), jax.jit(jax.vmap(step_one, in_axes=(0, 0, 0, None)))


class SmaxEnv:
    """``num_envs`` SMAX battles on one map, stepped together by one jitted ``vmap``.

    Args:
        map_name: a key of :data:`MAPS` (``"3s5z"``), with or without the ``smax_`` prefix.
        num_envs, device, seed: batch size, torch device of the returned tensors, seed of ``reset``.
        max_steps: episode step limit (SMAX's default 100 env steps, each 8 world steps).
        attack_mode: the scripted enemies' targeting, ``closest`` or ``random``.
    """

    def __init__(self, map_name: str, num_envs: int = 32, device: str | torch.device = "cpu", seed: int = 0,
                 max_steps: int = 100, attack_mode: str = "closest"):
        jax, jnp, HeuristicEnemySMAX, map_name_to_scenario = _import_jax()
        map_name = map_name.removeprefix("smax_")
        if map_name not in MAPS:
            raise ValueError(f"unknown SMAX map {map_name!r}; valid maps: {', '.join(MAPS)}.")
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: give at least 1 env.")
        self.map_name, self.num_envs, self.device = map_name, num_envs, torch.device(device)
        self._jax, self._jnp = jax, jnp
        scenario = map_name_to_scenario(map_name)
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps}: give a positive episode step limit.")
        self._max_steps = jnp.asarray(max_steps, dtype=jnp.int32)
        key = (map_name, attack_mode)
        if key not in _COMPILED:  # one JAX env + jitted functions per map, shared by instances (compiles once)
            # the step limit is our jitted argument; SMAX's own (only stored in its state) is never reached
            env = HeuristicEnemySMAX(scenario=scenario, max_steps=2**30, attack_mode=attack_mode)
            _COMPILED[key] = (env, *_batch_functions(jax, jnp, env))
        env, self._reset_fn, self._step_fn = _COMPILED[key]
        self._env = env
        n, ne = env.num_allies, env.num_enemies
        per_unit = env.state_size // (n + ne) - 2  # world state = unit features, then teams, then types
        self._enemies = slice(n * per_unit, (n + ne) * per_unit)
        static_types = not (scenario.smacv2_unit_type_generation or scenario.smacv2_position_generation)
        types = tuple(int(t) for t in np.asarray(scenario.unit_types[:n]))
        self.unit_type_names = tuple(UNIT_TYPE_NAMES[t] for t in types) if static_types else None
        rank = {t: i for i, t in enumerate(sorted(set(types)))}
        self.spec = EnvSpec(
            name=f"smax_{map_name}", n_agents=n, obs_dim=env.obs_size, state_dim=env.state_size,
            local_state_dim=LOCAL_STATE, action_dim=N_MOVE + ne, discrete=True, max_steps=max_steps,
            groups=tuple(rank[t] for t in types) if static_types else None,
        )
        self._keys = self._state = None
        self.reset(seed)

    def _observation(self, obs, world, avail) -> Observation:  # noqa: ANN001
        o = _to_torch(obs, self.device, torch.float32)
        own = o[..., -OWN_FEATURES:-OWN_FEATURES + LOCAL_STATE].clone()  # all zero once dead; health > 0 alive
        w = _to_torch(world, self.device, torch.float32)
        return Observation(obs=o, state=w, local_state=own, avail_actions=_to_torch(avail, self.device),
                           alive=own[..., 0] > 0, env_state=w[:, self._enemies])

    # ---- protocol ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        jax = self._jax
        base = jax.random.PRNGKey(0 if seed is None else int(seed))
        keys = jax.random.split(base, self.num_envs + 1)
        self._keys = keys[1:]
        obs, world, avail, self._state = self._reset_fn(jax.random.split(keys[0], self.num_envs))
        self.unit_types = _to_torch(self._state.state.unit_types[:, : self.spec.n_agents], self.device, torch.long)
        self._avail = _to_torch(avail, self.device)
        return self._observation(obs, world, avail)

    def step(self, actions: Tensor) -> StepResult:
        a = check_discrete_actions(self.spec.name, actions, self._avail).cpu()
        (self._keys, self._state, obs, world, avail, rew, term, done, won, types, r_obs, r_world, r_avail,
         r_types) = self._step_fn(self._keys, self._state, self._jnp.asarray(a.numpy().astype(np.int32)), self._max_steps)
        d = self.device
        terminated, done_t = _to_torch(term, d), _to_torch(done, d)
        info = {"won": _to_torch(won, d), "unit_types": _to_torch(types, d, torch.long)}
        self.unit_types = _to_torch(r_types, d, torch.long)
        self._avail = _to_torch(r_avail, d)
        return StepResult(next=self._observation(obs, world, avail), reward=_to_torch(rew, d, torch.float32),
                          terminated=terminated, truncated=done_t & ~terminated,
                          obs=self._observation(r_obs, r_world, r_avail), info=info)

    def snapshot_state(self) -> dict:
        """Every env's battle state, PRNG keys and masks as numpy arrays (exact off-policy resume)."""
        jax = self._jax
        return {"keys": np.asarray(self._keys), "state": [np.asarray(x) for x in jax.tree.leaves(self._state)],
                "avail": self._avail.cpu().clone(), "unit_types": self.unit_types.cpu().clone()}

    def restore_state(self, snap: dict) -> None:
        """Inverse of :meth:`snapshot_state` on an env built with the same map and num_envs."""
        jax, jnp = self._jax, self._jnp
        leaves, tree = jax.tree.flatten(self._state)
        if len(snap["state"]) != len(leaves) or any(a.shape != b.shape for a, b in zip(snap["state"], leaves)):
            raise ValueError(f"{self.spec.name}: the snapshot is from a different map or num_envs; rebuild the env "
                             "the checkpoint was written with.")
        self._state = jax.tree.unflatten(tree, [jnp.asarray(x) for x in snap["state"]])
        self._keys = jnp.asarray(snap["keys"])
        self._avail = snap["avail"].to(self.device)
        self.unit_types = snap["unit_types"].to(self.device)

    @property
    def model(self):  # noqa: ANN201
        """SMAX has no analytic model here: quantification is model-free."""
        return None

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """Scripted micro from the observation: attack the closest enemy in range, else move
        towards the closest visible enemy, else towards the map centre; with probability
        ``noise`` a uniformly random available action instead. Never unavailable."""
        o, avail = obs.obs, obs.avail_actions.bool()
        e, n, _ = o.shape
        ne = self.spec.action_dim - N_MOVE
        enemies = o[..., (n - 1) * UNIT_FEATURES:(n - 1 + ne) * UNIT_FEATURES].reshape(e, n, ne, UNIT_FEATURES)
        visible = enemies[..., 0] > 0
        dist = enemies[..., 1:3].norm(dim=-1).masked_fill(~visible, float("inf"))
        shoot = avail[..., N_MOVE:]
        target = dist.masked_fill(~shoot, float("inf")).argmin(-1)
        # direction: towards the closest visible enemy, else the centre (own x, y are in [0, 1])
        closest = dist.argmin(-1, keepdim=True)
        to_enemy = enemies[..., 1:3].gather(2, closest[..., None].expand(e, n, 1, 2))[:, :, 0]
        to_centre = 0.5 - o[..., -OWN_FEATURES + 1:-OWN_FEATURES + 3]
        vec = torch.where(visible.any(-1, keepdim=True), to_enemy, to_centre)
        move = (_MOVE_DIRS.to(o) @ vec[..., None])[..., 0].masked_fill(~avail[..., :4], -float("inf")).argmax(-1)
        act = torch.where(shoot.any(-1), N_MOVE + target, move)
        act = torch.where(avail.gather(-1, act[..., None])[..., 0], act, torch.full_like(act, STOP))
        if noise > 0:
            rand = random_available_actions(avail, generator)
            flip = torch.rand((e, n), generator=generator, device=generator.device).to(o.device) < noise
            act = torch.where(flip, rand, act)
        return act

    def close(self) -> None:
        self._state = None


# unit move vectors of actions 0-3 after SMAX's 45-degree rotation: (0, 1), (1, 0), (0, -1), (-1, 0)
_MOVE_DIRS = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])


def make_smax(map_name: str):
    """A registry factory with the registry's signature (map bound)."""

    def factory(num_envs: int = 32, device: str | torch.device = "cpu", seed: int = 0, continuous: bool = False, **kw):
        if continuous:
            raise ValueError(f"smax_{map_name} has discrete actions only; drop --continuous.")
        return SmaxEnv(map_name, num_envs=num_envs, device=device, seed=seed, **kw)

    return factory


def register_all(register) -> None:  # noqa: ANN001
    """Add every SMAX map to the env registry (listed even without the extra; building one then
    raises an ImportError with the install command)."""
    for name, desc in MAPS.items():
        register(f"smax_{name}", make_smax(name), f"SMAX {desc} [optional extra: jaxmarl]")
