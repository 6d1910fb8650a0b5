"""Meta-Het on PMS at test size: colour groups under goal-directed behaviour and, with S^E in the
condition (the default) or model-based, under random actions too; the condition as App. G prints
it, (s_i, a_i), sees one group under random actions (PMS landmarks are i.i.d. and not in s_i, so
only colour-steered behaviour carries the colour)."""
import numpy as np
import pytest
from dataclasses import replace
from sklearn.metrics import adjusted_rand_score

from hetero.cvae import CVAEConfig
from hetero.grouping import group, group_stats
from hetero.quantify import QuantifyConfig, quantify
from marl_backends.envs import make_env
from marl_backends.envs.sampling import collect_pool

CFG = QuantifyConfig(train_samples=1500, eval_samples=600, cvae=CVAEConfig(epochs=6))


@pytest.mark.parametrize("task", ["pms_15a_3c", "pms_15a_5c_shuffle"])
def test_heuristic_behaviour_recovers_the_colours(task):
    """The default path on PMS: model-based Meta-Het (the env evaluates every agent at one input)."""
    env = make_env(task, num_envs=48, seed=0)
    pool = collect_pool(env, steps=50, behaviour="heuristic", seed=0, progress=False)
    res = quantify(pool, "meta", CFG, model=env.model)
    assert res.mode == "model-based"
    labels = group(res).labels
    assert adjusted_rand_score(env.spec.groups, labels) == 1.0
    assert group_stats(res.matrix, env.spec.groups)["ratio"] >= 5.0
    assert res.test.structure and res.p_value < 1e-3


def test_random_behaviour_as_printed_is_no_structure_beyond_noise():
    env = make_env("pms_15a_3c", num_envs=48, seed=0)
    pool = collect_pool(env, steps=50, behaviour="random", seed=0, progress=False)
    res = quantify(pool, "meta", replace(CFG, meta_condition="own"))
    assert group(res).labels == (0,) * 15
    assert not res.test.structure and res.p_value >= CFG.alpha


def test_random_behaviour_with_the_env_state_finds_the_colours():
    """Conditioned on (s_i, a_i, S^E) the colours differ in their functions, whatever the agents do."""
    env = make_env("pms_15a_3c", num_envs=48, seed=0)
    pool = collect_pool(env, steps=50, behaviour="random", seed=0, progress=False)
    res = quantify(pool, "meta", CFG)
    assert res.mode == "model-free" and res.test.structure and res.p_value < CFG.alpha
    assert adjusted_rand_score(env.spec.groups, group(res).labels) == 1.0


def test_model_based_meta_is_exactly_zero_within_a_colour_under_random_behaviour():
    env = make_env("pms_15a_5c", num_envs=16, seed=1)
    pool = collect_pool(env, steps=50, behaviour="random", seed=1, progress=False)
    res = quantify(pool, "meta", replace(CFG, train_samples=500, eval_samples=200), model=env.model)
    colours = np.asarray(env.spec.groups)
    same = colours[:, None] == colours[None, :]
    assert res.mode == "model-based" and np.all(res.matrix[same] == 0) and res.matrix[~same].min() > 0
    assert group(res).labels == env.spec.groups and res.p_value < 1e-6
