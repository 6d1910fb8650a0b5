"""HARL App. K details: active masks for dead agents in the on-policy losses, linear lr decay."""
from __future__ import annotations

import copy

import pytest
import torch
from fake_env import fake_factory

from marl_backends.trainers import TrainConfig, make_trainer
from marl_backends.trainers.onpolicy import group_mean_weights
from marl_backends.trainers.valuenorm import ValueNorm

TINY = dict(env="fake", num_envs=4, rollout_steps=8, hidden=(16, 16), ppo_epochs=2, num_minibatches=2,
            critic_epochs=2, critic_minibatches=2, eval_episodes=2, progress=False, tensorboard=False)


def _masked_batch(tr):
    batch = tr._prepare(tr._collect())
    n = batch["obs"].shape[0]
    active = torch.ones(n, tr.spec.n_agents, dtype=torch.bool)
    active[::2, 1] = False  # agent 1 dead in every other sample
    batch["active"], batch["value_mask"] = active, active if tr.n_values > 1 else None
    garbage = copy.copy(batch)
    garbage["adv"] = batch["adv"].masked_fill(~active, 1e3)  # dead entries carry nonsense
    garbage["target"] = batch["target"].masked_fill(~active, -1e3) if tr.n_values > 1 else batch["target"]
    return batch, garbage


@pytest.mark.parametrize("algo,sharing", [("mappo", "fps"), ("mappo", "groups:0,0,1,1"), ("happo", "nps"),
                                          ("hamdpo", "nps")])
def test_dead_agents_entries_do_not_move_actor_or_critic(algo, sharing):
    after = []
    tr0 = make_trainer(TrainConfig(**TINY, algo=algo, sharing=sharing), fake_factory())
    batch, garbage = _masked_batch(tr0)
    for b in (batch, garbage):
        tr = copy.deepcopy(tr0)
        tr.update_actor(b)
        tr.update_critic(b)
        after.append([p.clone() for p in [*tr.actor.parameters(), *tr.critic.parameters()]])
    for x, y in zip(*after):
        torch.testing.assert_close(x, y)
    tr = copy.deepcopy(tr0)
    tr.update_actor(garbage | {"active": None})  # without masks the nonsense counts
    assert any(not torch.allclose(x, y) for x, y in zip(tr.actor.parameters(), after[0]))


def test_group_mean_weights_average_each_groups_active_entries():
    layout = torch.tensor([0, 0, 1])
    w = group_mean_weights(torch.Size([2, 3]), layout)
    torch.testing.assert_close(w, torch.tensor([[0.25, 0.25, 0.5], [0.25, 0.25, 0.5]]))
    active = torch.tensor([[True, False, True], [True, True, False]])
    w = group_mean_weights(active.shape, layout, active)
    torch.testing.assert_close(w, torch.tensor([[1 / 3, 0.0, 1.0], [1 / 3, 1 / 3, 0.0]]))


def test_value_norm_skips_inactive_entries():
    a, b = ValueNorm(2, beta=0.5), ValueNorm(2, beta=0.5)
    x = torch.tensor([[1.0, 2.0], [3.0, 100.0]])
    a.update(x, torch.tensor([[True, True], [True, False]]))
    b.update(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.mean_sq, b.mean_sq)


def test_linear_lr_schedule_decays_to_zero():
    cfg = TrainConfig(**TINY, lr_schedule="linear", frames=4 * 8 * 4)
    tr = make_trainer(cfg, fake_factory())
    lrs = []
    for _ in range(cfg.iterations):
        tr.iterate()
        lrs.append((tr.actor_opt.lr, tr.critic_opt.lr))
    assert [a for a, _ in lrs] == pytest.approx([cfg.lr * f for f in (1.0, 0.75, 0.5, 0.25)])
    assert [c for _, c in lrs] == pytest.approx([cfg.critic_lr * f for f in (1.0, 0.75, 0.5, 0.25)])
    with pytest.raises(ValueError, match="lr-schedule"):
        TrainConfig(lr_schedule="cosine")
