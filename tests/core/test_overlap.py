"""The behaviour-invariant swap test (hetero.overlap): agents that act differently but share one
transition function are one group; different functions are still told apart."""
import torch

from case_studies.planted import planted_pool
from hetero.grouping import group
from hetero.overlap import fit_id_classifier, pair_weights
from hetero.quantify import QuantifyConfig, quantify
from hetero.structure import split_halves, swap_contributions

FAST = QuantifyConfig(train_samples=400, eval_samples=200, test_samples=300)


def _cfg(seed: int, reweight: bool) -> QuantifyConfig:
    return QuantifyConfig(**{**FAST.__dict__, "seed": seed, "reweight": reweight})


def test_own_behaviours_with_one_transition_function_are_one_group():
    """Per-agent action preferences (planted_pool(behaviour=3)), identical dynamics: the plain swap
    test calls most such pools structured (each id is fitted best where its own agent acts);
    the weighted test does not."""
    plain, weighted = [], []
    for seed in range(4):
        pool, _ = planted_pool((0,) * 4, effect=0.0, episodes=32, steps=25, seed=seed, behaviour=3.0)
        plain.append(quantify(pool, "meta", _cfg(seed, False)).test.structure)
        weighted.append(group(quantify(pool, "meta", _cfg(seed, True))).n_groups)
    assert sum(plain) >= 2, plain  # the failure the weights fix
    assert weighted == [1, 1, 1, 1], weighted


def test_weighted_test_still_separates_different_functions():
    pool, truth = planted_pool((0, 0, 1, 1, 2), effect=2.0, episodes=32, steps=25, seed=1)
    labels = group(quantify(pool, "meta", _cfg(1, True))).labels
    same = lambda lab: torch.tensor(lab)[:, None] == torch.tensor(lab)[None]  # noqa: E731
    assert torch.equal(same(labels), same(truth)), (labels, truth)


def test_pair_weights_are_overlap_weights():
    """w = p_j / (p_i + p_j) in (0, 1); 1/2 for the own id and wherever the behaviours are alike."""
    g = torch.Generator().manual_seed(0)
    agent = torch.arange(3).repeat(400)
    x = torch.randn(1200, 2, generator=g) + torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])[agent]
    clf, prior = fit_id_classifier(x, agent, 3, g, steps=400)
    w = pair_weights(clf, prior, x, agent)
    assert w.shape == (1200, 3) and bool(((w > 0) & (w < 1)).all())
    assert torch.allclose(w.gather(1, agent[:, None]), torch.full((1200, 1), 0.5))
    far = agent == 0  # agent 0 sits apart: its rows weigh little in its pairs, agents 1 and 2 ~ 1/2 each
    assert w[far, 1].mean() < 0.2 and (w[agent == 1, 2].mean() - 0.5).abs() < 0.1


def test_unit_weights_give_the_plain_statistic():
    pool, _ = planted_pool((0, 1, 1), effect=1.0, episodes=16, steps=10, seed=0)
    res = quantify(pool, "meta", FAST)  # only to reach a fitted model through the public path
    assert res.test is not None
    from hetero.cvae import CVAEConfig, fit_cvaes
    from hetero.kinds import model_free_xy

    x, y, m = model_free_xy("meta", pool, 8)
    agents = torch.arange(3).repeat(pool.rows)
    rows = torch.arange(pool.rows).repeat_interleave(3)
    (model,), _ = fit_cvaes(x[rows, agents], y[rows, agents], m[agents], CVAEConfig(epochs=1),
                            [torch.arange(rows.numel())], agent=agents, n_agents=3, generator=torch.Generator())
    half, block = split_halves(pool.episode, pool.valid, torch.Generator().manual_seed(0))
    args = (model, x[rows, agents], y[rows, agents], m[agents], agents, block[rows], 3, int(block.max()) + 1)
    assert torch.allclose(swap_contributions(*args), swap_contributions(*args, torch.ones(rows.numel(), 3)))
