"""RegroupPlan: how a parameter-sharing layout changes (paper Sec. 5, App. I, Algorithm 1).

The plan is pure data. A trainer applies it atomically: new group ``g``'s parameters (and its
optimiser state) become ``sum_k weights[g][k] * old[sources[g][k]]``, and the agent -> group
layout becomes ``layout``. A relabel or a split has one source with weight 1 (a copy); a merge
has several sources mixed by the merge mode (majority / random: one-hot; average: uniform;
weighted: proportional to each old group's agent count).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegroupPlan:
    """Attributes:
        layout: new agent -> group index, groups numbered 0..G'-1.
        sources: for each new group, the old group indices its parameters come from.
        weights: for each new group, the mixing weight of each source (sums to 1).
        actions: for each new group, "keep" | "split" | "merge" | "new" (for the log).
        old_layout: the layout the plan was made against (checked when it is applied).
    """

    layout: tuple[int, ...]
    sources: tuple[tuple[int, ...], ...]
    weights: tuple[tuple[float, ...], ...]
    actions: tuple[str, ...]
    old_layout: tuple[int, ...]

    def __post_init__(self) -> None:
        g = len(self.sources)
        if sorted(set(self.layout)) != list(range(g)):
            raise ValueError(
                f"RegroupPlan.layout uses groups {sorted(set(self.layout))}; expected every group "
                f"0..{g - 1} (one per entry of sources) to have at least one agent."
            )
        if len(self.weights) != g or len(self.actions) != g:
            raise ValueError("RegroupPlan.sources, weights and actions must have one entry per new group.")
        n_old = max(self.old_layout) + 1
        for k, (src, w) in enumerate(zip(self.sources, self.weights)):
            if len(src) == 0 or len(src) != len(w):
                raise ValueError(f"RegroupPlan group {k}: sources {src} and weights {w} must be non-empty and equal length.")
            if any(not 0 <= s < n_old for s in src):
                raise ValueError(f"RegroupPlan group {k}: source {src} outside old groups 0..{n_old - 1}.")
            if abs(sum(w) - 1.0) > 1e-6:
                raise ValueError(f"RegroupPlan group {k}: weights {w} must sum to 1.")
        if len(self.layout) != len(self.old_layout):
            raise ValueError(
                f"RegroupPlan.layout has {len(self.layout)} agents but old_layout has {len(self.old_layout)}."
            )

    @property
    def n_groups(self) -> int:
        return len(self.sources)

    @staticmethod
    def identity(layout: tuple[int, ...]) -> "RegroupPlan":
        """The plan that changes nothing."""
        g = max(layout) + 1
        return RegroupPlan(
            layout=tuple(layout),
            sources=tuple((k,) for k in range(g)),
            weights=tuple((1.0,) for _ in range(g)),
            actions=("keep",) * g,
            old_layout=tuple(layout),
        )

    def to_dict(self) -> dict:
        return {
            "layout": list(self.layout),
            "sources": [list(s) for s in self.sources],
            "weights": [list(w) for w in self.weights],
            "actions": list(self.actions),
            "old_layout": list(self.old_layout),
        }
