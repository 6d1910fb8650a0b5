"""Parameter-sharing layouts: which group's parameters each agent uses.

NPS (no sharing), FPS (full sharing), FPS+id (full sharing with a one-hot agent id appended to
the observation) and static ParPS groups are the *same* grouped network with different layouts
(DESIGN.md, Trainers). The layout can change at run time (HetDPS applies a ``RegroupPlan``).
"""
from __future__ import annotations

from dataclasses import dataclass

SHARING_HELP = (
    "nps (one group per agent) | fps (one shared group) | fps-id (one shared group, one-hot agent id "
    "appended to the observation) | groups:0,0,1,1,... (static ParPS, one label per agent) | "
    "groups:env (the env's ground-truth agent types, e.g. PMS colours) | hetdps[:INIT] (regrouped online by "
    "HetDPS, starting from INIT, one of the above; default fps)"
)


@dataclass(frozen=True)
class Sharing:
    """A parameter-sharing layout.

    Attributes:
        name: the string it was parsed from (e.g. ``"groups:0,0,1"``).
        layout: agent -> group index, groups numbered 0..G-1.
        append_id: True for FPS+id: a one-hot agent id is appended to every observation.
    """

    name: str
    layout: tuple[int, ...]
    append_id: bool = False

    @property
    def n_groups(self) -> int:
        return max(self.layout) + 1

    @property
    def n_agents(self) -> int:
        return len(self.layout)


def canonical_layout(labels: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Relabel groups 0..G-1 in order of first appearance (``(2, 2, 0)`` -> ``(0, 0, 1)``)."""
    seen: dict[int, int] = {}
    return tuple(seen.setdefault(int(x), len(seen)) for x in labels)


def check_layout(layout: tuple[int, ...] | list[int], n_agents: int | None = None) -> tuple[int, ...]:
    """Validate that ``layout`` names groups 0..G-1, each with at least one agent."""
    layout = tuple(int(x) for x in layout)
    if not layout:
        raise ValueError("layout is empty; give one group index per agent.")
    if n_agents is not None and len(layout) != n_agents:
        raise ValueError(f"layout {layout} has {len(layout)} entries but there are {n_agents} agents; give one group per agent.")
    if sorted(set(layout)) != list(range(max(layout) + 1)):
        raise ValueError(
            f"layout {layout} must use every group 0..{max(layout)} (no gaps, no negatives); "
            f"e.g. {canonical_layout(layout)}."
        )
    return layout


def parse_sharing(sharing: str, n_agents: int, env_groups: tuple[int, ...] | None = None) -> Sharing:
    """Parse a ``--sharing`` string into a :class:`Sharing`.

    Raises a ValueError naming the bad string and listing the accepted forms.
    """
    s = sharing.strip().lower()
    if s.startswith("hetdps"):  # dynamic: the initial layout; HetDPS changes it at run time
        init = s[len("hetdps"):].lstrip(":") or "fps"
        if init.startswith("hetdps"):
            raise ValueError(f"--sharing {sharing!r}: the initial layout of hetdps cannot itself be hetdps.")
        try:
            inner = parse_sharing(init, n_agents, env_groups)
        except ValueError as e:
            raise ValueError(f"--sharing {sharing!r}, initial layout of HetDPS: {e}") from None
        return Sharing(sharing, inner.layout, inner.append_id)
    if s == "nps":
        return Sharing(sharing, tuple(range(n_agents)))
    if s == "fps":
        return Sharing(sharing, (0,) * n_agents)
    if s in ("fps-id", "fps+id", "fpsid"):
        return Sharing(sharing, (0,) * n_agents, append_id=True)
    if s.startswith("groups:"):
        body = s[len("groups:"):]
        if body in ("env", "true"):
            if env_groups is None:
                raise ValueError(
                    f"--sharing {sharing!r}: this env does not know its agents' true groups; "
                    "give them explicitly, e.g. groups:0,0,1,1."
                )
            return Sharing(sharing, canonical_layout(env_groups))
        try:
            labels = [int(x) for x in body.split(",") if x.strip() != ""]
        except ValueError:
            raise ValueError(
                f"--sharing {sharing!r}: group labels must be comma-separated integers, e.g. "
                f"groups:{','.join(['0'] * max(1, n_agents // 2) + ['1'] * (n_agents - max(1, n_agents // 2)))}."
            ) from None
        if len(labels) != n_agents:
            raise ValueError(
                f"--sharing {sharing!r} gives {len(labels)} group labels but the env has {n_agents} agents; "
                "give exactly one label per agent."
            )
        if any(x < 0 for x in labels):
            raise ValueError(f"--sharing {sharing!r}: group labels must be non-negative integers.")
        return Sharing(sharing, canonical_layout(labels))
    raise ValueError(f"unknown --sharing {sharing!r}; expected {SHARING_HELP}.")
