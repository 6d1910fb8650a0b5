"""The two small protocols through which ``hetero`` talks to environments and trainers.

``hetero`` knows nothing of a particular env or trainer (DESIGN.md): an env adapter that can
evaluate its agents' functions implements :class:`ModelAccess` (model-based quantification,
paper Eq. 4); a trainer that takes a parameter-sharing layout implements :class:`SharingTrainer`
so that HetDPS can drive it.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from hetero.plan import RegroupPlan
from hetero.samples import SamplePool


@runtime_checkable
class ModelAccess(Protocol):
    """Evaluates every agent's core function on the same inputs (model-based, Eq. 4).

    ``kinds`` lists the kinds it can evaluate (a subset of obs, response, effect, objective).
    ``evaluate(kind, pool, rows, ego)`` builds one input x per (row, ego) pair from the pool --
    the global state / actions at that row with the ego slot filled by agent ``ego`` -- and then
    places *every* agent i in that ego slot (its own position, velocity and action set to x's) and
    evaluates agent i's function there. It returns ``x`` [B, Dx] (the CVAE condition) and
    ``y`` [B, N, Dy] (agent i's output at x). Two identical agents give identical y.
    """

    kinds: frozenset[str]

    def evaluate(self, kind: str, pool: SamplePool, rows: Tensor, ego: Tensor) -> tuple[Tensor, Tensor]:
        ...


@runtime_checkable
class SharingTrainer(Protocol):
    """A trainer whose parameter-sharing layout can be read and changed (HetDPS, Sec. 5).

    - ``layout``: agent -> group index (tuple of ints, groups 0..G-1).
    - ``sample_pool()``: recent transitions for quantification.
    - ``policy_distributions(obs)``: obs [B, N, Do] (agent i's policy fed obs[:, i]) -> the
      parameters of pi_i(.|o) as [B, N, Dy] (probabilities for discrete actions, mean and std
      for continuous ones).
    - ``apply_plan(plan)``: change parameters, optimiser state and layout together, atomically.
    """

    @property
    def layout(self) -> tuple[int, ...]:
        ...

    def sample_pool(self) -> SamplePool:
        ...

    def policy_distributions(self, obs: Tensor) -> Tensor:
        ...

    def apply_plan(self, plan: RegroupPlan) -> None:
        ...
