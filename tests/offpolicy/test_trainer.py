"""OffPolicyTrainer: grouped actors, per-critic minibatches, OMQ actor loss, regrouping, seeds."""
import pytest
import torch

from hetero.plan import RegroupPlan
from hetero.protocols import SharingTrainer
from marl_backends.offpolicy import OffPolicyTrainer, matd3, omdpg
from tests.offpolicy.test_omq import HandCritic, _loop_q
from tests.offpolicy.toy_env import ToyLineEnv

SMALL = dict(hidden=(16, 16), batch_size=32, buffer_size=2000, warmup_steps=40, train_interval=5)


def _trainer(cfg, layout=(0, 0, 1), num_envs=4):
    return OffPolicyTrainer(ToyLineEnv(num_envs=num_envs, groups=(0, 0, 1)), cfg, layout)


def test_grouped_actors_share_parameters_exactly_within_a_group():
    tr = _trainer(omdpg(**SMALL))
    assert isinstance(tr, SharingTrainer) and tr.layout == (0, 0, 1)
    tr.train(200, progress=False)
    assert tr.n_updates > 0
    assert all(p.shape[0] == 2 for p in tr.actor.parameters())  # one row per group, not per agent
    obs = torch.randn(7, 1, 2).expand(7, 3, 2)  # the same observation for every agent
    a = tr.actor(obs)
    assert torch.equal(a[:, 0], a[:, 1])  # same group: bit-identical
    assert not torch.allclose(a[:, 0], a[:, 2])  # other group
    d = tr.policy_distributions(obs)
    assert d.shape == (7, 3, 2) and torch.equal(d[:, 0], d[:, 1])


def test_each_critic_draws_its_own_minibatch():
    tr = _trainer(omdpg(n_critics=3, **SMALL))
    tr.collect(20)
    seen = []
    orig = tr.critic.forward
    tr.critic.forward = lambda s, j: (seen.append(s.detach().clone()), orig(s, j))[1]
    tr.update()
    first = seen[0]  # the first online call is Q_c(s, a) of Eq. 10 (targets are a separate module)
    assert first.shape[:2] == (3, 32)
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    tr2 = _trainer(matd3(**SMALL))  # MATD3: one shared minibatch
    tr2.collect(20)
    seen.clear()
    orig2 = tr2.critic.forward
    tr2.critic.forward = lambda s, j: (seen.append(s.detach().clone()), orig2(s, j))[1]
    tr2.update()
    assert seen[0].shape[0] == 1


@pytest.mark.parametrize("omq_min,omq_prefix", [("terms", "policy"), ("difference", "policy"), ("terms", "buffer")])
def test_trainer_actor_loss_is_eq15_on_a_hand_built_critic(omq_min, omq_prefix):
    """Eq. 15 with a_{1:i-1} from the current policies (default, HATD3's "a ~ pi") or the buffer."""
    tr = _trainer(omdpg(n_critics=3, omq_min=omq_min, omq_prefix=omq_prefix, **SMALL), layout=(0, 1, 2))
    tr.critic = HandCritic(3, 3, 1)
    g = torch.Generator().manual_seed(3)
    obs, s, buf = torch.randn(6, 3, 2, generator=g), torch.randn(6, 3, generator=g), torch.randn(6, 3, 1, generator=g)
    rank = torch.tensor([1, 2, 0])  # order: agent 2, 0, 1
    with torch.no_grad():
        live = tr.actor(obs)
        prefix = buf if omq_prefix == "buffer" else live
        qw, qo = _loop_q(tr.critic, s, prefix, live, live, [2, 0, 1])
        ref = -((qw - qo).min(0).values.mean() if omq_min == "difference" else (qw.min(0).values - qo.min(0).values).mean())
    loss = tr._update_actor(obs, s, buf, rank)
    assert abs(loss - ref.item()) < 1e-5


def test_apply_plan_splits_a_group_with_copied_parameters_and_optimiser_state():
    tr = _trainer(omdpg(**SMALL), layout=(0, 0, 0))
    tr.train(120, progress=False)
    obs = torch.randn(5, 3, 2)
    before = tr.actor(obs).detach()
    plan = RegroupPlan(layout=(0, 0, 1), sources=((0,), (0,)), weights=((1.0,), (1.0,)), actions=("keep", "split"),
                       old_layout=(0, 0, 0))
    tr.apply_plan(plan)
    assert tr.layout == (0, 0, 1) and tr.actor_tgt.layout_tuple == (0, 0, 1)
    torch.testing.assert_close(tr.actor(obs), before)
    assert tr.actor_opt.exp_avg[0].shape[0] == 2
    torch.testing.assert_close(tr.actor_opt.exp_avg[0][1], tr.actor_opt.exp_avg[0][0])
    tr.train(200, progress=False)  # keeps training with the new layout
    with pytest.raises(ValueError, match="layout"):
        tr.apply_plan(plan)


class SymmetricCritic(torch.nn.Module):
    """Q_c(s, a) = -sum_j (a_j - 0.5)^2: every agent's dQ/da_j has the same form."""

    n_critics = 2

    def forward(self, state, joint):  # noqa: ARG002
        return -((joint - 0.5) ** 2).sum((-1, -2)).expand(self.n_critics, -1)


@pytest.mark.parametrize("actor_loss", ["joint", "omq"])
def test_actor_gradient_scale_is_unchanged_by_a_split_or_merge_at_equal_data(actor_loss):
    """Per-group normalised actor loss: a group's gradient is the mean of its members', so a
    group of 4 (FPS), its split into 2+2 and the merge back get the same gradient on the same
    data (the sum over members would double / halve it, and mis-scale the regrouped Adam)."""
    cfg = omdpg(n_critics=2, actor_loss=actor_loss, **SMALL)
    env = ToyLineEnv(num_envs=4, groups=(0, 0, 0, 0))
    obs = torch.randn(16, 1, 2).expand(16, 4, 2).contiguous()  # equal data: every agent sees the same obs
    state, buf = torch.randn(16, 4), torch.zeros(16, 4, 1)

    def grads(tr):
        tr.critic = SymmetricCritic()
        tr.actor_opt.lr = 0.0  # measure the gradient only
        tr._update_actor(obs, state, buf, torch.arange(4))
        return [p.grad.clone() for p in tr.actor.parameters()]

    fps = OffPolicyTrainer(env, cfg, (0, 0, 0, 0))
    g_fps = grads(fps)
    split = RegroupPlan(layout=(0, 0, 1, 1), sources=((0,), (0,)), weights=((1.0,), (1.0,)), actions=("keep", "split"),
                        old_layout=(0, 0, 0, 0))
    fps.apply_plan(split)
    g_split = grads(fps)
    for a, b in zip(g_fps, g_split):
        assert a.abs().max() > 0
        torch.testing.assert_close(b[0], a[0])
        torch.testing.assert_close(b[1], a[0])
    merge = RegroupPlan(layout=(0, 0, 0, 0), sources=((0, 1),), weights=((0.5, 0.5),), actions=("merge",),
                        old_layout=(0, 0, 1, 1))
    fps.apply_plan(merge)
    for a, b in zip(g_fps, grads(fps)):
        torch.testing.assert_close(b, a)


def test_linear_lr_schedule_decays_to_zero_over_the_run():
    tr = _trainer(omdpg(lr_schedule="linear", **SMALL))
    tr.train(200, progress=False)
    assert tr.total_steps == 200
    frac = 1 - (tr.env_steps - 5 * 4) / 200  # set before the last iteration's 5 steps x 4 envs
    assert abs(tr.actor_opt.lr - SMALL.get("actor_lr", 5e-4) * frac) < 1e-12
    assert abs(tr.critic_opt.param_groups[0]["lr"] - 1e-3 * frac) < 1e-12
    with pytest.raises(ValueError, match="total_steps"):
        t2 = _trainer(omdpg(lr_schedule="linear", **SMALL))
        t2.iterate()


def test_same_seed_same_parameters_and_checkpoint_round_trip():
    a, b = _trainer(omdpg(**SMALL)), _trainer(omdpg(**SMALL))
    a.train(120, progress=False)
    b.train(120, progress=False)
    for p, q in zip(a.actor.parameters(), b.actor.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    c = _trainer(omdpg(**SMALL), layout=(0, 1, 2))
    c.load_state_dict(a.state_dict())
    assert c.layout == (0, 0, 1)
    obs = torch.randn(4, 3, 2)
    torch.testing.assert_close(c.actor(obs), a.actor(obs))


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="n_critics"):
        omdpg(n_critics=1)
    with pytest.raises(ValueError, match="target"):
        omdpg(target="max")


@pytest.mark.parametrize("kw", [dict(pu_batch="own"), dict(target="min"), dict(pu_anchor="target"),
                                dict(omq_prefix="buffer"), dict(independent_minibatches=False),
                                dict(actor_loss="joint", n_critics=5), dict(shuffle_order=False)])
def test_variants_of_the_critic_update_run(kw):
    tr = _trainer(omdpg(**{**SMALL, **kw}))
    tr.train(120, progress=False)
    assert tr.n_updates > 0 and all(torch.isfinite(torch.tensor(v)) for v in tr.metrics.values())


def test_pu_loss_pushes_ood_values_down_by_beta_times_std():
    """Same seed and data, with and without the PU term: y^PU = Q^tgt - beta * U lowers Q at the
    policy's (OOD) joint actions relative to training on the true target alone."""
    def q_after(pu_coef):
        tr = _trainer(omdpg(**{**SMALL, "beta": 5.0, "pu_coef": pu_coef, "critic_lr": 1e-2, "policy_delay": 100}))
        tr.collect(40)
        for _ in range(5):
            tr.update()
        b = tr.buffer.sample(1, 256, torch.Generator().manual_seed(0))
        with torch.no_grad():
            return tr.critic(b.state, tr.actor(b.obs)).mean().item(), tr.metrics

    (q_pu, m), (q_plain, _) = q_after(1.0), q_after(1e-12)
    assert m["pu_std"] > 0 and q_pu < q_plain


def test_hetdps_drives_omdpg_actor_groups():
    """OMDPG is a SharingTrainer: HetDPS quantifies its recent samples and regroups its actors."""
    from hetero.cvae import CVAEConfig
    from hetero.hetdps import HetDPS, HetDPSConfig
    from hetero.quantify import QuantifyConfig

    tr = _trainer(omdpg(**SMALL), layout=(0, 0, 0))
    tr.train(120, progress=False)
    cfg = HetDPSConfig(kind="policy", interval=1, pool_rollouts=1,
                       quantify=QuantifyConfig(train_samples=200, eval_samples=100, cvae=CVAEConfig(epochs=2)))
    h = HetDPS(tr, cfg)
    rnd = h.regroup(1)
    assert rnd.labels == (0, 0, 0) and tr.layout == (0, 0, 0)  # FPS actors: identical policies, one group
    tr.apply_plan(RegroupPlan(layout=(0, 0, 1), sources=((0,), (0,)), weights=((1.0,), (1.0,)),
                              actions=("keep", "split"), old_layout=(0, 0, 0)))
    obs = torch.randn(5, 1, 2).expand(5, 3, 2)
    after = tr.policy_distributions(obs)
    assert torch.equal(after[:, 0], after[:, 2])  # a split copies the network exactly
    tr.train(400, progress=False)  # (total env steps) the two actor groups now learn apart
    rnd = h.regroup(2)
    assert rnd.matrix[0, 1] == 0 and rnd.matrix[0, 2] > 0  # Policy-Het sees the shared vs split actors
    assert rnd.labels[0] == rnd.labels[1]
