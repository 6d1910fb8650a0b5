"""Affinity Propagation with a noise floor, and the old -> new matcher (RegroupPlan)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetero.grouping import canonical, cluster, group_stats, match
from hetero.plan import RegroupPlan


def _block_matrix(sizes, between=5.0, within=0.3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    n = len(labels)
    d = np.where(labels[:, None] == labels[None, :], within, between) + rng.uniform(0, 0.1, (n, n))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0)
    return d, tuple(labels)


@pytest.mark.parametrize("sizes", [(5, 5, 5), (3, 3, 3, 12, 9), (10, 10, 10), (2, 2)])
def test_cluster_recovers_blocks(sizes):
    d, labels = _block_matrix(sizes)
    c = cluster(d, noise_floor=0.5)
    assert c.labels == canonical(labels)


def test_homogeneous_noise_gives_one_group():
    rng = np.random.default_rng(1)
    d = rng.uniform(1.0, 2.0, (12, 12))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0)
    assert cluster(d, noise_floor=0.0).n_groups > 1  # AP alone splits noise ...
    c = cluster(d, noise_floor=2.0)  # ... the floor says it is noise
    assert c.labels == (0,) * 12


def test_exact_zero_matrix_is_one_group():
    assert cluster(np.zeros((4, 4)), noise_floor=1e-6).labels == (0, 0, 0, 0)


def test_degenerate_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="at least 2"):
        cluster(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="NaN"):
        cluster(np.array([[0, np.nan], [np.nan, 0]]))
    with pytest.raises(ValueError, match="square"):
        cluster(np.zeros((2, 3)))


def test_ap_nonconvergence_falls_back_without_crashing(monkeypatch):
    import sklearn.cluster as g
    from sklearn.exceptions import ConvergenceWarning
    import warnings

    class NeverConverges:
        def __init__(self, **kw):
            pass

        def fit(self, s):
            warnings.warn("no", ConvergenceWarning)

    monkeypatch.setattr("sklearn.cluster.AffinityPropagation", NeverConverges)  # imported lazily by cluster()
    d, labels = _block_matrix((4, 4))
    c = cluster(d, noise_floor=1.0)
    assert c.method == "hierarchical-fallback" and "did not converge" in c.note
    assert c.labels == canonical(labels)


def test_group_stats():
    d, labels = _block_matrix((3, 3), between=4.0, within=1.0)
    s = group_stats(d, labels)
    assert 3.5 < s["ratio"] < 4.5


# ---- matcher -------------------------------------------------------------------------------

def test_same_count_relabels():
    plan = match((0, 0, 1, 1), (1, 1, 0, 0))
    assert plan.layout == (0, 0, 1, 1)
    assert plan.sources == ((0,), (1,)) and plan.actions == ("keep", "keep")


def test_permuted_labels_follow_the_networks():
    plan = match((0, 0, 1, 1, 2, 2), (2, 2, 0, 0, 1, 1))
    assert plan.sources == ((0,), (1,), (2,))


def test_split_copies_best_overlap_network():
    plan = match((0, 0, 0, 0, 1, 1), (0, 0, 1, 1, 2, 2))
    assert plan.layout == (0, 0, 1, 1, 2, 2)
    assert plan.actions.count("split") == 1
    split = plan.actions.index("split")
    assert plan.sources[split] == (0,) and plan.weights[split] == (1.0,)


def test_nps_to_groups_is_a_merge():
    plan = match((0, 1, 2, 3, 4, 5), (0, 0, 0, 1, 1, 1), merge="average")
    assert plan.layout == (0, 0, 0, 1, 1, 1)
    assert plan.actions == ("merge", "merge")
    assert sorted(plan.sources[0]) == [0, 1, 2] and sorted(plan.sources[1]) == [3, 4, 5]
    assert all(abs(w - 1 / 3) < 1e-12 for w in plan.weights[0])


@pytest.mark.parametrize("mode", ["majority", "random", "average", "weighted"])
def test_every_merge_mode(mode):
    plan = match((0, 0, 0, 1, 2, 2), (0, 0, 0, 0, 0, 0), merge=mode, seed=3)
    (src,), (w,) = plan.sources, plan.weights
    assert sorted(src) == [0, 1, 2] and abs(sum(w) - 1) < 1e-9
    by = dict(zip(src, w))
    if mode == "majority":
        assert by[0] == 1.0
    elif mode == "random":
        assert sorted(w) == [0.0, 0.0, 1.0]
    elif mode == "average":
        assert all(abs(v - 1 / 3) < 1e-12 for v in w)
    else:
        assert by == pytest.approx({0: 0.5, 1: 1 / 6, 2: 1 / 3})


def test_rectangular_merge_and_split_mixed_counts():
    plan = match((0, 0, 1, 1, 2, 2), (0, 0, 0, 0, 1, 1))  # 3 -> 2
    assert plan.n_groups == 2 and "merge" in plan.actions
    plan = match((0, 0, 0, 0, 0, 0), (0, 1, 2, 3, 4, 5))  # FPS -> NPS: everyone copies net 0
    assert plan.sources == ((0,),) * 6 and plan.actions.count("split") == 5


def test_unknown_merge_mode_and_length_mismatch():
    with pytest.raises(ValueError, match="merge mode"):
        match((0, 1), (0, 1), merge="median")
    with pytest.raises(ValueError, match="agents"):
        match((0, 1, 1), (0, 1))


def test_zero_overlap_pairs_are_not_matches():
    # main matched new {5} to old network 1 (agents 2, 3) with no agent in common, and never merged 1
    plan = match((0, 0, 1, 1, 2, 2), (0, 0, 0, 0, 1, 2))
    assert plan.layout == (0, 0, 0, 0, 1, 2)
    assert sorted(plan.sources[0]) == [0, 1] and plan.actions[0] == "merge"
    assert plan.sources[1] == (2,) and plan.sources[2] == (2,)
    assert sorted(plan.actions[1:]) == ["keep", "split"]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_match_plan_is_always_valid(data):
    n = data.draw(st.integers(2, 12))
    old = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    new = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    mode = data.draw(st.sampled_from(["majority", "random", "average", "weighted"]))
    plan = match(old, new, merge=mode)
    assert isinstance(plan, RegroupPlan)
    # the new layout is the new clustering, up to renaming
    assert canonical(plan.layout) == canonical(new)
    # every old network is used by some new group (nothing silently dropped) when merging
    if len(set(new)) <= len(set(old)):
        used = {s for src in plan.sources for s in src}
        assert used == set(range(len(set(old))))
    # every network a new group takes parameters from trained at least one of its agents
    old_c = np.asarray(canonical(old))
    for g, src in enumerate(plan.sources):
        members = np.asarray(plan.layout) == g
        assert all((old_c[members] == s).any() for s in src), (old, new, plan)


# Meta-Het matrix of pms_15a_5c seed 2 (3 agents per colour), rounded: colours 0 and 1 sit at ~1.1,
# colour 4 at ~1.8 from both, within-colour ~0.3. AP's median preference puts colours 0 and 1 in one
# cluster and the swap test cannot tell 0, 1 and 4 apart; before the spread split the result was
# three groups (0+1+4 merged).
PMS_5C_SEED2 = np.array([
    [0, .48, .29, 1.17, 1.06, 1.28, 3.09, 3.26, 3.04, 3.06, 2.97, 2.94, 1.81, 1.87, 1.78],
    [.48, 0, .5, 1.12, 1.02, 1.24, 3.05, 3.22, 2.98, 2.99, 2.89, 2.87, 1.77, 1.85, 1.75],
    [.29, .5, 0, 1.04, .97, 1.17, 3.07, 3.24, 3.02, 3.04, 2.96, 2.92, 1.84, 1.89, 1.81],
    [1.17, 1.12, 1.04, 0, .28, .31, 2.59, 2.73, 2.47, 3.1, 3.1, 3.0, 2.52, 2.55, 2.54],
    [1.06, 1.02, .97, .28, 0, .32, 2.62, 2.77, 2.52, 3.03, 3.03, 2.93, 2.45, 2.48, 2.47],
    [1.28, 1.24, 1.17, .31, .32, 0, 2.5, 2.65, 2.4, 2.94, 2.95, 2.84, 2.5, 2.53, 2.53],
    [3.09, 3.05, 3.07, 2.59, 2.62, 2.5, 0, .28, .38, 2.84, 2.93, 2.89, 3.39, 3.38, 3.46],
    [3.26, 3.22, 3.24, 2.73, 2.77, 2.65, .28, 0, .43, 3.0, 3.1, 3.06, 3.54, 3.52, 3.6],
    [3.04, 2.98, 3.02, 2.47, 2.52, 2.4, .38, .43, 0, 3.02, 3.1, 3.05, 3.46, 3.46, 3.52],
    [3.06, 2.99, 3.04, 3.1, 3.03, 2.94, 2.84, 3.0, 3.02, 0, .32, .22, 1.89, 1.82, 2.04],
    [2.97, 2.89, 2.96, 3.1, 3.03, 2.95, 2.93, 3.1, 3.1, .32, 0, .3, 1.75, 1.68, 1.9],
    [2.94, 2.87, 2.92, 3.0, 2.93, 2.84, 2.89, 3.06, 3.05, .22, .3, 0, 1.79, 1.7, 1.92],
    [1.81, 1.77, 1.84, 2.52, 2.45, 2.5, 3.39, 3.54, 3.46, 1.89, 1.75, 1.79, 0, .24, .25],
    [1.87, 1.85, 1.89, 2.55, 2.48, 2.53, 3.38, 3.52, 3.46, 1.82, 1.68, 1.7, .24, 0, .33],
    [1.78, 1.75, 1.81, 2.54, 2.47, 2.53, 3.46, 3.6, 3.52, 2.04, 1.9, 1.92, .25, .33, 0]])


def test_clusters_the_matrix_separates_are_split_even_when_the_test_cannot():
    from hetero.grouping import noise_scale
    from hetero.structure import model_based_test

    colours = np.repeat(np.arange(5), 3)
    weak = np.isin(colours, (0, 1, 4))
    # the test sees colours 2 and 3 against everyone, but not 0 / 1 / 4 against each other
    alike = (weak[:, None] & weak[None, :]) | (colours[:, None] == colours[None, :])
    se = np.where(alike, PMS_5C_SEED2 / 1.5 + 1e-9, 1e-3)
    test = model_based_test(PMS_5C_SEED2, se, alpha=0.01)
    assert test.differ[0, 6] and not test.differ[0, 3] and not test.differ[0, 12]
    assert 0.2 < noise_scale(PMS_5C_SEED2) < 0.35  # the within-colour distances
    c = cluster(PMS_5C_SEED2, test=test, seed=2)
    assert c.labels == canonical(colours), c
    # and agents the matrix does not separate stay merged when the test cannot tell them apart
    flat = np.where(weak[:, None] & weak[None, :], 0.3, PMS_5C_SEED2)
    np.fill_diagonal(flat, 0)
    c = cluster(flat, test=model_based_test(flat, np.where(alike, 1.0, 1e-3), 0.01), seed=2)
    assert c.n_groups == 3 and len(set(np.asarray(c.labels)[weak])) == 1, c
