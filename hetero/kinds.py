"""The six kinds of heterogeneity (paper Table 1, App. F Eqs. 12-16, App. G).

Each kind is a core function y ~ F_i(.|x). This module says, for every kind, which pool fields
form the condition x and the target y when the function has to be learned model-free (Eq. 5);
model-based inputs come from the env's :class:`~hetero.protocols.ModelAccess` instead.

Every condition is **ego-centric**, laid out as the model-based path builds it
(marl_backends/envs/model.py): agent i's own slot first, then the other agents in index order
(i left out), then the environment part S^E of the global state s = (s_1..s_N, S^E) where the
pool carries it (``SamplePool.env_state``). In agent-index order two agents of one type would sit
in different slots of x and be different functions of x, so a model-free CVAE that fits well
would push them apart (issue 10: Obs-Het within/between 0.23/3.47 after 6 epochs, 1.29/2.75
after 150). Symbols: s_i own local state, a_i own action, s_-i / a_-i the others' in index order.

| kind      | condition x                                  | target y                          |
|-----------|----------------------------------------------|-----------------------------------|
| obs       | s_i, s_-i, S^E                               | o_i (Eq. 12)                      |
| response  | s_i, a_i, s_-i, a_-i, S^E                    | s_i' (Eq. 13)                     |
| effect    | s_i, a_i, s_-i, a_-i, S^E                    | s_-i', S^E' (Eq. 14)              |
| objective | s_i, a_i, s_-i, a_-i, S^E                    | r_i (Eq. 15)                      |
| policy    | observation o                                | pi_i(.|o) (Eq. 16), model-based   |
| meta      | own (s_i, a_i), S^E                          | (s_i', o_i', r_i replicated), App. G |

Padding: entries that are padding (``*_mask`` False) are set to 0 in x whatever the pool holds
there, and y_mask leaves them out of the loss, so the padding pattern of x depends only on which
agents fill the slots. Agents of one type see the same layout of the others exactly when the
types are contiguous in index order (removing any member of a run leaves the same sequence);
functions that ignore the others' identities (e.g. PMS observations) are one function of x for
every order.

Meta-Het's condition. App. G prints the meta-transition as a function of the agent's own
(s_i, a_i) and lets each setting choose the inputs. Where the env's own part S^E of the state
(e.g. PMS landmarks, redrawn every episode) decides an agent's next state or reward, E[y | s_i, a_i]
averages over S^E under the pool's behaviour, so two agents differ in it only through how they
act. ``meta_condition="env"`` (default) conditions on (s_i, a_i, S^E): what differs between the
agents' functions is then visible under any behaviour. ``"own"`` is the condition as printed. A
pool without S^E gives the same x under both.

Model-based Meta-Het (:data:`META_PARTS`): where the env evaluates Response-, Obs- and
Objective-Het at one input, y_i(x) = (s_i'(x), o_i(x), r_i(x) x R) is the meta-transition of
agent i evaluated at the same x for every agent (Eq. 4), so identical agents give identical y.
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
        Kind("obs", "Obs-Het", "global state, ego-centric: s_i, s_-i, S^E", "observation o_i"),
        Kind("response", "Response-Het", "state and joint action, ego-centric: s_i, a_i, s_-i, a_-i, S^E",
             "next own local state s_i'"),
        Kind("effect", "Effect-Het", "own (s_i, a_i), others' (s_-i, a_-i), S^E",
             "others' next states s_-i' and S^E'"),
        Kind("objective", "Objective-Het", "state and joint action, ego-centric: s_i, a_i, s_-i, a_-i, S^E",
             "reward r_i"),
        Kind("policy", "Policy-Het", "observation o", "action distribution pi_i(.|o)"),
        Kind("meta", "Meta-Het", "own (s_i, a_i) and S^E", "(s_i', o_i', r_i x R)"),
    )
}
ENV_KINDS = ("obs", "response", "effect", "objective")
META_PARTS = ("response", "obs", "objective")  # model-based Meta-Het: (s_i', o_i, r_i) at one x
META_CONDITIONS = ("env", "own")  # Meta-Het's condition: (s_i, a_i, S^E) | (s_i, a_i) as printed


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)} (or 'all' on the CLI).")
    return KINDS[kind]


def _others(n: int, device: torch.device) -> Tensor:
    """[N, N-1] indices of every agent's others, in index order."""
    idx = torch.arange(n, device=device).expand(n, n)
    return idx[~torch.eye(n, dtype=torch.bool, device=device)].view(n, n - 1)


def _ego(v: Tensor, o: Tensor) -> tuple[Tensor, Tensor]:
    """Per-agent field v [T, N, D] -> (own [T, N, D], others [T, N, (N-1)*D]) by the index o [N, N-1]."""
    return v, v[:, o].flatten(2)


def _env_part(pool: SamplePool, nxt: bool = False) -> Tensor:
    """S^E (or S^E') broadcast to every agent, [T, N, De]; De = 0 when the pool has none."""
    e = pool.next_env_state if nxt else pool.env_state
    if e is None:
        e = pool.obs.new_zeros(pool.rows, 0)
    return e.unsqueeze(1).expand(pool.rows, pool.n_agents, e.shape[-1])


def obs_het_undefined(pool: SamplePool) -> str | None:
    """Why model-free Obs-Het means nothing on ``pool``, or None: when every agent's local state s_i
    *is* its observation o_i (adapters with nothing finer, e.g. PettingZoo), Obs-Het's target o_i is
    part of its condition, so every agent is the identity function of x and the matrix measures
    only how the CVAE copies its input."""
    s, o = pool.local_state, pool.obs
    if s.shape != o.shape or not torch.equal(s.masked_fill(~pool.local_state_mask, 0.0),
                                             o.masked_fill(~pool.obs_mask, 0.0)):
        return None
    return ("Obs-Het is undefined here: each agent's local state s_i is its observation o_i (the env exposes "
            "nothing finer), so the target o_i is part of the condition and every agent is the same identity "
            "function of it")


def model_free_xy(kind: str, pool: SamplePool, reward_repeat: int = 8,
                  meta_condition: str = "env") -> tuple[Tensor, Tensor, Tensor]:
    """Per-agent ego-centric (x, y) for the model-free CVAE (Eq. 5; layouts in the module docstring).

    Returns x [T, N, Dx], y [T, N, Dy] and y_mask [N, Dy] (True where agent i's y dim is real).
    x of agent i at row t holds i's data in the own slot only, so agents that are the same
    function give the same (x, y) pairs. Padded entries of x are 0 (``*_mask``).
    ``reward_repeat`` is the dimension replication trick of App. G: the scalar reward is copied R
    times so that a reconstruction loss over a high-dimensional y does not ignore it.
    ``meta_condition`` picks Meta-Het's x: "env" = (s_i, a_i, S^E), "own" = (s_i, a_i) (App. G as printed).
    """
    check_kind(kind)
    if meta_condition not in META_CONDITIONS:
        raise ValueError(f"meta_condition={meta_condition!r}; choose env (s_i, a_i, S^E) or own (s_i, a_i).")
    t, n = pool.rows, pool.n_agents
    ones = lambda d: torch.ones(n, d, dtype=torch.bool, device=pool.device)  # noqa: E731
    r = pool.reward.unsqueeze(-1)
    o = _others(n, pool.device)
    s = pool.local_state.masked_fill(~pool.local_state_mask, 0.0)
    a = pool.action.masked_fill(~pool.action_mask, 0.0)
    (s_i, s_oth), (a_i, a_oth) = _ego(s, o), _ego(a, o)
    env = _env_part(pool)
    if kind == "obs":
        return torch.cat([s_i, s_oth, env], -1), pool.obs, pool.obs_mask
    if kind in ("response", "effect", "objective"):
        x = torch.cat([s_i, a_i, s_oth, a_oth, env], -1)
        if kind == "response":
            return x, pool.next_local_state, pool.local_state_mask
        if kind == "objective":
            return x, r.expand(t, n, reward_repeat), ones(reward_repeat)
        nxt = _env_part(pool, nxt=True)
        y = torch.cat([pool.next_local_state[:, o].flatten(2), nxt], -1)
        y_mask = torch.cat([pool.local_state_mask[o].flatten(1), ones(nxt.shape[-1])], -1)
        return x, y, y_mask
    if kind == "meta":
        x = torch.cat([s, a, env] if meta_condition == "env" else [s, a], -1)
        y = torch.cat([pool.next_local_state, pool.next_obs, r.expand(t, n, reward_repeat)], -1)
        y_mask = torch.cat([pool.local_state_mask, pool.obs_mask, ones(reward_repeat)], -1)
        return x, y, y_mask
    raise ValueError(
        "the policy kind is model-based: pass the trainer's policy (policy_fn / --checkpoint) "
        "so every agent's pi_i(.|o) can be evaluated on the same observations."
    )
