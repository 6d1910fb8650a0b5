"""HetDPS controller on a stub trainer: schedule, pool, plans from any initial paradigm, failures, state."""
from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import synthetic_pool

from hetero.grouping import cluster
from hetero.hetdps import HetDPS, HetDPSConfig, RegroupRound
from hetero.plan import RegroupPlan

COLOURS = (0, 0, 1, 1, 2, 2)


class StubTrainer:
    """Minimal SharingTrainer: records plans, hands out a synthetic pool."""

    def __init__(self, layout):
        self._layout = tuple(layout)
        self.plans: list[RegroupPlan] = []
        self.pool_calls = 0

    @property
    def layout(self):
        return self._layout

    def sample_pool(self):
        self.pool_calls += 1
        return synthetic_pool(groups=(0, 0, 1, 1, 2, 2), rows=64, seed=self.pool_calls)

    def policy_distributions(self, obs):
        raise NotImplementedError

    def apply_plan(self, plan: RegroupPlan) -> None:
        assert plan.old_layout == self._layout
        self.plans.append(plan)
        self._layout = plan.layout


class ScriptedGrouper:
    name = "scripted"

    def __init__(self, proposals, mode="model-based"):
        self.proposals = list(proposals)
        self.pools = []
        self.mode = mode

    def propose(self, pool, trainer, round_index):
        self.pools.append(pool)
        lab = self.proposals[round_index]
        if isinstance(lab, Exception):
            raise lab
        return lab, {"matrix": np.eye(len(trainer.layout)), "noise_floor": 0.1, "mode": self.mode}


@pytest.mark.parametrize("init", [(0,) * 6, tuple(range(6)), (0, 0, 0, 1, 1, 1)], ids=["fps", "nps", "groups"])
def test_reaches_colours_from_any_paradigm_and_keeps_them(init, tmp_path):
    tr = StubTrainer(init)
    h = HetDPS(tr, HetDPSConfig(interval=3, first_round=3, pool_rollouts=2),
               grouper=ScriptedGrouper([COLOURS, (5, 5, 7, 7, 1, 1)]),
               log_dir=tmp_path)
    rounds = [h.after_update(u) for u in range(1, 7)]
    assert [r is not None for r in rounds] == [False, False, True, False, False, True]
    assert tr.layout == COLOURS and h.history[0].labels == COLOURS
    assert h.history[1].plan["actions"] == ["keep"] * 3 and len(tr.plans) == 1  # relabelled: no-op
    if init == (0,) * 6:  # FPS -> 3 groups: one network kept, two split off (copies)
        assert sorted(h.history[0].plan["actions"]) == ["keep", "split", "split"]
    elif init == tuple(range(6)):  # NPS -> 3 groups: every new network merges two old ones
        assert h.history[0].plan["actions"] == ["merge"] * 3
    assert tr.pool_calls == 4  # two pools gathered before each of the two rounds, none in between
    log = [json.loads(line) for line in (tmp_path / "hetdps_rounds.jsonl").read_text().splitlines()]
    assert [r["update"] for r in log] == [3, 6] and "seconds" in log[0] and log[0]["labels"] == list(COLOURS)
    z = np.load(tmp_path / "hetdps_round_0000003.npz")
    assert z["matrix"].shape == (6, 6) and tuple(z["labels"]) == COLOURS


def test_schedule_first_round_at_update_one_and_none_at_the_last_update():
    """Default schedule: the first round right after the first rollout, then every interval; never at
    the final update (no training would use it)."""
    tr = StubTrainer(tuple(range(6)))
    h = HetDPS(tr, HetDPSConfig(interval=10, pool_rollouts=4), grouper=ScriptedGrouper([COLOURS] * 10))
    rounds = [u for u in range(1, 41) if h.after_update(u, last=40) is not None]
    assert rounds == [1, 11, 21, 31]
    h2 = HetDPS(StubTrainer(tuple(range(6))), HetDPSConfig(interval=10), grouper=ScriptedGrouper([COLOURS] * 10))
    assert [u for u in range(1, 32) if h2.after_update(u, last=31) is not None] == [1, 11, 21]


def test_model_free_grouping_waits_for_confirmation_model_based_acts_at_once():
    """A model-free round's new grouping is applied only when the next round proposes the same partition
    (relabelled or not); a different proposal restarts the wait. A model-based round acts at once."""
    other = (0, 0, 0, 1, 1, 1)
    tr = StubTrainer(tuple(range(6)))
    h = HetDPS(tr, HetDPSConfig(interval=1), grouper=ScriptedGrouper(
        [COLOURS, other, (4, 4, 4, 9, 9, 9), other], mode="model-free"))
    r1 = h.after_update(1)
    assert tr.layout == tuple(range(6)) and "held until the next round" in r1.info["note"]
    h.after_update(2)  # a different proposal: still nothing applied
    assert tr.layout == tuple(range(6))
    r3 = h.after_update(3)  # the same partition as round 2 (relabelled): applied
    assert tr.layout == other and "confirmed" in r3.info["note"]
    h.after_update(4)  # proposes what is already the layout: nothing to confirm
    assert tr.layout == other and h.pending is None
    st = h.state_dict()
    assert st["pending"] is None
    tr2 = StubTrainer(tuple(range(6)))
    HetDPS(tr2, HetDPSConfig(interval=1), grouper=ScriptedGrouper([COLOURS])).after_update(1)
    assert tr2.layout == COLOURS  # model-based: at once
    tr3 = StubTrainer(tuple(range(6)))
    HetDPS(tr3, HetDPSConfig(interval=1, confirm=False), grouper=ScriptedGrouper([COLOURS], mode="model-free")).after_update(1)
    assert tr3.layout == COLOURS  # confirm off


def test_pending_grouping_survives_a_checkpoint():
    tr = StubTrainer(tuple(range(6)))
    h = HetDPS(tr, HetDPSConfig(interval=1), grouper=ScriptedGrouper([COLOURS], mode="model-free"))
    h.after_update(1)
    h2 = HetDPS(StubTrainer(tuple(range(6))), HetDPSConfig(interval=1),
                grouper=ScriptedGrouper([None, COLOURS], mode="model-free"))
    h2.load_state_dict(h.state_dict() | {"grouper": "scripted"})
    assert h2.pending == COLOURS
    h2.after_update(2)
    assert h2.trainer.layout == COLOURS


@pytest.mark.parametrize("merge", ["majority", "random", "average", "weighted"])
def test_every_merge_mode_reaches_the_trainer(merge):
    tr = StubTrainer((0, 0, 0, 1, 1, 2))
    h = HetDPS(tr, HetDPSConfig(interval=1, merge=merge), grouper=ScriptedGrouper([(0, 0, 0, 0, 0, 1)]))
    h.after_update(1)
    w = tr.plans[0].weights[0]
    expected = {"majority": (1.0, 0.0), "average": (0.5, 0.5), "weighted": (0.6, 0.4)}
    if merge == "random":
        assert sorted(w) == [0.0, 1.0]
    else:
        assert w == pytest.approx(expected[merge])


def test_failed_round_keeps_layout_and_logs_why(tmp_path):
    tr = StubTrainer(COLOURS)
    bad = ValueError("distance matrix contains NaN/inf; re-run quantify on a clean sample pool.")
    h = HetDPS(tr, HetDPSConfig(interval=1, on_error="warn"), grouper=ScriptedGrouper([bad, RuntimeError("boom"), (0,) * 6]),
               log_dir=tmp_path)
    with pytest.warns(UserWarning, match="layout kept"):
        r1 = h.after_update(1)
    with pytest.warns(UserWarning, match="RuntimeError: boom"):
        h.after_update(2)
    assert tr.layout == COLOURS and "NaN" in r1.info["error"] and r1.plan["actions"] == ["keep"] * 3
    h.after_update(3)  # training goes on; the next good round applies
    assert tr.layout == (0,) * 6 and len(h.history) == 3


def test_real_grouper_on_degenerate_pool_does_not_crash():
    """A pool with NaN (or a single episode for the split-half floor) -> clear error in the log, layout kept."""
    tr = StubTrainer(COLOURS)
    pool = synthetic_pool(groups=(0, 0, 1, 1, 2, 2), rows=64)
    pool.reward[0, 0] = float("nan")
    tr.sample_pool = lambda: pool
    h = HetDPS(tr, HetDPSConfig(interval=1, pool_rollouts=1, on_error="warn"))
    with pytest.warns(UserWarning):
        r = h.after_update(1)
    assert "NaN" in r.info["error"] or "nan" in r.info["error"].lower()
    assert tr.layout == COLOURS


def test_failed_round_raises_by_default_naming_the_bad_tensor():
    """reward [T, N, 1] (a common trainer layout) used to cost a silent round; now the first round says so."""
    tr = StubTrainer(COLOURS)
    pool = synthetic_pool(groups=(0, 0, 1, 1, 2, 2), rows=64)
    pool.reward = pool.reward.unsqueeze(-1)
    tr.sample_pool = lambda: pool
    h = HetDPS(tr, HetDPSConfig(interval=1, pool_rollouts=1))
    with pytest.raises(RuntimeError, match=r"SamplePool.reward has shape \(64, 6, 1\), expected \(64, 6\)"):
        h.after_update(1)
    assert tr.layout == COLOURS and h.history == []


def test_state_dict_roundtrip():
    tr = StubTrainer((0,) * 6)
    h = HetDPS(tr, HetDPSConfig(interval=4, first_round=4, pool_rollouts=3), grouper=ScriptedGrouper([COLOURS]))
    for u in range(1, 5):
        h.after_update(u)
    h.after_update(6)  # one pool gathered for the round at 8
    st = h.state_dict()
    h2 = HetDPS(StubTrainer(COLOURS), HetDPSConfig(interval=4, first_round=4, pool_rollouts=3),
                grouper=ScriptedGrouper([]))
    h2.load_state_dict(st)
    assert [r.labels for r in h2.history] == [COLOURS] and len(h2.pools) == 1
    np.testing.assert_array_equal(h2.history[0].matrix, h.history[0].matrix)
    assert RegroupRound.from_dict(h.history[0].to_dict()).labels == COLOURS


@pytest.mark.parametrize("kw, field", [({"interval": 0}, "interval"), ({"merge": "mean"}, "merge"),
                                       ({"pool_rollouts": 0}, "pool_rollouts"), ({"no_structure": "x"}, "no_structure"),
                                       ({"on_error": "ignore"}, "on_error")])
def test_config_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        HetDPSConfig(**kw)


def test_wraps_only_sharing_trainers():
    with pytest.raises(TypeError, match="SharingTrainer"):
        HetDPS(object())


@pytest.mark.parametrize("seed", range(8))
def test_ap_tied_zeros_not_stuck_in_poor_solution(seed):
    """Three identical-agent groups (exact-zero within distances): AP for some random_states
    settles on 2 clusters; the exemplar refinement must return the 3."""
    lab = np.repeat([0, 1, 2], 5)
    between = np.array([[0, 1.2, 1.75], [1.2, 0, 1.55], [1.75, 1.55, 0]])
    d = between[lab][:, lab]
    assert cluster(d, 0.4, seed=seed).labels == tuple(lab)


@pytest.mark.parametrize("mode", ["keep", "merge"])
def test_no_structure_round_keeps_or_merges(mode):
    from hetero.cvae import CVAEConfig
    from hetero.hetdps import HetGrouper
    from hetero.quantify import QuantifyConfig

    pool = synthetic_pool(groups=(0, 0, 1, 1, 2, 2), rows=400, seed=3, heterogeneous=False)
    pool.episode = __import__("torch").arange(pool.rows) % 16
    cfg = QuantifyConfig(train_samples=300, eval_samples=200, cvae=CVAEConfig(epochs=4))
    labels, info = HetGrouper("meta", cfg, no_structure=mode).propose(pool, StubTrainer(range(6)), 0)
    assert info["p_value"] >= cfg.alpha
    if mode == "keep":
        assert labels is None and "layout kept" in info["note"]
    else:
        assert labels == (0,) * 6
