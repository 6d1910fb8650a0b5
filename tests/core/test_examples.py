"""The examples in case_studies/examples run end to end on tiny budgets (custom trainer, own env)."""
from __future__ import annotations

import torch

from case_studies.examples.custom_trainer import main
from hetero.cvae import CVAEConfig
from hetero.quantify import QuantifyConfig


def test_custom_trainer_regroups_from_fps_to_the_types():
    torch.set_num_threads(1)
    q = QuantifyConfig(train_samples=400, eval_samples=200, cvae=CVAEConfig(epochs=6))
    trainer, hetdps, returns = main(updates=9, interval=3, n_agents=6, n_types=2, seed=0, quantify=q, verbose=False)
    assert [r.update for r in hetdps.history] == [1, 4, 7] and len(returns) == 9
    # model-free rounds (the pool has no S^E): a new grouping is applied once two rounds agree on it
    assert trainer.layout in ((0, 1, 0, 1, 0, 1), (1, 0, 1, 0, 1, 0))
    applied = [r for r in hetdps.history if r.plan["actions"] != ["keep"]]
    assert len(applied) == 1 and applied[0].plan["actions"] == ["keep", "split"]
    assert "confirmed" in applied[0].info["note"]
    assert len(trainer.policies) == 2
    held = {id(p) for g in trainer.optim.param_groups for p in g["params"]}
    assert held == {id(p) for p in trainer.policies.parameters()}  # the optimiser follows the new networks
    trainer.update()  # and training goes on with them


def test_own_env_protocol_example_quantifies_the_speed_kinds():
    """case_studies/examples/own_env.py: a user-written VecMultiAgentEnv through collect_pool + quantify."""
    from case_studies.examples.own_env import main as own_env

    torch.set_num_threads(1)
    res, groups, truth = own_env("meta", QuantifyConfig(train_samples=800, eval_samples=300, cvae=CVAEConfig(epochs=6)))
    assert res.mode == "model-free" and res.matrix.shape == (4, 4)
    assert groups.labels in ((0, 0, 1, 1), (1, 1, 0, 0)) and truth == (1, 1, 0, 0)
