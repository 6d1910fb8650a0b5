"""MaMuJoCo backend (gymnasium-robotics ``mamujoco_v1``, MuJoCo from PyPI), optional extra.

Install with ``pip install -c constraints.txt gymnasium-robotics mujoco`` (about 6 s and 160 MB
from wheels). Every name below is a continuous-action, team-reward task; the critic's global
state is ``env.state()`` (qpos without the root x, and qvel).

Heterogeneous variants (OMDPG paper Sec. 5.2, "HalfCheetah-Het." / "Walker-Het."): the paper
changes joint gear ratios but does not list them. We use:

- ``*_halfcheetah_*_het``: the **fore leg** gears are halved: fthigh 120 -> 60, fshin 60 -> 30,
  ffoot 30 -> 15 (hind leg bthigh 120, bshin 90, bfoot 60 unchanged).
- ``mamujoco_walker_2x3_het``: the **left leg** gears are halved: thigh_left, leg_left,
  foot_left 100 -> 50 (right leg unchanged at 100).

The paper's ParPS grouping is ``spec.groups``: HalfCheetah hind leg = group 0, fore leg = 1;
Walker right leg = 0, left leg = 1 (for 2x3 each agent is its own group; for 6x1 the three hind
and the three fore joints form two groups). ``static_layout(name)`` returns it.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from marl_backends.envs.base import EnvSpec, Observation, StepResult


@dataclass(frozen=True)
class MaMuJoCoTask:
    """One registered task.

    Attributes:
        scenario / agent_conf: gymnasium-robotics names (e.g. "HalfCheetah", "2x3").
        gear_scale: actuator index -> multiplier of that actuator's gear (the Het variants).
        groups: the paper's static grouping, agent -> group.
        description: one line for ``hetero envs``.
    """

    scenario: str
    agent_conf: str
    gear_scale: tuple[tuple[int, float], ...]
    groups: tuple[int, ...]
    description: str


_FORE_HALF = ((3, 0.5), (4, 0.5), (5, 0.5))  # HalfCheetah actuators fthigh, fshin, ffoot
_LEFT_HALF = ((3, 0.5), (4, 0.5), (5, 0.5))  # Walker2d actuators thigh_left, leg_left, foot_left

TASKS: dict[str, MaMuJoCoTask] = {
    "mamujoco_halfcheetah_2x3": MaMuJoCoTask("HalfCheetah", "2x3", (), (0, 1), "HalfCheetah, 2 agents (hind / fore leg, 3 joints each)"),
    "mamujoco_halfcheetah_6x1": MaMuJoCoTask("HalfCheetah", "6x1", (), (0, 0, 0, 1, 1, 1), "HalfCheetah, 6 one-joint agents; groups hind / fore"),
    "mamujoco_walker_2x3": MaMuJoCoTask("Walker2d", "2x3", (), (0, 1), "Walker2d, 2 agents (right / left leg)"),
    "mamujoco_halfcheetah_2x3_het": MaMuJoCoTask("HalfCheetah", "2x3", _FORE_HALF, (0, 1), "HalfCheetah-Het 2x3: fore-leg gears x0.5"),
    "mamujoco_halfcheetah_6x1_het": MaMuJoCoTask("HalfCheetah", "6x1", _FORE_HALF, (0, 0, 0, 1, 1, 1), "HalfCheetah-Het 6x1: fore-leg gears x0.5; groups hind / fore"),
    "mamujoco_walker_2x3_het": MaMuJoCoTask("Walker2d", "2x3", _LEFT_HALF, (0, 1), "Walker-Het 2x3: left-leg gears x0.5"),
}


def mamujoco_available() -> bool:
    """True when the optional extra (gymnasium-robotics + mujoco) is importable."""
    return importlib.util.find_spec("gymnasium_robotics") is not None and importlib.util.find_spec("mujoco") is not None


def static_layout(name: str) -> tuple[int, ...]:
    """The paper's ParPS grouping for a MaMuJoCo task (hind/fore, right/left legs)."""
    return _task(name).groups


def _task(name: str) -> MaMuJoCoTask:
    if name not in TASKS:
        raise ValueError(f"unknown MaMuJoCo task {name!r}; choose one of {sorted(TASKS)}.")
    return TASKS[name]


def _make_parallel(task: MaMuJoCoTask, max_steps: int):
    if not mamujoco_available():
        raise ImportError(
            "MaMuJoCo tasks need the optional extra: `pip install -c constraints.txt gymnasium-robotics mujoco`."
        )
    os.environ.setdefault("MUJOCO_GL", "disable")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from gymnasium_robotics import mamujoco_v1

        env = mamujoco_v1.parallel_env(task.scenario, task.agent_conf, max_episode_steps=max_steps)
    model = env.single_agent_env.unwrapped.model
    for act, scale in task.gear_scale:
        model.actuator_gear[act, 0] *= scale
    return env


class MaMuJoCoEnv:
    """E independent MaMuJoCo envs behind the VecMultiAgentEnv protocol (stepped in a loop over
    envs: MuJoCo runs on CPU, one simulator per env). Rewards are the team reward replicated to
    every agent; ``local_state`` is an agent's own joints' (qpos, qvel); ``env_state`` (S^E) is
    the (qpos, qvel) of the joints no agent owns, i.e. the torso, without the root x position
    (as ``env.state()`` leaves it out)."""

    def __init__(self, name: str, num_envs: int = 1, device: str | torch.device = "cpu", seed: int = 0, max_steps: int = 1000):
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}; need at least 1 env.")
        task = _task(name)
        self.num_envs = num_envs
        self.device = torch.device(device)
        self._seed = seed
        self._envs = [_make_parallel(task, max_steps) for _ in range(num_envs)]
        e0 = self._envs[0]
        self._agents = list(e0.possible_agents)
        obs_dims = tuple(int(e0.observation_space(a).shape[0]) for a in self._agents)
        parts = e0.agent_action_partitions
        self._qpos_ids = [[n.qpos_ids for n in part] for part in parts]
        self._qvel_ids = [[n.qvel_ids for n in part] for part in parts]
        mj = e0.single_agent_env.unwrapped.model
        owned_q = {int(q) % mj.nq for ids in self._qpos_ids for q in ids}
        owned_v = {int(v) % mj.nv for ids in self._qvel_ids for v in ids}
        self._env_qpos = [k for k in range(1, mj.nq) if k not in owned_q]  # qpos[0] = root x, unbounded
        self._env_qvel = [k for k in range(mj.nv) if k not in owned_v]
        self._act_dims = [int(e0.action_space(a).shape[0]) for a in self._agents]
        if len(set(self._act_dims)) != 1:
            raise ValueError(f"{name}: agents have different action sizes {self._act_dims}; not supported.")
        sp = e0.action_space(self._agents[0])
        low, high = float(np.min(sp.low)), float(np.max(sp.high))
        e0.reset(seed=seed)
        self.spec = EnvSpec(
            name=name, n_agents=len(self._agents), obs_dim=max(obs_dims), state_dim=int(e0.state().shape[0]),
            local_state_dim=2 * len(self._qpos_ids[0]), action_dim=self._act_dims[0], discrete=False,
            max_steps=max_steps, obs_dims=obs_dims, groups=task.groups, action_low=low, action_high=high,
        )
        self._low, self._high = low, high

    @property
    def model(self):
        return None

    def _observe_one(self, env, obs: dict) -> tuple[np.ndarray, ...]:
        s = self.spec
        o = np.zeros((s.n_agents, s.obs_dim), np.float32)
        for i, a in enumerate(self._agents):
            o[i, : s.obs_dims[i]] = obs[a]
        data = env.single_agent_env.unwrapped.data
        loc = np.stack([np.concatenate([data.qpos[q], data.qvel[v]]) for q, v in zip(self._qpos_ids, self._qvel_ids)])
        env_part = np.concatenate([data.qpos[self._env_qpos], data.qvel[self._env_qvel]]).astype(np.float32)
        return o, np.asarray(env.state(), np.float32), loc.astype(np.float32), env_part

    def _stack(self, items: list[tuple[np.ndarray, ...]]) -> Observation:
        t = lambda k: torch.as_tensor(np.stack([x[k] for x in items]), device=self.device)  # noqa: E731
        return Observation(obs=t(0), state=t(1), local_state=t(2), env_state=t(3) if items[0][3].size else None)

    def reset(self, seed: int | None = None) -> Observation:
        base = self._seed if seed is None else seed
        items = []
        for e, env in enumerate(self._envs):
            obs, _ = env.reset(seed=base + e)
            items.append(self._observe_one(env, obs))
        return self._stack(items)

    def step(self, actions: Tensor) -> StepResult:
        s = self.spec
        if actions.shape != (self.num_envs, s.n_agents, s.action_dim):
            raise ValueError(
                f"{s.name}: actions have shape {tuple(actions.shape)}, expected "
                f"({self.num_envs}, {s.n_agents}, {s.action_dim}) = (envs, agents, action_dim)."
            )
        act = actions.detach().clamp(self._low, self._high).cpu().numpy()
        nxt, out, rew, term, trunc = [], [], [], [], []
        for e, env in enumerate(self._envs):
            obs, r, te, tr, _ = env.step({a: act[e, i] for i, a in enumerate(self._agents)})
            a0 = self._agents[0]
            item = self._observe_one(env, obs)
            nxt.append(item)
            rew.append(float(r[a0]))
            term.append(bool(te[a0]))
            trunc.append(bool(tr[a0]) and not bool(te[a0]))
            if term[-1] or trunc[-1]:
                obs, _ = env.reset()
                item = self._observe_one(env, obs)
            out.append(item)
        reward = torch.tensor(rew, dtype=torch.float32, device=self.device)[:, None].expand(-1, s.n_agents).contiguous()
        return StepResult(
            next=self._stack(nxt), reward=reward,
            terminated=torch.tensor(term, device=self.device), truncated=torch.tensor(trunc, device=self.device),
            obs=self._stack(out),
        )

    # ---- exact resume (used by the on- and off-policy checkpoints, marl_backends/envs/state.py) ----
    @staticmethod
    def _wrappers(env) -> list:
        chain, w = [], env.single_agent_env
        while w is not None:
            chain.append(w)
            w = getattr(w, "env", None)
        return chain

    def snapshot_state(self) -> list[dict]:
        """Per simulator: MuJoCo's full integration state (mj_getState, incl. warm start), the
        wrappers' counters (TimeLimit step count, ...) and the reset RNG; numpy only."""
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        out = []
        for env in self._envs:
            u = env.single_agent_env.unwrapped
            buf = np.empty(mujoco.mj_stateSize(u.model, spec), np.float64)
            mujoco.mj_getState(u.model, u.data, buf, spec)
            counters = [{k: v for k, v in vars(w).items() if isinstance(v, (bool, int, float))} for w in self._wrappers(env)]
            out.append({"mj": buf, "counters": counters, "rng": u.np_random.bit_generator.state,
                        "agents": list(env.agents)})
        return out

    def restore_state(self, state: list[dict]) -> None:
        """Inverse of :meth:`snapshot_state` on an env built with the same name and num_envs."""
        import mujoco

        if len(state) != self.num_envs:
            raise ValueError(f"{self.spec.name}: snapshot has {len(state)} envs but this env has {self.num_envs}; "
                             "resume with the run's own --num-envs.")
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        for env, st in zip(self._envs, state):
            u = env.single_agent_env.unwrapped
            mujoco.mj_setState(u.model, u.data, st["mj"], spec)
            mujoco.mj_forward(u.model, u.data)
            for w, c in zip(self._wrappers(env), st["counters"]):
                for k, v in c.items():
                    setattr(w, k, v)
            u.np_random.bit_generator.state = st["rng"]
            env.agents = list(st["agents"])

    heuristic_is_random = True  # no scripted policy: --behaviour heuristic draws random actions

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """MaMuJoCo ships no scripted policy: uniformly random actions in the bounds."""
        s = self.spec
        u = torch.rand((self.num_envs, s.n_agents, s.action_dim), generator=generator, device=generator.device)
        return (self._low + (self._high - self._low) * u).to(self.device)


def make_mamujoco(name: str):
    """A registry factory with the registry's signature (name bound)."""

    def factory(num_envs: int = 1, device: str | torch.device = "cpu", seed: int = 0, continuous: bool = True, **kw):
        # MaMuJoCo is continuous-only; ``continuous`` is accepted for the registry's uniform signature.
        return MaMuJoCoEnv(name, num_envs=num_envs, device=device, seed=seed, **kw)

    return factory


def register_all(register) -> None:
    """Add every MaMuJoCo task to the env registry (names are listed even without the extra;
    building one then raises an ImportError with the install command)."""
    for name, task in TASKS.items():
        register(name, make_mamujoco(name), task.description + " [optional extra: gymnasium-robotics]")
