"""The math of OMDPG: OMQ term (Eq. 7/15), PU target (Eqs. 8, 12), OOD joint actions (Eq. 12)."""
import torch
from torch import nn

from marl_backends.offpolicy import omq_actor_loss, omq_joint_actions, ood_joint_actions, pu_target


class HandCritic(nn.Module):
    """C hand-built critics Q_c(s, a) = sum_j w[c, j] a_j^2 + s . a_flat * c + prod-coupling."""

    def __init__(self, c=3, n=3, a=2):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.n_critics = c
        self.w = nn.Parameter(torch.randn(c, n, a, generator=g))
        self.v = nn.Parameter(torch.randn(c, n * a, generator=g))

    def forward(self, state, joint):  # state [C|1, M, Ds], joint [C|1, M, N, A] -> [C, M]
        flat = joint.flatten(-2)
        quad = (self.w[:, None] * joint ** 2).sum((-1, -2))
        lin = (flat * self.v[:, None]).sum(-1) * state.sum(-1)
        coup = flat[..., 0] * flat[..., -1]
        return quad + lin + coup


def _loop_phi(q, s, buf, live, greedy, order):
    """The per-agent reference: Q(s, a_{1:i-1}, a_i, a^g) - Q(s, a_{1:i-1}, 0, a^g), one agent at a time."""
    qw, qo = _loop_q(q, s, buf, live, greedy, order)
    return qw - qo


def _loop_q(q, s, buf, live, greedy, order):
    """(Q_c(s, a_{1:i-1}, a_i, a^g), Q_c(s, a_{1:i-1}, 0, a^g)), each [C, B, N], one agent at a time."""
    b, n, _ = buf.shape
    out, base = torch.zeros(q.n_critics, b, n), torch.zeros(q.n_critics, b, n)
    for pos, i in enumerate(order):
        joint = greedy.clone()
        for j in order[:pos]:
            joint[:, j] = buf[:, j]
        with_i, without_i = joint.clone(), joint.clone()
        with_i[:, i] = live[:, i]
        without_i[:, i] = 0.0
        out[:, :, i] = q(s[None], with_i[None])
        base[:, :, i] = q(s[None], without_i[None])
    return out, base


def test_omq_term_equals_marginal_q_difference_for_every_agent_and_order():
    torch.manual_seed(0)
    b, n, a = 5, 3, 2
    q = HandCritic(3, n, a)
    s = torch.randn(b, 4)
    buf, live, greedy = torch.randn(b, n, a), torch.randn(b, n, a), torch.randn(b, n, a)
    for order in ([0, 1, 2], [2, 0, 1]):
        rank = torch.empty(n, dtype=torch.long)
        rank[torch.tensor(order)] = torch.arange(n)
        with_i, without_i = omq_joint_actions(buf, live, greedy, rank)
        m = b * n
        st = s[:, None].expand(b, n, 4).reshape(1, m, 4)
        phi = q(st, with_i.reshape(1, m, n, a)).view(-1, b, n) - q(st, without_i.reshape(1, m, n, a)).view(-1, b, n)
        ref = _loop_phi(q, s, buf, live, greedy, order)
        torch.testing.assert_close(phi, ref)
        qw, qo = q(st, with_i.reshape(1, m, n, a)).view(-1, b, n), q(st, without_i.reshape(1, m, n, a)).view(-1, b, n)
        rw, ro = _loop_q(q, s, buf, live, greedy, order)
        torch.testing.assert_close(omq_actor_loss(qw, qo, "difference"), -ref.min(0).values.mean())
        torch.testing.assert_close(omq_actor_loss(qw, qo, "terms"), -(rw.min(0).values - ro.min(0).values).mean())


def test_omq_gradient_flows_only_through_agent_i():
    b, n, a = 4, 3, 1
    live = torch.randn(b, n, a, requires_grad=True)
    with_i, without_i = omq_joint_actions(torch.randn(b, n, a), live, live.detach(), torch.arange(n))
    (with_i.sum() + without_i.sum()).backward()
    # each agent's live action appears exactly once (in its own row), never in the zero baseline
    torch.testing.assert_close(live.grad, torch.ones(b, n, a))


def test_pu_target_subtracts_beta_times_ensemble_std():
    q_tgt = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    q_ens = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # std over critics: sqrt(8/3), 0
    y = pu_target(q_tgt, q_ens, beta=0.5)
    std = torch.tensor([(8.0 / 3.0) ** 0.5, 0.0])  # population std, 1/C_k as in Eq. 8
    torch.testing.assert_close(y, q_tgt - 0.5 * std)
    assert not y.requires_grad


def test_pu_loss_anchored_to_the_detached_online_critic_only_pushes_down_by_beta_u():
    """pu_anchor='online': y = stopgrad(Q_c) - beta U, so d/dQ (Q - y)^2 = 2 beta U for every
    critic and sample, whatever Q's level; the printed Eq. 12 (anchor Q^tgt) also pulls Q to Q^tgt."""
    q = torch.tensor([[1.0, -3.0], [2.0, 5.0], [0.5, 1.0]], requires_grad=True)
    u = q.detach().std(0, unbiased=False)
    ((q - pu_target(q, q, beta=0.3)) ** 2).sum().backward()
    torch.testing.assert_close(q.grad, 2 * 0.3 * u.expand_as(q))
    q_tgt = torch.zeros(3, 2)
    q.grad = None
    ((q - pu_target(q_tgt, q, beta=0.3)) ** 2).sum().backward()
    torch.testing.assert_close(q.grad, 2 * (q.detach() - q_tgt + 0.3 * u))


def test_ood_joint_actions_keep_a_prefix_in_order():
    buf, greedy = torch.ones(3, 4, 1), -torch.ones(3, 4, 1)
    rank = torch.tensor([2, 0, 3, 1])  # order: agent 1, 3, 0, 2
    out = ood_joint_actions(buf, greedy, rank, torch.tensor([0, 2, 4]))
    assert out[0, :, 0].tolist() == [-1, -1, -1, -1]
    assert out[1, :, 0].tolist() == [-1, 1, -1, 1]  # agents 1 and 3 keep sampled actions
    assert out[2, :, 0].tolist() == [1, 1, 1, 1]
