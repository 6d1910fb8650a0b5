"""Meta-Het on PMS at test size: colour groups under goal-directed behaviour, one group under
random actions (the noise floor: PMS landmarks are i.i.d., so random behaviour carries no colour
signal). Full-size figures for every task are in bench/ and the CHANGELOG."""
import pytest
from sklearn.metrics import adjusted_rand_score

from hetero.cvae import CVAEConfig
from hetero.grouping import group, group_stats
from hetero.quantify import QuantifyConfig, quantify
from marl_backends.envs import make_env
from marl_backends.envs.sampling import collect_pool

CFG = QuantifyConfig(train_samples=1500, eval_samples=600, cvae=CVAEConfig(epochs=6))


@pytest.mark.parametrize("task", ["pms_15a_3c", "pms_15a_5c_shuffle"])
def test_heuristic_behaviour_recovers_the_colours(task):
    env = make_env(task, num_envs=48, seed=0)
    pool = collect_pool(env, steps=50, behaviour="heuristic", seed=0, progress=False)
    res = quantify(pool, "meta", CFG)
    labels = group(res).labels
    assert adjusted_rand_score(env.spec.groups, labels) == 1.0
    assert group_stats(res.matrix, env.spec.groups)["ratio"] >= 5.0
    assert res.test.structure and res.p_value < 1e-3


def test_random_behaviour_is_no_structure_beyond_noise():
    env = make_env("pms_15a_3c", num_envs=48, seed=0)
    pool = collect_pool(env, steps=50, behaviour="random", seed=0, progress=False)
    res = quantify(pool, "meta", CFG)
    assert group(res).labels == (0,) * 15
    assert not res.test.structure and res.p_value >= CFG.alpha
