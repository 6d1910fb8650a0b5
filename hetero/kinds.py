"""The six kinds of heterogeneity (paper Table 1, App. F Eqs. 12-16, App. G).

Each kind is a core function y ~ F_i(.|x). This module says, for every kind, which pool fields
form the condition x and the target y when the function has to be learned model-free (Eq. 5);
model-based inputs come from the env's :class:`~hetero.protocols.ModelAccess` instead.

| kind      | condition x                                  | target y                          |
|-----------|----------------------------------------------|-----------------------------------|
| obs       | global state s                               | o_i (Eq. 12)                      |
| response  | own s_i, own a_i, global state s             | s_i' (Eq. 13)                     |
| effect    | own (s_i, a_i), others' (s_-i, a_-i)         | others' s_-i' (Eq. 14)            |
| objective | global state s, joint action a               | r_i (Eq. 15)                      |
| policy    | observation o                                | pi_i(.|o) (Eq. 16), model-based   |
| meta      | own (s_i, a_i)                               | (s_i', o_i', r_i replicated), App. G |
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hetero.samples import SamplePool


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    condition: str
    target: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("obs", "Obs-Het", "global state s", "observation o_i"),
        Kind("response", "Response-Het", "own s_i, a_i and global state s", "next own local state s_i'"),
        Kind("effect", "Effect-Het", "own (s_i, a_i) and others' (s_-i, a_-i)", "others' next states s_-i'"),
        Kind("objective", "Objective-Het", "global state s and joint action a", "reward r_i"),
        Kind("policy", "Policy-Het", "observation o", "action distribution pi_i(.|o)"),
        Kind("meta", "Meta-Het", "own (s_i, a_i)", "(s_i', o_i', r_i x R)"),
    )
}
ENV_KINDS = ("obs", "response", "effect", "objective")


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)} (or 'all' on the CLI).")
    return KINDS[kind]


def _others(n: int, device: torch.device) -> Tensor:
    """[N, N-1] indices of every agent's others, in index order."""
    idx = torch.arange(n, device=device).expand(n, n)
    return idx[~torch.eye(n, dtype=torch.bool, device=device)].view(n, n - 1)


def model_free_xy(kind: str, pool: SamplePool, reward_repeat: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    """Per-agent (x, y) for the model-free CVAE (Eq. 5).

    Returns x [T, N, Dx], y [T, N, Dy] and y_mask [N, Dy] (True where agent i's y dim is real).
    ``reward_repeat`` is the dimension replication trick of App. G: the scalar reward is copied R
    times so that a reconstruction loss over a high-dimensional y does not ignore it.
    """
    check_kind(kind)
    t, n = pool.rows, pool.n_agents
    ones = lambda d: torch.ones(n, d, dtype=torch.bool, device=pool.device)  # noqa: E731
    r = pool.reward.unsqueeze(-1)
    if kind == "obs":
        x = pool.state.unsqueeze(1).expand(t, n, -1)
        return x, pool.obs, pool.obs_mask
    if kind == "response":
        x = torch.cat([pool.local_state, pool.action, pool.state.unsqueeze(1).expand(t, n, -1)], -1)
        return x, pool.next_local_state, pool.local_state_mask
    if kind == "effect":
        o = _others(n, pool.device)
        own = torch.cat([pool.local_state, pool.action], -1)
        others = own[:, o].flatten(2)  # [T, N, (N-1)*(Dl+Da)]
        y = pool.next_local_state[:, o].flatten(2)
        y_mask = pool.local_state_mask[o].flatten(1)
        return torch.cat([own, others], -1), y, y_mask
    if kind == "objective":
        x = torch.cat([pool.state, pool.action.flatten(1)], -1).unsqueeze(1).expand(t, n, -1)
        return x, r.expand(t, n, reward_repeat), ones(reward_repeat)
    if kind == "meta":
        x = torch.cat([pool.local_state, pool.action], -1)
        y = torch.cat([pool.next_local_state, pool.next_obs, r.expand(t, n, reward_repeat)], -1)
        y_mask = torch.cat([pool.local_state_mask, pool.obs_mask, ones(reward_repeat)], -1)
        return x, y, y_mask
    raise ValueError(
        "the policy kind is model-based: pass the trainer's policy (policy_fn / --checkpoint) "
        "so every agent's pi_i(.|o) can be evaluated on the same observations."
    )
