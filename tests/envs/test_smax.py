"""SMAX backend (JaxMARL on CPU JAX): protocol, masks, win rate, unit types, train + quantify end to end."""
from __future__ import annotations

import csv

import pytest
import torch

pytest.importorskip("jaxmarl", reason="SMAX needs the optional extra: pip install -e '.[smax]'")

from marl_backends.envs import make_env  # noqa: E402
from marl_backends.envs.smax import MAPS, STOP, SmaxEnv  # noqa: E402
from marl_backends.nets.policy import GroupedPolicy  # noqa: E402

E = 8  # one batch size throughout, so each map compiles once per test session


@pytest.fixture(scope="module")
def env() -> SmaxEnv:
    return make_env("smax_2s3z", num_envs=E, seed=0)


def random_available(avail: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(avail.shape, generator=gen) * avail).argmax(-1)


def test_spec_and_shapes(env):
    s = env.spec
    assert (s.n_agents, s.action_dim, s.discrete, s.local_state_dim) == (5, 10, True, 4)
    assert s.groups == (0, 0, 1, 1, 1) and env.unit_type_names == ("stalker",) * 2 + ("zealot",) * 3
    o = env.reset(seed=3)
    assert o.obs.shape == (E, 5, s.obs_dim) and o.state.shape == (E, s.state_dim)
    assert o.local_state.shape == (E, 5, 4) and o.avail_actions.dtype == torch.bool
    enemies = o.env_state.view(E, 5, 10)  # S^E: the 5 enemies' health, x, y, cooldown, type bits
    assert torch.equal(enemies, o.state[:, 50:100].view(E, 5, 10)) and (enemies[..., 0] > 0).all()
    assert o.alive.all() and o.avail_actions[..., STOP].all()
    assert torch.equal(o.obs, env.reset(seed=3).obs) and not torch.equal(o.obs, env.reset(seed=4).obs)


def test_episode_ends_autoreset_and_win_info(env):
    gen = torch.Generator().manual_seed(0)
    o = env.reset(seed=0)
    ended = 0
    for _ in range(env.spec.max_steps + 5):
        r = env.step(random_available(o.avail_actions, gen))
        assert r.reward.shape == (E, 5) and torch.equal(r.done, r.terminated | r.truncated)
        assert not bool((r.terminated & r.truncated).any())
        assert bool((r.reward == r.reward[:, :1]).all())  # shared team reward
        won = r.info["won"]
        assert not bool((won & ~r.terminated).any())  # a win ends the battle
        d = r.done
        if bool(d.any()):
            ended += int(d.sum())
            assert bool(r.obs.alive[d].all())  # reset envs start with every unit alive
            assert not torch.equal(r.next.obs[d], r.obs.obs[d])
        keep = ~d
        assert torch.equal(r.next.obs[keep], r.obs.obs[keep])
        o = r.obs
    assert ended >= E  # every env finished at least once within the step limit


def test_truncation_at_step_limit():
    short = SmaxEnv("2s3z", num_envs=E, seed=0, max_steps=3)
    gen = torch.Generator().manual_seed(1)
    o = short.reset(seed=1)
    for t in range(3):
        r = short.step(torch.full((E, 5), STOP))  # nobody moves: no battle ends this early
        o = r.obs
    assert bool(r.truncated.all()) and not bool(r.terminated.any())
    assert bool((short.step(random_available(o.avail_actions, gen)).done == False).all())  # noqa: E712


def test_dead_units_only_stop_and_are_marked(env):
    gen = torch.Generator().manual_seed(2)
    o = env.reset(seed=2)
    seen_dead = False
    for _ in range(60):
        dead = ~o.alive
        if bool(dead.any()):
            seen_dead = True
            av = o.avail_actions[dead]
            assert bool(av[:, STOP].all()) and int(av.sum()) == int(dead.sum())
            assert bool((o.local_state[dead] == 0).all())
        o = env.step(env.heuristic_actions(o, 0.2, gen)).obs
    assert seen_dead


def test_policy_never_samples_unavailable_actions(env):
    """The trainers' policy, over many steps: masked logits give unavailable actions probability 0."""
    s = env.spec
    pol = GroupedPolicy(s.obs_dim, s.action_dim, True, (0, 0, 1, 1, 1), hidden=(32,),
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pol.body.head.weight.normal_(0, 5.0)  # peaked logits: unmasked, it would pick attacks out of range
    gen = torch.Generator().manual_seed(0)
    o = env.reset(seed=5)
    steps = 0
    for _ in range(250):
        a, logp, _ = pol.act(o.obs, o.avail_actions, gen)
        assert bool(o.avail_actions.gather(-1, a[..., None]).all())
        assert bool(torch.isfinite(logp).all())
        with torch.no_grad():
            _, ent, logp_all = pol.evaluate(o.obs, a, o.avail_actions)
        assert float(logp_all.exp().masked_fill(o.avail_actions, 0).max()) == 0.0
        assert bool((ent[~o.alive] == 0).all())  # a dead unit's only action: no entropy
        o = env.step(a).obs  # the env also refuses unavailable actions
        steps += 1
    assert steps * E * s.n_agents >= 10_000


def test_snapshot_restore_continues_exactly(env):
    gen = torch.Generator().manual_seed(3)
    o = env.reset(seed=3)
    for _ in range(7):
        o = env.step(random_available(o.avail_actions, gen)).obs
    snap = env.snapshot_state()
    acts = []
    for _ in range(5):
        acts.append(random_available(o.avail_actions, gen))
        o = env.step(acts[-1]).obs
    first = o.obs.clone()
    env.reset(seed=99)  # wander off, then come back
    env.restore_state(snap)
    for a in acts:
        r = env.step(a)
    assert torch.equal(r.obs.obs, first)
    with pytest.raises(ValueError, match="different map or num_envs"):
        SmaxEnv("2s3z", num_envs=E + 1).restore_state(snap)


def test_unavailable_action_is_refused_with_names(env):
    o = env.reset(seed=0)
    a = torch.full((E, 5), STOP)
    a[2, 1] = 5 + 4  # attack the last enemy: out of range at the start
    assert not bool(o.avail_actions[2, 1, 9])
    with pytest.raises(ValueError, match=r"env 2, agent 1: action 9 is unavailable"):
        env.step(a)
    with pytest.raises(ValueError, match="num_envs, n_agents"):
        env.step(torch.zeros(E, 4, dtype=torch.long))


def test_heuristic_beats_random():
    wins = {}
    for noise in (0.0, 1.0):
        env = make_env("smax_2s3z", num_envs=E, seed=0)
        gen = torch.Generator().manual_seed(0)
        o = env.reset(seed=0)
        w = n = 0
        for _ in range(150):
            r = env.step(env.heuristic_actions(o, noise, gen))
            w += int(r.info["won"][r.done].sum())
            n += int(r.done.sum())
            o = r.obs
        wins[noise] = w / max(n, 1)
    assert wins[0.0] > wins[1.0] + 0.2, wins


def test_smacv2_style_map_draws_unit_types_per_episode():
    env = make_env("smax_smacv2_5_units", num_envs=E, seed=0)
    assert env.spec.groups is None and env.unit_type_names is None
    t0 = env.unit_types.clone()
    assert t0.shape == (E, 5) and len(set(t0.flatten().tolist())) > 1
    r = env.step(torch.full((E, 5), STOP))
    assert torch.equal(r.info["unit_types"], t0)


def test_errors_name_the_fix(monkeypatch):
    with pytest.raises(ValueError, match="valid maps"):
        SmaxEnv("4s4z")
    with pytest.raises(ValueError, match="discrete actions only"):
        make_env("smax_3m", continuous=True)
    import marl_backends.envs.smax as smax

    monkeypatch.setattr(smax, "smax_available", lambda: False)
    with pytest.raises(ImportError, match=r"\.\[smax\]"):
        SmaxEnv("3m")
    assert "smax_3s5z" in __import__("marl_backends.envs", fromlist=["list_envs"]).list_envs()
    assert set(MAPS) >= {"3s5z", "3s5z_vs_3s6z", "smacv2_5_units", "smacv2_10_units", "smacv2_20_units"}


def test_quantify_finds_unit_types_on_2s3z():
    from sklearn.metrics import adjusted_rand_score

    from hetero.quantify import QuantifyConfig, quantify
    from hetero.cvae import CVAEConfig
    from hetero.grouping import group
    from marl_backends.envs import collect_pool

    env = make_env("smax_2s3z", num_envs=E, seed=0)
    pool = collect_pool(env, steps=400, noise=0.3, seed=0, progress=False)
    assert not bool(pool.valid.all()) and bool(pool.valid.any(0).all())  # dead rows left out, no agent empty
    res = quantify(pool, "meta", QuantifyConfig(train_samples=1500, eval_samples=500, cvae=CVAEConfig(epochs=6)))
    labels = group(res).labels
    assert adjusted_rand_score(labels, env.spec.groups) == 1.0


def test_train_mappo_and_hetdps_end_to_end(tmp_path):
    from hetero.cli import main

    run = tmp_path / "r"
    assert main(["train", "--algo", "mappo", "--env", "smax_2s3z", "--frames", str(3 * E * 64), "--num-envs", str(E),
                "--rollout-steps", "64", "--eval-interval", "3", "--eval-episodes", str(E), "--sharing", "hetdps:nps",
                "--hetdps-interval", "2", "--hetdps-rollouts", "1", "--hetdps-samples", "400",
                "--out-dir", str(tmp_path), "--run-name", "r", "--no-progress"]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 3 and "train_win_rate" in rows[0] and rows[-1]["eval_win_rate"] != ""
    assert 0.0 <= float(rows[-1]["eval_win_rate"]) <= 1.0
    assert (run / "hetdps_rounds.jsonl").exists()
