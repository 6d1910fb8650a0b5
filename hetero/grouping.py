"""Groups from a distance matrix, and old -> new group matching (paper Sec. 5, App. I, Alg. 1).

``cluster`` runs Affinity Propagation on the similarity -D. AP with the median preference is
scale-free and would split pure noise into clusters, so the clusters must agree with what is
known to be beyond noise: either the per-pair decisions of the structure test
(:mod:`hetero.structure`), or a plain noise floor. ``group(result)`` does the
former for a :class:`~hetero.quantify.HeterogeneityResult`. ``match`` builds the overlap matrix
of old groups and new clusters, pairs them with the Hungarian algorithm (rectangular allowed;
a pair with no agent in common is no match) and returns a :class:`~hetero.plan.RegroupPlan`:
matched clusters keep their network, unmatched new clusters split (copy the best-overlap old
network), unmatched old groups merge into the new cluster they overlap most.

scikit-learn and SciPy are imported inside the functions that use them: together they take
~2 s to import, which every `hetero` command (``--help`` included) would otherwise pay.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from hetero.plan import RegroupPlan

MERGE_MODES = ("majority", "random", "average", "weighted")
SPREAD = 2.0  # (structure-test path) clusters farther apart than this many times the data's noise scale stay apart


@dataclass(frozen=True)
class Clustering:
    """labels: group of each agent (0..G-1, numbered by first appearance); method: how they were
    found ("noise-floor", "affinity-propagation", "hierarchical-fallback"); note: what happened."""

    labels: tuple[int, ...]
    method: str
    note: str = ""
    p_value: float | None = None

    @property
    def n_groups(self) -> int:
        return len(set(self.labels))


def canonical(labels) -> tuple[int, ...]:
    """Renumber labels 0..G-1 in order of first appearance."""
    seen: dict[int, int] = {}
    return tuple(seen.setdefault(int(v), len(seen)) for v in labels)


def _check_matrix(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance matrix must be square [N, N], got shape {d.shape}.")
    if d.shape[0] < 2:
        raise ValueError(f"distance matrix has {d.shape[0]} agent(s); grouping needs at least 2.")
    if not np.isfinite(d).all():
        raise ValueError("distance matrix contains NaN/inf; re-run quantify on a clean sample pool.")
    return 0.5 * (d + d.T)


def _merge_below_floor(d: np.ndarray, labels: np.ndarray, floor: float) -> np.ndarray:
    """Agglomerate clusters while the closest pair's mean inter-cluster distance <= floor."""
    labels = labels.copy()
    while True:
        groups = np.unique(labels)
        if len(groups) < 2:
            return labels
        best, pair = np.inf, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                m = d[np.ix_(labels == groups[a], labels == groups[b])].mean()
                if m < best:
                    best, pair = m, (groups[a], groups[b])
        if best > floor:
            return labels
        labels[labels == pair[1]] = pair[0]


def _net_similarity(s_mat: np.ndarray, pref: float, centers: np.ndarray) -> float:
    """AP's objective: preference per exemplar + similarity of every point to its nearest exemplar."""
    return pref * len(centers) + float(s_mat[:, centers].max(1).sum() - s_mat[centers, centers].sum())


def _refine_exemplars(s_mat: np.ndarray, pref: float, centers: np.ndarray) -> np.ndarray:
    """Greedy add/remove-one-exemplar search on AP's own objective, from AP's solution.

    Message passing can settle in a poor fixed point when similarities tie (exact zeros between
    identical agents): e.g. 3 clean groups at distance ~1.5 returned as 2 for one random_state.
    Each step takes the single exemplar addition or removal that raises the net similarity most.
    """
    centers = np.unique(centers)
    best = _net_similarity(s_mat, pref, centers)
    n = s_mat.shape[0]
    while True:
        cands = [np.append(centers, k) for k in range(n) if k not in set(centers.tolist())]
        if len(centers) > 1:
            cands += [np.delete(centers, i) for i in range(len(centers))]
        scores = [_net_similarity(s_mat, pref, c) for c in cands]
        if not scores or max(scores) <= best + 1e-9:
            return centers
        k = int(np.argmax(scores))
        centers, best = np.unique(cands[k]), scores[k]


def _affinity_propagation(d: np.ndarray, seed: int) -> tuple[np.ndarray | None, str]:
    """AP on -D (median preference) at damping 0.5, 0.7 and 0.9, best net similarity, polished."""
    from sklearn.cluster import AffinityPropagation
    from sklearn.exceptions import ConvergenceWarning

    n = d.shape[0]
    labels, note, best, best_centers = None, "", -np.inf, None
    s_mat = -d
    pref = float(np.median(s_mat))
    for damping in (0.5, 0.7, 0.9):  # AP is a heuristic: keep the run with the best net similarity
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="All samples have mutually equal similarities")
            try:
                ap = AffinityPropagation(affinity="precomputed", damping=damping, preference=pref,
                                         random_state=seed, max_iter=1000, convergence_iter=30).fit(s_mat)
            except ConvergenceWarning:
                note = f"AP did not converge (damping {damping})"
                continue
        centers = ap.cluster_centers_indices_
        if len(centers) == 0 or (ap.labels_ < 0).any():
            continue
        net = pref * len(centers) + s_mat[np.arange(n), centers[ap.labels_]].sum()
        if net > best + 1e-12:
            labels, best, best_centers = ap.labels_, net, centers
    if labels is None:
        return None, note
    centers = _refine_exemplars(s_mat, pref, np.unique(best_centers))
    labels = np.argmax(s_mat[:, centers], axis=1)
    labels[centers] = np.arange(len(centers))  # an exemplar belongs to itself
    return labels, ""


def _split_clusters(d: np.ndarray, labels: np.ndarray, can_join) -> np.ndarray:
    """Split each cluster by average-linkage agglomeration of its members: the closest pair of
    sub-clusters that ``can_join(a, b, mean distance)`` allows joins, until no pair may; the
    sub-clusters left become clusters of their own."""
    out = labels.copy()
    nxt = int(labels.max()) + 1
    for c in np.unique(labels):
        parts = [[i] for i in np.flatnonzero(labels == c)]
        while True:
            best, pair = np.inf, None
            for a in range(len(parts)):
                for b in range(a + 1, len(parts)):
                    m = d[np.ix_(parts[a], parts[b])].mean()
                    if m < best and can_join(parts[a], parts[b], m):
                        best, pair = m, (a, b)
            if pair is None:
                break
            parts[pair[0]] += parts.pop(pair[1])
        for part in parts[1:]:
            out[part] = nxt
            nxt += 1
    return out


def _split_differing(d: np.ndarray, labels: np.ndarray, differ: np.ndarray) -> np.ndarray:
    """Split every cluster holding a pair that differs: its sub-clusters never join across a
    differing pair."""
    return _split_clusters(d, labels, lambda a, b, m: not differ[np.ix_(a, b)].any())


def noise_scale(d: np.ndarray) -> float:
    """The matrix's own scale of "alike": the median over agents of the distance to the nearest
    other agent (every agent of a group of two or more has an alike neighbour, so this is a
    within-group distance unless most agents are singletons)."""
    return float(np.median((d + np.diag(np.full(d.shape[0], np.inf))).min(1)))


def _split_spread(d: np.ndarray, labels: np.ndarray, limit: float) -> np.ndarray:
    """Split clusters that hold sub-clusters farther apart than ``limit`` (mean distance).

    Affinity Propagation's median preference under-splits when there are many groups at unequal
    distances (pms_15a_5c: two colours at mean distance 1.1 in one cluster, within-colour 0.3),
    and the swap test may lack the power to split them; the matrix does not."""
    return _split_clusters(d, labels, lambda a, b, m: m <= limit)


def _merge_alike(d: np.ndarray, labels: np.ndarray, test) -> np.ndarray:
    """Merge clusters the structure test cannot tell apart *and* the matrix does not separate.

    The test alone lacks power on some pairs (e.g. PMS colours: the W2 matrix separates them by
    10x while a held-out swap is noisy across episodes), so two clusters merge only when their
    pooled between-group p-value is >= alpha and their mean distance is at most ``SPREAD`` times
    the largest distance between agents the clustering put together (the data's own noise
    scale; an over-split group's halves sit about as far apart as its members). The pair with
    the largest p-value merges first.
    """
    labels = labels.copy()
    while True:
        groups = np.unique(labels)
        same = labels[:, None] == labels[None, :]
        floor = float(d[same].max())  # 0 when every cluster is a singleton
        best, pair = -1.0, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                ia, ib = np.flatnonzero(labels == groups[a]), np.flatnonzero(labels == groups[b])
                if d[np.ix_(ia, ib)].mean() > SPREAD * floor:
                    continue
                p = test.between(ia, ib)
                if p > best:
                    best, pair = p, (groups[a], groups[b])
        if pair is None or best < test.alpha:
            return labels
        labels[labels == pair[1]] = pair[0]


def cluster(d: np.ndarray, noise_floor: float = 0.0, seed: int = 0, test=None) -> Clustering:
    """Group agents from a distance matrix, knowing what is beyond noise (Alg. 1, line 11).

    Affinity Propagation on -D (median preference) at damping 0.5, 0.7 and 0.9, keeping the
    converged run with the best net similarity (AP's own objective; one run can stall in a poor
    solution on tied distances, e.g. exact zeros between identical agents), polished by a greedy
    add/remove-one-exemplar search on that objective; average-linkage clustering if no run
    converges. Then the clusters are made to agree with the evidence:

    - ``test`` (a :class:`~hetero.structure.StructureTest`): one group when no pair differs;
      otherwise a cluster holding a pair that differs is split (average linkage that never joins
      a differing pair), so is a cluster holding sub-clusters more than ``SPREAD`` (2) times the
      :func:`noise_scale` apart; then clusters are merged while the test cannot tell them apart
      (between-group p >= alpha) and their mean distance is within ``SPREAD`` times the
      largest distance between agents already grouped together.
    - else ``noise_floor``: one group when no distance exceeds it; clusters whose mean distance
      does not exceed it are merged.
    Never raises on a valid matrix.
    """
    d = _check_matrix(d)
    n = d.shape[0]
    off = d[~np.eye(n, dtype=bool)]
    differ = None
    if test is not None:
        differ = np.asarray(test.differ, dtype=bool)
        if differ.shape != d.shape:
            raise ValueError(f"the structure test covers {differ.shape[0]} agents; the matrix has {n}.")
        differ = (differ | differ.T) & ~np.eye(n, dtype=bool)
        if not differ.any():
            return Clustering((0,) * n, "structure-test", "no pair of agents differs beyond noise")
    elif off.max() <= noise_floor:
        return Clustering((0,) * n, "noise-floor", f"all distances <= noise floor {noise_floor:.4g}")
    labels, note = _affinity_propagation(d, seed)
    method = "affinity-propagation"
    if labels is None:
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import squareform

        method = "hierarchical-fallback"
        z = linkage(squareform(d, checks=False), method="average")
        labels = fcluster(z, t=max(noise_floor if differ is None else float(np.median(off)), 1e-12),
                          criterion="distance")
        note += "; used average-linkage clustering"
    labels = np.asarray(labels)
    if differ is not None:
        split = _split_spread(d, _split_differing(d, labels, differ), SPREAD * noise_scale(d))
        merged = _merge_alike(d, split, test)
        if len(np.unique(split)) > len(np.unique(labels)):
            note = (note + "; " if note else "") + "split clusters holding agents that differ or sit far apart"
    else:
        merged = _merge_below_floor(d, labels, noise_floor)
    if len(np.unique(merged)) < len(np.unique(labels)):
        note = (note + "; " if note else "") + "merged clusters not told apart by the " + (
            "structure test" if differ is not None else "noise floor")
    return Clustering(canonical(merged), method, note)


def group(result, seed: int = 0) -> Clustering:
    """Groups of a :class:`~hetero.quantify.HeterogeneityResult`: its matrix clustered with its
    structure test (or its noise floor when it has no test); carries the test's p-value."""
    c = cluster(result.matrix, result.noise_floor, seed=seed, test=getattr(result, "test", None))
    return Clustering(c.labels, c.method, c.note, getattr(result, "p_value", None))


def group_stats(d: np.ndarray, labels) -> dict:
    """Mean within-group and between-group distance and their ratio (inf when within is 0)."""
    d = np.asarray(d, dtype=np.float64)
    lab = np.asarray(labels)
    same = lab[:, None] == lab[None, :]
    off = ~np.eye(len(lab), dtype=bool)
    within = float(d[same & off].mean()) if (same & off).any() else 0.0
    between = float(d[~same].mean()) if (~same).any() else 0.0
    ratio = between / within if within > 0 else (np.inf if between > 0 else 1.0)
    return {"within": within, "between": between, "ratio": ratio}


def match(old_layout, new_labels, merge: str = "majority", seed: int = 0) -> RegroupPlan:
    """Turn a new clustering into a RegroupPlan against the current layout (Alg. 1, lines 16-24).

    Args:
        old_layout: current agent -> group (network) index.
        new_labels: new cluster of each agent (any integers).
        merge: how a new cluster that several old networks flow into gets its parameters:
            "majority" (the network holding most of its agents), "random" (one of them, seeded),
            "average" (parameter mean) or "weighted" (mean weighted by agent counts).
        seed: for the random merge mode.
    """
    if merge not in MERGE_MODES:
        raise ValueError(f"unknown merge mode {merge!r}; choose one of {', '.join(MERGE_MODES)}.")
    from scipy.optimize import linear_sum_assignment

    old = np.asarray(canonical(old_layout))
    new = np.asarray(canonical(new_labels))
    if len(old) != len(new):
        raise ValueError(f"old layout has {len(old)} agents but new labels have {len(new)}.")
    from scipy.optimize import linear_sum_assignment

    g_old, g_new = old.max() + 1, new.max() + 1
    overlap = np.zeros((g_new, g_old), dtype=np.int64)
    np.add.at(overlap, (new, old), 1)
    rows, cols = linear_sum_assignment(-overlap)
    # a pair with no agent in common is no match: its new cluster splits, its old network merges
    matched_old = {int(r): int(c) for r, c in zip(rows, cols) if overlap[r, c] > 0}
    sources: list[list[int]] = [[matched_old[a]] if a in matched_old else [] for a in range(g_new)]
    # each unmatched old network flows into the new cluster holding most of its agents
    for b in sorted(set(range(g_old)) - set(matched_old.values())):
        sources[int(np.argmax(overlap[:, b]))].append(b)
    actions = []
    for a in range(g_new):
        if not sources[a]:  # unmatched and nothing flows in: copy the old network it overlaps most
            sources[a] = [int(np.argmax(overlap[a]))]
            actions.append("split")
        else:
            actions.append("merge" if len(sources[a]) > 1 else "keep")
    rng = np.random.default_rng(seed)
    weights: list[tuple[float, ...]] = []
    for a in range(g_new):
        src = sources[a]
        if len(src) == 1:
            weights.append((1.0,))
            continue
        counts = overlap[a, src].astype(np.float64)
        if merge == "majority":
            w = np.eye(len(src))[int(np.argmax(counts))]
        elif merge == "random":
            w = np.eye(len(src))[int(rng.integers(len(src)))]
        elif merge == "average":
            w = np.full(len(src), 1.0 / len(src))
        else:
            w = counts / counts.sum()
        weights.append(tuple(float(v) for v in w))
    return RegroupPlan(
        layout=tuple(int(v) for v in new),
        sources=tuple(tuple(s) for s in sources),
        weights=tuple(weights),
        actions=tuple(actions),
        old_layout=tuple(int(v) for v in old),
    )
