"""case_studies/examples/custom_trainer.py: a plain PyTorch trainer under HetDPS, end to end (tiny budget)."""
from __future__ import annotations

import torch

from case_studies.examples.custom_trainer import main
from hetero.cvae import CVAEConfig
from hetero.quantify import QuantifyConfig


def test_custom_trainer_regroups_from_fps_to_the_types():
    torch.set_num_threads(1)
    q = QuantifyConfig(train_samples=400, eval_samples=200, cvae=CVAEConfig(epochs=6))
    trainer, hetdps, returns = main(updates=6, interval=3, n_agents=6, n_types=2, seed=0, quantify=q, verbose=False)
    assert len(hetdps.history) == 2 and len(returns) == 6
    # Meta-Het sees the type-dependent reward at once: one split into the two types, then kept
    assert trainer.layout in ((0, 1, 0, 1, 0, 1), (1, 0, 1, 0, 1, 0))
    assert len(trainer.policies) == 2 and hetdps.history[0].plan["actions"] == ["keep", "split"]
    held = {id(p) for g in trainer.optim.param_groups for p in g["params"]}
    assert held == {id(p) for p in trainer.policies.parameters()}  # the optimiser follows the new networks
    trainer.update()  # and training goes on with them
