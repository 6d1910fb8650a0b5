"""SamplePool.from_transitions: a pool from obs, action, reward, next_obs with documented defaults."""
from __future__ import annotations

import pytest
import torch

from hetero import SamplePool

T, E, N, D, A = 6, 2, 3, 4, 5


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, E, N, D, generator=g), torch.randint(0, A, (T, E, N), generator=g),
            torch.randn(T, E, N, 1, generator=g), torch.randn(T, E, N, D, generator=g))


def test_defaults_flatten_batch_dims_and_fill_missing_fields():
    obs, act, rew, nobs = _data()
    done = torch.zeros(T, E, dtype=torch.bool)
    done[2, 0] = done[4, 1] = True
    p = SamplePool.from_transitions(obs, act, rew, nobs, done=done, n_actions=A)
    assert p.rows == T * E and p.n_agents == N
    assert torch.equal(p.local_state, p.obs) and torch.equal(p.next_local_state, p.next_obs)
    assert torch.equal(p.state, obs.reshape(T * E, N * D)) and torch.equal(p.next_state, nobs.reshape(T * E, N * D))
    assert torch.equal(p.reward, rew.reshape(T * E, N)) and torch.equal(p.action.argmax(-1), act.reshape(T * E, N))
    # env 0 ends an episode at t=2, env 1 at t=4: rows after a done start a new id, per stream
    ep = p.episode.view(T, E).T
    assert ep[0].tolist() == [0, 0, 0, 2, 2, 2] and ep[1].tolist() == [1, 1, 1, 1, 1, 3]


def test_team_reward_and_given_fields():
    obs, act, _, nobs = _data()
    team = torch.arange(T * E, dtype=torch.float32).view(T, E)
    state = torch.randn(T, E, 7)
    p = SamplePool.from_transitions(obs, torch.nn.functional.one_hot(act, A).float(), team, nobs, state=state,
                                    next_state=state, local_state=obs[..., :2], next_local_state=nobs[..., :2])
    assert p.reward.shape == (T * E, N) and torch.equal(p.reward[:, 1], team.reshape(-1))
    assert p.state.shape == (T * E, 7) and p.local_state.shape == (T * E, N, 2) and p.episode is None


@pytest.mark.parametrize("field, bad, msg", [
    ("reward", lambda r: r.expand(T, E, N, 2), r"SamplePool.reward has shape \(12, 3, 2\), expected \(12, 3\)"),
    ("reward", lambda r: r[:, 0], r"reward has shape \(6, 3, 1\), expected leading dims \(6, 2\)"),
    ("next_obs", lambda o: o[:-1], r"next_obs has shape \(5, 2, 3, 4\), expected leading dims \(6, 2\)"),
])
def test_wrong_shapes_name_the_tensor(field, bad, msg):
    obs, act, rew, nobs = _data()
    kw = dict(obs=obs, action=act, reward=rew, next_obs=nobs, n_actions=A)
    kw[field] = bad(kw[field])
    with pytest.raises(ValueError, match=msg):
        SamplePool.from_transitions(**kw)


def test_integer_actions_need_n_actions():
    obs, act, rew, nobs = _data()
    with pytest.raises(ValueError, match="n_actions"):
        SamplePool.from_transitions(obs, act, rew, nobs)


def test_validate_rejects_reward_with_trailing_unit_dim():
    obs, act, rew, nobs = _data()
    p = SamplePool.from_transitions(obs, act, rew, nobs, n_actions=A)
    p.reward = p.reward.unsqueeze(-1)
    with pytest.raises(ValueError, match=r"SamplePool.reward has shape \(12, 3, 1\), expected \(12, 3\)"):
        p.validate()
    p.reward = p.reward[..., 0]
    p.obs = p.obs[..., 0]
    with pytest.raises(ValueError, match=r"SamplePool.obs has shape \(12, 3\)"):
        p.validate()


@pytest.mark.parametrize("bad, value", [(A, 5), (-1, -1)])
def test_integer_actions_out_of_range_name_the_tensor_value_and_n_actions(bad, value):
    obs, act, rew, nobs = _data()
    act[3, 1, 2] = bad
    with pytest.raises(ValueError, match=rf"action holds {value} at action\[3, 1, 2\] \(time 3, agent 2\), outside "
                                         rf"0\.\.4 \(n_actions=5\)"):
        SamplePool.from_transitions(obs, act, rew, nobs, n_actions=A)


@pytest.mark.parametrize("field, index, where", [
    ("obs", (4, 0, 1, 2), r"obs holds nan at obs\[4, 0, 1, 2\] \(time 4, agent 1\)"),
    ("reward", (2, 1, 0, 0), r"reward holds nan at reward\[2, 1, 0, 0\] \(time 2, agent 0\)"),
    ("next_obs", (5, 1, 2, 3), r"next_obs holds nan at next_obs\[5, 1, 2, 3\] \(time 5, agent 2\)"),
])
def test_nan_is_reported_at_time_and_agent_of_the_given_tensor(field, index, where):
    obs, act, rew, nobs = _data()
    kw = dict(obs=obs, action=act, reward=rew, next_obs=nobs, n_actions=A)
    kw[field][index] = float("nan")
    with pytest.raises(ValueError, match=r"SamplePool.from_transitions: " + where):
        SamplePool.from_transitions(**kw)
