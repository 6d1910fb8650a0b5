"""collect_pool and the behaviour policies."""
import pytest
import torch

from marl_backends.envs import collect_pool, make_env


@pytest.mark.parametrize("continuous", [False, True])
def test_collect_pool_shapes(continuous):
    env = make_env("pms_15a_3c", num_envs=4, continuous=continuous)
    pool = collect_pool(env, 12, seed=1, progress=False).validate()
    da = 2 if continuous else 5
    assert pool.rows == 48 and pool.n_agents == 15
    assert pool.obs.shape == pool.next_obs.shape == (48, 15, 11)
    assert pool.state.shape == pool.next_state.shape == (48, 66)
    assert pool.local_state.shape == pool.next_local_state.shape == (48, 15, 4)
    assert pool.action.shape == (48, 15, da) and pool.reward.shape == (48, 15)
    if not continuous:
        assert torch.equal(pool.action.sum(-1), torch.ones(48, 15))
    # time-major rows: row t*E + e continues row (t-1)*E + e
    assert torch.equal(pool.state[4:8], pool.next_state[0:4])


def test_collect_pool_reproducible_and_behaviours():
    env = make_env("spread_v2", num_envs=4)
    a = collect_pool(env, 10, seed=2, progress=False)
    b = collect_pool(env, 10, seed=2, progress=False)
    c = collect_pool(env, 10, seed=3, progress=False)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.action, b.action) and torch.equal(a.reward, b.reward)
    assert not torch.equal(a.obs, c.obs)
    r = collect_pool(env, 10, behaviour="random", seed=2, progress=False)
    assert torch.isfinite(r.reward).all()
    fixed = collect_pool(env, 3, behaviour=lambda o: torch.zeros(4, 4, dtype=torch.long), progress=False)
    assert (fixed.action[..., 0] == 1).all()
    with pytest.raises(ValueError, match="behaviour"):
        collect_pool(env, 3, behaviour="greedy", progress=False)


@pytest.mark.parametrize("name", ["pms_30a_5c", "spread_v6"])
@pytest.mark.parametrize("continuous", [False, True])
def test_heuristic_moves_agents_to_their_landmarks(name, continuous):
    env = make_env(name, num_envs=8, continuous=continuous)
    pool = collect_pool(env, 50, noise=0.3, seed=0, progress=False)
    n = env.spec.n_agents
    lms = pool.state[:, 4 * n:].view(pool.rows, -1, 2)[:, env.scenario.types.target]
    dist = (pool.local_state[..., :2] - lms).norm(dim=-1).view(50, 8, n).mean((1, 2))
    assert dist[-1] < 0.5 * dist[0] and dist[25] < dist[0]


def test_random_is_not_goal_directed():
    env = make_env("pms_15a_3c", num_envs=8)
    pool = collect_pool(env, 50, behaviour="random", seed=0, progress=False)
    lms = pool.state[:, 60:].view(pool.rows, -1, 2)[:, env.scenario.types.target]
    dist = (pool.local_state[..., :2] - lms).norm(dim=-1).view(50, -1).mean(1)
    assert dist[-1] > 0.7 * dist[0]


def test_pool_carries_the_env_part_and_model_free_x_matches_the_model_layout(pools):
    """PMS pools hold S^E (the landmarks); a model-free condition x of agent i at row t is the
    model's ego-centric x with i in the ego slot (marl_backends/envs/model.py), for every kind."""
    from hetero.kinds import model_free_xy

    env, pool = pools("pms_15a_3c")
    n = env.spec.n_agents
    assert torch.equal(pool.env_state, pool.state[:, 4 * n:]) and torch.equal(pool.next_env_state, pool.next_state[:, 4 * n:])
    rows, ego = torch.arange(0, pool.rows, 7), torch.arange(0, pool.rows, 7) % n
    for kind in ("obs", "response", "effect", "objective"):
        x_model, _ = env.model.evaluate(kind, pool, rows, ego)
        assert torch.equal(model_free_xy(kind, pool)[0][rows, ego], x_model), kind


def test_builtin_vmas_pool_carries_landmarks():
    env = make_env("vmas_navigation", num_envs=2)
    pool = collect_pool(env, 3, seed=0, progress=False).validate()
    lms = env.scenario.world.landmarks
    assert pool.env_state.shape == (6, 4 * len(lms)) and pool.next_env_state.shape == (6, 4 * len(lms))
