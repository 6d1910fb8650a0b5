"""Tiny end-to-end runs of MATD3 and OMDPG on a VMAS continuous task and on MaMuJoCo (extra)."""
import math

import pytest

from marl_backends.envs import make_env
from marl_backends.envs.mamujoco import mamujoco_available
from marl_backends.offpolicy import OffPolicyTrainer, matd3, omdpg

TINY = dict(hidden=(32, 32), batch_size=64, buffer_size=5000, warmup_steps=200, train_interval=10, n_step=3)


@pytest.mark.parametrize("preset", [matd3, omdpg])
def test_vmas_spread_continuous_end_to_end(preset):
    env = make_env("spread_v4", num_envs=8, seed=0, continuous=True)
    tr = OffPolicyTrainer(env, preset(**TINY), env.spec.groups)
    rows = tr.train(1200, progress=False)
    assert tr.n_updates >= 50 and len(tr.episode_returns) > 0
    last = rows[-1]
    assert all(math.isfinite(last[k]) for k in ("loss_true", "q", "episode_return"))
    pool = tr.sample_pool().validate()
    assert pool.obs.shape[1:] == (4, env.spec.obs_dim) and pool.action.shape[-1] == 2
    ev = tr.evaluate(make_env("spread_v4", num_envs=4, seed=1, continuous=True), episodes=4)
    assert math.isfinite(ev)


@pytest.mark.skipif(not mamujoco_available(), reason="MaMuJoCo extra not installed: pip install gymnasium-robotics mujoco")
@pytest.mark.parametrize("preset", [matd3, omdpg])
def test_mamujoco_halfcheetah_het_end_to_end(preset):
    env = make_env("mamujoco_halfcheetah_2x3_het", num_envs=2, seed=0, max_steps=50)
    tr = OffPolicyTrainer(env, preset(**TINY), env.spec.groups)
    tr.train(600, progress=False)
    assert tr.n_updates > 0 and len(tr.episode_returns) >= 2
    assert math.isfinite(tr.metrics["loss_true"])
