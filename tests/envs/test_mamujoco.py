"""MaMuJoCo adapter: the env protocol, the Het gear changes, the paper's grouping."""
import pytest
import torch

from marl_backends.envs import list_envs, make_env
from marl_backends.envs.base import VecMultiAgentEnv
from marl_backends.envs.mamujoco import TASKS, mamujoco_available, static_layout

needs_extra = pytest.mark.skipif(not mamujoco_available(),
                                 reason="MaMuJoCo extra not installed: pip install gymnasium-robotics mujoco")


def test_tasks_are_registered_with_the_paper_grouping():
    names = set(list_envs())
    assert set(TASKS) <= names
    assert static_layout("mamujoco_halfcheetah_6x1_het") == (0, 0, 0, 1, 1, 1)
    assert static_layout("mamujoco_walker_2x3") == (0, 1)
    with pytest.raises(ValueError, match="unknown MaMuJoCo task"):
        static_layout("mamujoco_ant")


@needs_extra
def test_protocol_shapes_auto_reset_and_truncation():
    env = make_env("mamujoco_halfcheetah_6x1", num_envs=2, seed=0, max_steps=5)
    assert isinstance(env, VecMultiAgentEnv) and env.model is None
    s = env.spec
    assert (s.n_agents, s.action_dim, s.state_dim, s.discrete) == (6, 1, 17, False)
    assert s.obs_dims == (9, 9, 8, 9, 9, 8) and bool(s.obs_mask[2, 8]) is False
    obs = env.reset(seed=0)
    assert obs.obs.shape == (2, 6, 9) and obs.state.shape == (2, 17) and obs.local_state.shape == (2, 6, 2)
    # S^E = the torso: root z, root angle (state[:2]) and the 3 root velocities (state[8:11])
    assert torch.equal(obs.env_state, torch.cat([obs.state[:, :2], obs.state[:, 8:11]], -1))
    g = torch.Generator().manual_seed(0)
    for t in range(5):
        res = env.step(env.heuristic_actions(obs, 1.0, g))
        obs = res.obs
    assert res.truncated.all() and not res.terminated.any()
    assert not torch.equal(res.next.state, res.obs.state)  # auto-reset after the episode end
    assert torch.equal(res.reward[:, 0], res.reward[:, 5])  # team reward
    with pytest.raises(ValueError, match="expected"):
        env.step(torch.zeros(2, 6, 3))


@needs_extra
def test_het_variants_change_exactly_the_documented_gears():
    plain = make_env("mamujoco_halfcheetah_2x3", num_envs=1)._envs[0].single_agent_env.unwrapped.model
    het = make_env("mamujoco_halfcheetah_2x3_het", num_envs=1)._envs[0].single_agent_env.unwrapped.model
    assert plain.actuator_gear[:, 0].tolist() == [120, 90, 60, 120, 60, 30]
    assert het.actuator_gear[:, 0].tolist() == [120, 90, 60, 60, 30, 15]  # fore leg halved
    w = make_env("mamujoco_walker_2x3_het", num_envs=1)._envs[0].single_agent_env.unwrapped.model
    assert w.actuator_gear[:, 0].tolist() == [100, 100, 100, 50, 50, 50]  # left leg halved


@needs_extra
def test_same_seed_same_trajectory():
    a, b = (make_env("mamujoco_walker_2x3_het", num_envs=2, seed=3) for _ in range(2))
    oa, ob = a.reset(seed=3), b.reset(seed=3)
    torch.testing.assert_close(oa.obs, ob.obs)
    act = torch.full((2, 2, 3), 0.3)
    torch.testing.assert_close(a.step(act).next.state, b.step(act).next.state)


@needs_extra
def test_snapshot_restore_continues_exactly_across_auto_resets():
    """Exact off-policy resume: a fresh env restored from a mid-episode snapshot continues bit-identically."""
    from marl_backends.envs.state import env_state, load_env_state

    def mk():
        return make_env("mamujoco_halfcheetah_2x3_het", num_envs=2, seed=0, max_steps=20)

    env, g = mk(), torch.Generator().manual_seed(0)
    obs = env.reset(seed=0)
    for _ in range(13):
        env.step(env.heuristic_actions(obs, 1.0, g))
    st = env_state(env)
    acts = [env.heuristic_actions(obs, 1.0, g) for _ in range(30)]  # crosses an auto-reset (new reset noise)
    ref = [env.step(a) for a in acts]
    fresh = mk()
    fresh.reset(seed=7)
    load_env_state(fresh, st)
    out = [fresh.step(a) for a in acts]
    assert sum(int(r.done.sum()) for r in ref) >= 2
    for r, o in zip(ref, out):
        assert torch.equal(r.obs.obs, o.obs.obs) and torch.equal(r.next.state, o.next.state)
        assert torch.equal(r.reward, o.reward) and torch.equal(r.done, o.done)
