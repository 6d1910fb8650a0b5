"""On-policy trainers: HAPPO factor, regroup through the trainer, resume, protocol."""
from __future__ import annotations

import math

import pytest
import torch
from fake_env import fake_factory

from hetero import RegroupPlan, SharingTrainer
from marl_backends.trainers import HAPPOTrainer, TrainConfig, load_trainer, make_trainer, train
from marl_backends.trainers.rollout import gae
from marl_backends.trainers.run_io import read_metrics

TINY = dict(env="fake", num_envs=4, rollout_steps=8, hidden=(16, 16), ppo_epochs=2, num_minibatches=2,
            critic_epochs=2, critic_minibatches=2, eval_episodes=2, progress=False, tensorboard=False)


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def test_happo_factor_is_product_of_ratios_hand_checked():
    tr = HAPPOTrainer(tiny(algo="happo", sharing="nps"), fake_factory())
    batch = tr._prepare(tr._collect())
    agents = torch.tensor([0, 2, 3])
    with torch.no_grad():
        sub = tr.take(batch, None, agents)
        logp_now, _, _ = tr.actor.evaluate(sub["obs"], sub["action"], sub["avail"], agents=agents)
    ratios = torch.tensor([2.0, 0.5, 1.5])
    # old log-probs chosen so that pi_now / pi_old is 2, 0.5 and 1.5 for agents 0, 2, 3
    batch["logp"] = batch["logp"].clone()
    batch["logp"][:, agents] = logp_now - ratios.log()
    f = tr.compound_factor(batch, agents)
    torch.testing.assert_close(f, torch.full_like(f, 1.5), rtol=1e-5, atol=1e-6)  # 2 * 0.5 * 1.5


@pytest.mark.parametrize("sharing,mode", [("nps", "group"), ("groups:0,0,1,1", "group"), ("nps", "naive")])
def test_happo_factor_during_update_equals_previous_units_ratios(sharing, mode):
    tr = HAPPOTrainer(tiny(algo="happo", sharing=sharing, happo_shared=mode), fake_factory())
    tr.record_factors = True
    batch = tr._prepare(tr._collect())
    tr.update_actor(batch)
    assert len(tr.factor_log) == tr.actor.n_groups
    # units never change after their turn, so the final parameters give each unit's ratio
    prev = []
    for agents, factor in tr.factor_log:
        if not prev:
            assert torch.equal(factor, torch.ones_like(factor))
        else:
            expect = tr.compound_factor(batch, torch.cat(prev))
            torch.testing.assert_close(factor, expect, rtol=1e-4, atol=1e-6)
        prev.append(agents)
    assert not torch.allclose(tr.factor_log[-1][1], torch.ones(1))  # earlier updates did move M


def test_happo_updates_only_the_current_unit():
    tr = HAPPOTrainer(tiny(algo="happo", sharing="nps", num_minibatches=1, ppo_epochs=1), fake_factory())
    batch = tr._prepare(tr._collect())
    before = [p.detach().clone() for p in tr.actor.parameters()]
    units, opt_step = tr.units(), tr.actor_opt.step
    seen = []
    tr.actor_opt.step = lambda groups=None: (seen.append(groups.tolist()), opt_step(groups))[1]
    tr.update_actor(batch)
    assert sorted(g for s in seen for g in s) == list(range(4)) and all(len(s) == 1 for s in seen)
    assert len(units) == 4 and any(not torch.equal(p, b) for p, b in zip(tr.actor.parameters(), before))


def test_gae_time_limits():
    # one env, 3 steps; step 1 truncated (bootstrap from next_value), step 2 terminated (no bootstrap)
    r = torch.tensor([1.0, 1.0, 1.0]).view(3, 1, 1)
    v = torch.zeros(3, 1, 1)
    nv = torch.tensor([0.0, 10.0, 10.0]).view(3, 1, 1)
    term = torch.tensor([False, False, True]).view(3, 1)
    done = torch.tensor([False, True, True]).view(3, 1)
    adv, ret = gae(r, v, nv, term, done, gamma=0.5, lam=1.0)
    assert adv.flatten().tolist() == pytest.approx([1 + 0.5 * 6.0, 1 + 0.5 * 10, 1.0])


def test_trainer_is_sharing_trainer_and_regroup_keeps_unchanged_agents():
    tr = make_trainer(tiny(algo="mappo", sharing="groups:0,0,1,1"), fake_factory())
    assert isinstance(tr, SharingTrainer)
    tr.iterate()
    pool = tr.sample_pool().validate()
    assert pool.rows == 32 and pool.n_agents == 4 and pool.action.shape[-1] == 5
    obs = pool.obs[:16]
    p0 = tr.policy_distributions(obs)
    assert p0.shape == (16, 4, 5)
    # split group 1 (agents 2, 3) into {2} and {3}; group 0 unchanged
    plan = RegroupPlan((0, 0, 1, 2), ((0,), (1,), (1,)), ((1.0,), (1.0,), (1.0,)), ("keep", "keep", "split"), (0, 0, 1, 1))
    tr.apply_plan(plan)
    assert tr.layout == (0, 0, 1, 2)
    assert torch.equal(tr.policy_distributions(obs), p0)
    tr.iterate()  # trains with the new layout
    with pytest.raises(ValueError, match="made against layout"):
        tr.apply_plan(plan)


def _strip(rows):
    drop = {"fps", "rollout_s", "update_s", "wall_s"}
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


@pytest.mark.parametrize("algo", ["happo", "mappo"])
def test_resume_continues_with_same_numbers(tmp_path, algo):
    cfg = tiny(algo=algo, sharing="groups:0,0,1,1", frames=4 * 32, eval_interval=1, checkpoint_interval=1,
               happo_shared="fpb", seed=3)
    plan = RegroupPlan((0, 1, 2, 2), ((0,), (0,), (1,)), ((1.0,), (1.0,), (1.0,)), ("keep", "split", "keep"), (0, 0, 1, 1))

    def regroup_at_1(tr, m):
        if tr.iteration == 1:
            tr.apply_plan(plan)

    full = make_trainer(cfg, fake_factory())
    (tmp_path / "a").mkdir()
    train(full, tmp_path / "a", callback=regroup_at_1)

    (tmp_path / "b").mkdir()
    part = make_trainer(cfg.replace(frames=2 * 32), fake_factory())
    train(part, tmp_path / "b", callback=regroup_at_1)
    resumed = load_trainer(tmp_path / "b", fake_factory(), frames=4 * 32)
    assert resumed.iteration == 2 and resumed.layout == (0, 1, 2, 2)
    train(resumed, tmp_path / "b", callback=regroup_at_1)

    for a, b in zip(full.actor.state_dict().values(), resumed.actor.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.critic.state_dict().values(), resumed.critic.state_dict().values()):
        assert torch.equal(a, b)
    ra, rb = _strip(read_metrics(tmp_path / "a")), _strip(read_metrics(tmp_path / "b"))
    assert len(ra) == len(rb) == 4
    for x, y in zip(ra, rb):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k])), k


def test_hamdpo_kl_penalty_keeps_policy_closer():
    kw = dict(algo="hamdpo", sharing="nps", ppo_epochs=8, num_minibatches=1, lr=5e-3, mdpo_kl_anneal=False)
    kls = []
    for coef in (0.0, 20.0):
        tr = make_trainer(tiny(**kw, mdpo_kl_coef=coef), fake_factory())
        batch = tr._prepare(tr._collect())
        kls.append(tr.update_actor(batch)["approx_kl"])
    assert kls[1] < kls[0]


def test_continuous_actions_and_policy_distributions():
    tr = make_trainer(tiny(algo="happo", sharing="fps", continuous=True), fake_factory(continuous=True))
    m = tr.iterate()
    assert math.isfinite(m["actor_loss"]) and math.isfinite(m["critic_loss"])
    d = tr.policy_distributions(torch.randn(5, 4, 6))
    assert d.shape == (5, 4, 4) and (d[..., 2:] > 0).all()
    assert tr.sample_pool().action.shape == (32, 4, 2)


def test_naive_shared_happo_drifts_fpb_does_not_use_stale_ratios():
    """With shared parameters, naive per-agent HAPPO folds ratios into M that later same-group
    updates change again (OMDPG Eq. 3): M no longer equals the previous agents' ratios."""
    cfg = tiny(algo="happo", sharing="groups:0,0,1,1", ppo_epochs=4, num_minibatches=1, lr=5e-3)
    tr = HAPPOTrainer(cfg.replace(happo_shared="naive"), fake_factory())
    tr.record_factors = True
    batch = tr._prepare(tr._collect())
    tr.update_actor(batch)
    prev = torch.cat([a for a, _ in tr.factor_log[:-1]])
    stale = tr.factor_log[-1][1]
    assert not torch.allclose(stale, tr.compound_factor(batch, prev), rtol=1e-3)


@pytest.mark.parametrize("algo", ["mappo", "happo"])
def test_group_major_update_keeps_the_numbers(monkeypatch, algo):
    """The grouped actor's group-major path changes only the summation order: one update from the
    same seed gives the same losses and parameters as the per-agent gather path (rtol 1e-5)."""
    import marl_backends.nets.grouped as grouped

    def one_update():
        tr = make_trainer(tiny(algo=algo, sharing="groups:0,0,1,1", seed=3), fake_factory())
        return tr.iterate(), [p.detach().clone() for p in tr.actor.parameters()]

    metrics, params = one_update()
    monkeypatch.setattr(grouped, "group_major_index", lambda layout, n_groups: None)
    metrics_ref, params_ref = one_update()
    for key in ("actor_loss", "entropy", "critic_loss"):
        assert metrics[key] == pytest.approx(metrics_ref[key], rel=1e-5, abs=1e-7), key
    for p, r in zip(params, params_ref):
        torch.testing.assert_close(p, r, rtol=1e-5, atol=1e-6)
