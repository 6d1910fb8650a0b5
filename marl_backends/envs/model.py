"""Model access for our landmark scenarios (model-based quantification, paper Eq. 4, App. F).

``evaluate(kind, pool, rows, ego)`` builds one input x per (row, ego) pair and evaluates every
agent i's function with i placed in the ego slot: the ego slot's position, velocity and action
are x's, its type parameters (target/colour, max speed, force sign, observation permutation)
are i's. The other N-1 slots hold the non-ego agents of the row, in index order, with their own
types. Everything is one batched op over [B, N]; it calls the scenario's own ``observe`` /
``rewards`` and the shared physics, so it reproduces the simulator.

Layouts (Da = 5 one-hot for discrete actions, 2 for continuous; L landmarks):

- obs:       x = [p_e, v_e, (p_k, v_k) for k in others, landmarks]          Dx = 4N + 2L
             y = o_i (permuted for i)                                         Dy = Do
- response / effect / objective:
             x = [p_e, v_e, a_e, (p_k, v_k) for others, a_k for others, landmarks]
                                                                              Dx = 4N + N*Da + 2L
- response:  y = i's next (p, v) from the ego slot                            Dy = 4
- effect:    y = next (p_k, v_k) of the others (same order as in x)           Dy = 4(N-1)
- objective: y = r_i, the scenario reward evaluated at x's state              Dy = 1
  (VMAS computes a reward after the step, so pool.reward[t] = r(s_{t+1}); the reward *function*
  depends on the state only, and the model evaluates it at the state in x.)

``y`` may be a broadcast (expanded, read-only) view where an output does not depend on i's type;
copy it before writing into it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from hetero.samples import SamplePool
from marl_backends.envs.physics import actions_to_u, integrate, pair_forces
from marl_backends.envs.scenario_base import LandmarkScenario, apply_perm, others_index

KINDS = frozenset({"obs", "response", "effect", "objective"})


class LandmarkModel:
    """:class:`hetero.protocols.ModelAccess` for PMS and spread."""

    kinds = KINDS

    def __init__(self, scenario: LandmarkScenario, discrete: bool):
        self.scenario = scenario
        self.discrete = discrete
        self.n = scenario.n_agents
        self.n_landmarks = scenario.n_landmarks
        self.action_dim = 5 if discrete else 2

    def x_dim(self, kind: str) -> int:
        base = 4 * self.n + 2 * self.n_landmarks
        return base if kind == "obs" else base + self.n * self.action_dim

    def y_dim(self, kind: str) -> int:
        return {"obs": self.scenario.raw_obs_dim(), "response": 4, "effect": 4 * (self.n - 1), "objective": 1}[kind]

    # ---- input assembly ---------------------------------------------------------------
    def _inputs(self, pool: SamplePool, rows: Tensor, ego: Tensor) -> dict[str, Tensor]:
        n, nl = self.n, self.n_landmarks
        want = 4 * n + 2 * nl
        if pool.n_agents != n or pool.state.shape[-1] != want:
            raise ValueError(
                f"pool has {pool.n_agents} agents and state dim {pool.state.shape[-1]}; this "
                f"{type(self.scenario).__name__} model expects {n} agents and state dim {want} "
                "(collect the pool from the same env)."
            )
        if pool.action.shape[-1] != self.action_dim:
            raise ValueError(
                f"pool.action has {pool.action.shape[-1]} dims; expected {self.action_dim} "
                f"({'one-hot discrete' if self.discrete else 'continuous'} actions of this env)."
            )
        dev = pool.device
        rows, ego = rows.to(dev).long(), ego.to(dev).long()
        s = pool.state[rows]
        agents = s[:, : 4 * n].view(-1, n, 4)
        lms = s[:, 4 * n:].view(-1, nl, 2)
        act = pool.action[rows]
        oth = others_index(n, dev)[ego]  # [B, N-1]
        ar = torch.arange(rows.numel(), device=dev)
        return {
            "ego": agents[ar, ego], "ego_act": act[ar, ego],
            "oth": agents[ar[:, None], oth], "oth_act": act[ar[:, None], oth],
            "oth_idx": oth, "lms": lms,
        }

    def _x(self, kind: str, z: dict[str, Tensor]) -> Tensor:
        parts = [z["ego"]] if kind == "obs" else [z["ego"], z["ego_act"]]
        parts.append(z["oth"].flatten(1))
        if kind != "obs":
            parts.append(z["oth_act"].flatten(1))
        parts.append(z["lms"].flatten(1))
        return torch.cat(parts, -1)

    # ---- functions ----------------------------------------------------------------------
    def evaluate(self, kind: str, pool: SamplePool, rows: Tensor, ego: Tensor) -> tuple[Tensor, Tensor]:
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not evaluable by this env model; choose one of {sorted(KINDS)}")
        z = self._inputs(pool, rows, ego)
        x = self._x(kind, z)
        y = getattr(self, f"_{kind}")(z)
        return x, y

    def _types(self, device: torch.device):
        return self.scenario.types.to(device)

    def _obs(self, z: dict[str, Tensor]) -> Tensor:
        t = self._types(z["ego"].device)
        ego = z["ego"].unsqueeze(1)  # [B, 1, 4]
        raw = self.scenario.observe(ego[..., :2], ego[..., 2:], z["lms"], z["oth"][..., :2].unsqueeze(1), t.target)
        raw = raw.expand(raw.shape[0], self.n, raw.shape[-1])
        return apply_perm(raw, t.perm)

    def _objective(self, z: dict[str, Tensor]) -> Tensor:
        t = self._types(z["ego"].device)
        ego_pos = z["ego"][:, :2]
        slot_pos = torch.cat([ego_pos.unsqueeze(1), z["oth"][..., :2]], 1)  # [B, N, 2]
        # the ego slot joins every group: group l is then the group of an agent whose target is l
        slot_target = torch.cat([torch.full_like(z["oth_idx"][:, :1], -1), t.target[z["oth_idx"]]], 1)
        member = self.scenario.member_by_target(slot_target)
        member[..., 0] = True
        r = self.scenario.rewards(ego_pos.unsqueeze(1), z["lms"], t.target, slot_pos, member)
        return r.expand(r.shape[0], self.n).unsqueeze(-1)

    def _forces(self, z: dict[str, Tensor]):
        """(u-forces and interaction forces) for the ego slot [B, 2] and the others [B, N-1, 2]."""
        t = self._types(z["ego"].device)
        phys = self.scenario.phys
        f_ego = actions_to_u(z["ego_act"], self.discrete) * phys.u_multiplier
        f_oth = actions_to_u(z["oth_act"], self.discrete) * phys.u_multiplier
        if not t.has_forces:
            return t, f_ego.unsqueeze(1), f_oth.unsqueeze(1), None
        ego_pos, oth_pos = z["ego"][:, None, :2], z["oth"][..., :2]
        oth_sign = t.force_sign[z["oth_idx"]]
        on_ego = pair_forces(oth_pos, oth_sign, ego_pos, phys).sum(-3)  # [B, 1, 2]
        ctx = pair_forces(oth_pos, oth_sign, oth_pos, phys).sum(-3)  # [B, N-1, 2]
        # force of agent i (in the ego slot) on every other: [B, N, N-1, 2]
        from_ego = pair_forces(ego_pos.unsqueeze(1), t.force_sign[:, None], oth_pos.unsqueeze(1), phys)[..., 0, :, :]
        return t, (f_ego.unsqueeze(1) + on_ego), f_oth.unsqueeze(1), ctx.unsqueeze(1) + from_ego

    def _response(self, z: dict[str, Tensor]) -> Tensor:
        t, f_ego, _, _ = self._forces(z)
        ego = z["ego"].unsqueeze(1)
        pos, vel = integrate(ego[..., :2], ego[..., 2:], f_ego, t.max_speed, self.scenario.phys)
        return torch.cat([pos, vel], -1)  # [B, N, 4]

    def _effect(self, z: dict[str, Tensor]) -> Tensor:
        t, _, f_oth, extra = self._forces(z)
        force = f_oth if extra is None else f_oth + extra  # [B, 1|N, N-1, 2]
        oth = z["oth"].unsqueeze(1)
        ms = t.max_speed[z["oth_idx"]].unsqueeze(1)  # [B, 1, N-1]
        pos, vel = integrate(oth[..., :2], oth[..., 2:], force, ms, self.scenario.phys)
        y = torch.cat([pos, vel], -1).flatten(-2)  # [B, 1|N, 4(N-1)]
        return y.expand(y.shape[0], self.n, y.shape[-1])
