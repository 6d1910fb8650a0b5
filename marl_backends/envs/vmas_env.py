"""VmasEnv: the :class:`~marl_backends.envs.base.VecMultiAgentEnv` protocol over ``vmas.make_env``.

Serves our scenarios (PMS, spread; model access and a goal-directed heuristic) and VMAS
built-ins (no model; VMAS's shipped heuristic for continuous actions where the scenario has one,
uniformly random actions otherwise). Per-agent VMAS lists become [E, N, ...] tensors; unequal
observation sizes are zero-padded to ``spec.obs_dim``. Episodes are truncated at
``spec.max_steps``; finished envs are reset automatically (``StepResult.next`` is the true next
observation, ``StepResult.obs`` the one to act on).

State layouts. Ours: ``state = [p_1, v_1, ..., p_N, v_N, l_1, ..., l_L]`` (4N + 2L),
``local_state = (p_i, v_i)``, ``env_state = [l_1, ..., l_L]`` (the landmarks, S^E).
Built-ins: ``state`` = all agents' observations concatenated, ``local_state = (p_i, v_i)``,
``env_state`` = every VMAS landmark's (position, velocity) (None for a world without landmarks).

Actions: ours take 5 discrete actions (no-op, -x, +x, -y, +y; [E, N] long) or continuous
[E, N, 2] in [-1, 1] (clamped); both drive VMAS in continuous mode through the same force table
the model uses. Built-ins use VMAS's own discrete (flattened) or continuous actions.
"""
from __future__ import annotations

import torch
import vmas
from torch import Tensor
from vmas.scenarios import load as load_scenario
from vmas.simulator.scenario import BaseScenario

from marl_backends.envs import heuristic as H
from marl_backends.envs.base import EnvSpec, Observation, StepResult
from marl_backends.envs.model import LandmarkModel
from marl_backends.envs.physics import N_DISCRETE, actions_to_u
from marl_backends.envs.scenario_base import LandmarkScenario


class VmasEnv:
    """A batch of ``num_envs`` VMAS worlds.

    Args:
        scenario: a :class:`LandmarkScenario` instance (ours) or a VMAS built-in's name.
        name: registry name (for the spec).
        num_envs, device, seed: batch size, torch device, seed of ``reset``.
        continuous: continuous instead of discrete actions.
        max_steps: episode length (truncation).
        **scenario_kw: passed to the scenario's ``make_world``.
    """

    def __init__(self, scenario: BaseScenario | str, name: str, num_envs: int = 32, device: str | torch.device = "cpu",
                 seed: int = 0, continuous: bool = False, max_steps: int = 50, **scenario_kw):
        self.device = torch.device(device)
        self.num_envs = num_envs
        self.ours = isinstance(scenario, LandmarkScenario)
        self.continuous = continuous
        self._module = None
        if isinstance(scenario, str):
            self._module = load_scenario(f"{scenario}.py")
            scenario = self._module.Scenario()
        self._env = vmas.make_env(
            scenario, num_envs=num_envs, device=self.device, continuous_actions=continuous or self.ours,
            seed=seed, clamp_actions=True, **scenario_kw,
        )
        self.scenario = self._env.scenario
        self._agents = self._env.agents
        self._t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._model = LandmarkModel(self.scenario, not continuous) if self.ours else None
        self._builtin_policy = None
        self.heuristic_note = "goal-directed" if self.ours else "random actions (no VMAS heuristic)"
        obs_list = self._env.get_from_scenario(True, False, False, False)[0]
        self.spec = self._make_spec(name, obs_list, max_steps)
        obs = self.reset(seed)
        if self._builtin_policy is not None:  # some shipped heuristics need extras (e.g. cvxpy)
            try:
                self.heuristic_actions(obs, 0.0, torch.Generator(device=self.device))
            except Exception as err:  # noqa: BLE001 - any failure means: fall back to random
                self._builtin_policy = None
                self.heuristic_note = f"VMAS heuristic unavailable ({type(err).__name__}: {err}); random actions"

    # ---- spec ---------------------------------------------------------------------------
    def _make_spec(self, name: str, obs_list: list, max_steps: int) -> EnvSpec:
        n = len(self._agents)
        if self.ours:
            sc: LandmarkScenario = self.scenario
            do = sc.raw_obs_dim()
            return EnvSpec(
                name=name, n_agents=n, obs_dim=do, state_dim=4 * n + 2 * sc.n_landmarks, local_state_dim=4,
                action_dim=2 if self.continuous else N_DISCRETE, discrete=not self.continuous,
                max_steps=max_steps, obs_dims=(do,) * n, groups=tuple(int(g) for g in sc.types.group),
                action_low=-1.0 if self.continuous else None, action_high=1.0 if self.continuous else None,
            )
        dims = tuple(int(self._flat(o).shape[-1]) for o in obs_list)
        space = self._env.action_space
        if self.continuous:
            lows = [torch.as_tensor(space[k].low) for k in range(n)]
            highs = [torch.as_tensor(space[k].high) for k in range(n)]
            self._adims = [int(lo.numel()) for lo in lows]
            da = max(self._adims)
            pad = lambda v, fill: torch.cat([v, v.new_full((da - v.numel(),), fill)])  # noqa: E731
            self._low = torch.stack([pad(v, 0.0) for v in lows]).float().to(self.device)
            self._high = torch.stack([pad(v, 0.0) for v in highs]).float().to(self.device)
            if hasattr(self._module, "HeuristicPolicy"):
                self._builtin_policy = self._module.HeuristicPolicy(continuous_action=True)
                self.heuristic_note = "VMAS shipped heuristic + Gaussian noise"
        else:
            self._nact = [int(space[k].n) for k in range(n)]
            da = max(self._nact)
        return EnvSpec(
            name=name, n_agents=n, obs_dim=max(dims), state_dim=sum(dims), local_state_dim=4, action_dim=da,
            discrete=not self.continuous, max_steps=max_steps, obs_dims=dims, groups=self._roles(),
            action_low=float(self._low.min()) if self.continuous else None,
            action_high=float(self._high.max()) if self.continuous else None,
        )

    def _roles(self) -> tuple[int, ...] | None:
        """Groups from the agents' role names ("adversary_0", "agent_0", ...) when there are several."""
        roles = [a.name.rstrip("0123456789").rstrip("_") for a in self._agents]
        if len(set(roles)) < 2:
            return None
        order = list(dict.fromkeys(roles))
        return tuple(order.index(r) for r in roles)

    @staticmethod
    def _flat(o) -> Tensor:
        if isinstance(o, dict):
            return torch.cat([v.flatten(1) for v in o.values()], -1)
        return o.flatten(1)

    # ---- observation assembly -----------------------------------------------------------
    def _observe(self, obs_list: list) -> Observation:
        if self.ours:
            sc: LandmarkScenario = self.scenario
            pos, vel, lms = sc.stacked()
            obs = torch.stack(obs_list, 1)
            local = torch.cat([pos, vel], -1)
            state = torch.cat([local.flatten(1), lms.flatten(1)], -1)
            return Observation(obs=obs, state=state, local_state=local, env_state=lms.flatten(1))
        flat = [self._flat(o) for o in obs_list]
        d = self.spec.obs_dim if hasattr(self, "spec") else max(f.shape[-1] for f in flat)
        obs = torch.stack([torch.nn.functional.pad(f, (0, d - f.shape[-1])) for f in flat], 1)
        pos = torch.stack([a.state.pos for a in self._agents], 1)
        vel = torch.stack([a.state.vel for a in self._agents], 1)
        return Observation(obs=obs, state=torch.cat(flat, -1), local_state=torch.cat([pos, vel], -1),
                           avail_actions=self._avail(), env_state=self._builtin_env_state())

    def _builtin_env_state(self) -> Tensor | None:
        """S^E of a VMAS built-in: every landmark's (position, velocity), [E, 4L]; None without landmarks."""
        lms = self.scenario.world.landmarks
        if not lms:
            return None
        return torch.cat([torch.cat([lm.state.pos, lm.state.vel], -1) for lm in lms], -1)

    def _avail(self) -> Tensor | None:
        if self.continuous or len(set(self._nact)) == 1:
            return None
        a = torch.arange(self.spec.action_dim, device=self.device)
        m = a[None, :] < torch.tensor(self._nact, device=self.device)[:, None]
        return m.expand(self.num_envs, -1, -1)

    # ---- protocol -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        if self.ours and seed is not None:
            self.scenario.seed(seed)
        obs_list = self._env.reset(seed=seed)
        self._t.zero_()
        return self._observe(obs_list)

    def _to_vmas(self, actions: Tensor) -> list[Tensor]:
        actions = actions.to(self.device)
        if self.ours:
            return list(actions_to_u(actions, not self.continuous).unbind(1))
        if self.continuous:
            return [actions[:, k, : self._adims[k]].float() for k in range(len(self._agents))]
        return [actions[:, k].long().unsqueeze(-1) for k in range(len(self._agents))]

    def step(self, actions: Tensor) -> StepResult:
        obs_list, rews, dones, _ = self._env.step(self._to_vmas(actions))
        nxt = self._observe(obs_list)
        reward = torch.stack(rews, 1)
        self._t += 1
        terminated = dones.bool().clone()
        truncated = self._t >= self.spec.max_steps
        done = terminated | truncated
        obs = nxt
        if bool(done.any()):
            if bool(done.all()):
                obs_list = self._env.reset()
            else:
                for i in done.nonzero().flatten().tolist():
                    self._env.reset_at(i, return_observations=False)
                obs_list = self._env.get_from_scenario(True, False, False, False)[0]
            self._t[done] = 0
            obs = self._observe(obs_list)
        return StepResult(next=nxt, reward=reward, terminated=terminated, truncated=truncated, obs=obs)

    def render_frame(self, env_index: int = 0):  # noqa: ANN201
        """World ``env_index`` as an RGB array [H, W, 3] (VMAS' renderer; works without a display
        where pyglet can open a headless context), e.g. for ``hetero evaluate --gif``. VMAS zooms
        to fit the agents only; our scenarios' view also spans the landmarks' spawn square (VMAS'
        half-width is max(agents' extent, zoom**2), hence the square root)."""
        if self.ours:
            sc = self.scenario
            half = 1.1 * max(1.0, getattr(sc, "landmark_spawn", 1.0), getattr(sc, "agent_spawn", 1.0))
            self.scenario.viewer_zoom = half ** 0.5
        return self._env.render(mode="rgb_array", env_index=env_index)

    @property
    def model(self) -> LandmarkModel | None:
        """Model access for our scenarios; None for VMAS built-ins (model-free fallback)."""
        return self._model

    @property
    def heuristic_is_random(self) -> bool:
        """True when ``heuristic_actions`` has no scripted policy to run and draws random actions."""
        return not self.ours and self._builtin_policy is None

    def heuristic_actions(self, obs: Observation, noise: float, generator: torch.Generator) -> Tensor:
        """Goal-directed actions toward each agent's own landmark (ours).

        Built-ins: VMAS's shipped ``HeuristicPolicy`` plus Gaussian noise for continuous actions
        where the scenario has one; otherwise uniformly random actions (no heuristic available).
        """
        if self.ours:
            n = self.spec.n_agents
            lms = obs.state[:, 4 * n:].view(obs.state.shape[0], -1, 2)
            goal = lms[:, self.scenario.types.target]
            desired = H.goal_direction(obs.local_state[..., :2], obs.local_state[..., 2:4], goal)
            if self.continuous:
                return H.continuous_toward(desired, noise, generator)
            return H.discrete_toward(desired, noise, generator)
        if self._builtin_policy is not None:
            u = torch.stack([
                self._builtin_policy.compute_action(obs.obs[:, k, : self.spec.obs_dims[k]], float(self._high[k].max()))
                for k in range(self.spec.n_agents)
            ], 1)
            u = torch.nn.functional.pad(u, (0, self.spec.action_dim - u.shape[-1]))
            u = u + noise * torch.randn(u.shape, generator=generator, device=u.device)
            return torch.maximum(torch.minimum(u, self._high), self._low)
        return self.random_actions(obs, generator)

    def random_actions(self, obs: Observation, generator: torch.Generator) -> Tensor:
        """Uniformly random actions (available ones for discrete, within bounds for continuous)."""
        shape = (self.num_envs, self.spec.n_agents)
        if self.continuous:
            if self.ours:
                low = torch.full((self.spec.n_agents, 2), -1.0, device=self.device)
                return H.random_continuous(low, -low, self.num_envs, generator)
            return H.random_continuous(self._low, self._high, self.num_envs, generator)
        return H.random_discrete(shape, obs.avail_actions, self.spec.action_dim, generator, self.device)

    # ---- extras for tests / case studies --------------------------------------------------
    def set_state(self, pos: Tensor, vel: Tensor, landmarks: Tensor) -> Observation:
        """Ours only: overwrite every env's state (pos/vel [E, N, 2], landmarks [E, L, 2])."""
        if not self.ours:
            raise ValueError(f"set_state is only available for our scenarios, not {self.spec.name}")
        self.scenario.set_state(pos.to(self.device), vel.to(self.device), landmarks.to(self.device))
        return self._observe(self._env.get_from_scenario(True, False, False, False)[0])

    def __repr__(self) -> str:
        return f"VmasEnv({self.spec.name!r}, num_envs={self.num_envs}, device={str(self.device)!r})"
