"""The math of OMDPG (Yu et al.): OMQ joint actions, the PU target, the OMQ actor loss.

Agent order: ``rank[j]`` is agent j's position in the sequential order of this update (a random
permutation per update, as in HARL's sequential scheme; identity = the paper's 1..n).
"Agents before i" are those with rank < rank[i].

All functions are batched over agents: the N "agent i" joint actions are built as one tensor,
never in a Python loop over agents.
"""
from __future__ import annotations

import torch
from torch import Tensor


def omq_joint_actions(buffer_a: Tensor, live_a: Tensor, greedy_a: Tensor, rank: Tensor) -> tuple[Tensor, Tensor]:
    """The two joint actions of Eq. 7 / Eq. 15 for every agent i, as one batch.

    Args:
        buffer_a: [B, N, A] the sampled actions a_{1:i-1} of the agents before i.
        live_a: [B, N, A] a_i = mu_i(o_i) (carries the actor's gradient).
        greedy_a: [B, N, A] policy-greedy actions a^g (Eq. 11) for the agents after i.
        rank: [N] long, agent j's position in the order.

    Returns:
        (with_i, without_i), each [B, N(i), N(j), A]: row i is (a_{1:i-1}, a_i, a^g_{i+1:n}) and
        (a_{1:i-1}, 0, a^g_{i+1:n}) -- agent i replaced by the zero action.
    """
    n = rank.shape[0]
    before = (rank[None, :] < rank[:, None])[None, :, :, None]  # [1, i, j, 1]: j before i
    me = torch.eye(n, dtype=torch.bool, device=rank.device)[None, :, :, None]
    others = torch.where(before, buffer_a[:, None], greedy_a[:, None])  # [B, i, j, A]
    with_i = torch.where(me, live_a[:, None], others)
    without_i = torch.where(me, torch.zeros_like(others), others)
    return with_i, without_i


def ood_joint_actions(buffer_a: Tensor, greedy_a: Tensor, rank: Tensor, prefix: Tensor) -> Tensor:
    """Out-of-distribution joint actions (a_{1:k}, a^g_{k+1:n}) of Eqs. 12-13.

    buffer_a, greedy_a: [..., N, A]; prefix: [...] long, k = how many agents (in ``rank`` order)
    keep their sampled action; the rest take the policy-greedy action.
    """
    keep = rank < prefix[..., None]  # [..., N]
    return torch.where(keep[..., None], buffer_a, greedy_a)


def pu_target(q_anchor: Tensor, q_ensemble: Tensor, beta: float) -> Tensor:
    """Pessimistic-uncertainty target y_c = Q_anchor_c - beta * U, U = Std_c(Q^c) (Eqs. 8, 12).

    q_anchor: [C, ...] critic c's anchor value at the OOD joint action: the target critic
    Q^tgt_c (Eq. 12 as printed, ``pu_anchor="target"``) or the online critic Q_c itself
    (``pu_anchor="online"``, PBRL's OOD target: detached here, so the PU loss's gradient is
    2 * beta * U * dQ_c, a pure push down by the uncertainty); q_ensemble: [C, ...] the online
    ensemble there (the population std over critics, 1/C_k as in Eq. 8). Returns [C, ...], no grad.
    """
    u = q_ensemble.detach().std(0, unbiased=False)
    return (q_anchor - beta * u).detach()


def omq_actor_loss(q_with: Tensor, q_without: Tensor, reduce: str = "terms") -> Tensor:
    """OMQ actor loss, Eq. 15, with the min over the C_k critics.

    q_with, q_without: [C, B, N] critic c's value with agent i acting / replaced by zero.
    The mean runs over samples and agents (every agent's marginal contribution, Eq. 7).

    reduce:
        "difference": -E[min_c (Q_c(.., a_i, ..) - Q_c(.., 0, ..))], Eq. 15 as typeset. At a_i = 0
            every critic's difference is exactly 0, elsewhere the min picks the critic least
            favourable to a_i, so whenever the critics' gradients at 0 disagree in direction the
            zero action is a maximiser: on MaMuJoCo HalfCheetah the actors collapsed to a ~= 0.
        "terms": -E[min_c Q_c(.., a_i, ..) - min_c Q_c(.., 0, ..)], "the minimum Q-value among
            all C_k critics" (text after Eq. 15) applied to each Q term: the baseline carries no
            actor gradient, so the update is the pessimistic (min-critic) deterministic policy
            gradient at the OMQ joint action (a_{1:i-1}, a_i, a^g_{i+1:n}).
    """
    if reduce == "difference":
        return -(q_with - q_without).min(0).values.mean()
    if reduce == "terms":
        return -(q_with.min(0).values - q_without.min(0).values).mean()
    raise ValueError(f"omq_actor_loss: reduce={reduce!r}; choose 'terms' or 'difference'.")
