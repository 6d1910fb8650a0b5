"""Replay buffer: layout over envs x agents, n-step returns with termination / truncation."""
import torch

from marl_backends.envs.base import Observation, StepResult
from marl_backends.offpolicy import ReplayBuffer


def _obs(e, n, v):
    return Observation(obs=torch.full((e, n, 2), float(v)), state=torch.full((e, 3), float(v)),
                       local_state=torch.full((e, n, 1), float(v)))


def _fill(buf, rewards, terms, truncs, e=2, n=2):
    for t, (r, te, tr) in enumerate(zip(rewards, terms, truncs)):
        res = StepResult(next=_obs(e, n, t + 1), reward=torch.full((e, n), float(r)),
                         terminated=torch.full((e,), te), truncated=torch.full((e,), tr), obs=_obs(e, n, t + 1))
        buf.add(_obs(e, n, t), torch.zeros(e, n, 1), res)


def _row(buf, t):
    """Sample until row t (identified by state value) appears; return its ret, disc, boot_state."""
    b = buf.sample(1, 4096, torch.Generator().manual_seed(0))
    sel = b.state[0, :, 0] == t
    assert sel.any()
    return b.ret[0, sel][0].item(), b.disc[0, sel][0].item(), b.boot_state[0, sel][0, 0].item()


def test_nstep_return_stops_at_termination_and_bootstraps_truncation():
    g = 0.9
    buf = ReplayBuffer(100, num_envs=2, n_agents=2, obs_dim=2, state_dim=3, local_state_dim=1, action_dim=1, gamma=g, n_step=3)
    #          t:    0      1      2      3      4      5      6
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    terms = [False, False, True, False, False, False, False]
    truncs = [False, False, False, False, True, False, False]
    _fill(buf, rewards, terms, truncs)
    ret, disc, boot = _row(buf, 0)  # full 3 steps, ends on a terminal step: no bootstrap
    assert abs(ret - (1 + g * 2 + g * g * 3)) < 1e-5 and disc == 0.0
    ret, disc, boot = _row(buf, 1)  # 2 steps then terminal
    assert abs(ret - (2 + g * 3)) < 1e-5 and disc == 0.0
    ret, disc, boot = _row(buf, 3)  # 2 steps then truncation: bootstrap from next state of t=4
    assert abs(ret - (4 + g * 5)) < 1e-5 and abs(disc - g ** 2) < 1e-6 and boot == 5.0
    ret, disc, boot = _row(buf, 5)  # only 2 newer rows written: stops at the newest
    assert abs(ret - (6 + g * 7)) < 1e-5 and abs(disc - g ** 2) < 1e-6 and boot == 7.0


def test_ring_overwrites_oldest_and_samples_k_independent_minibatches():
    buf = ReplayBuffer(8, num_envs=2, n_agents=2, obs_dim=2, state_dim=3, local_state_dim=1, action_dim=1, gamma=0.9, n_step=1)
    _fill(buf, [0.0] * 10, [False] * 10, [False] * 10)
    assert buf.size == 4 and len(buf) == 8
    b = buf.sample(5, 64, torch.Generator().manual_seed(1))
    assert b.obs.shape == (5, 64, 2, 2) and b.state.shape == (5, 64, 3) and b.ret.shape == (5, 64)
    assert set(b.state[..., 0].unique().tolist()) == {6.0, 7.0, 8.0, 9.0}
    assert not torch.equal(b.state[0], b.state[1])  # different minibatches
