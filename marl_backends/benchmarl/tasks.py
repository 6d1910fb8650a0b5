"""Our VMAS scenarios as BenchMARL tasks (through BenchMARL's own VMAS task interface).

``pms_task("15a_3c")`` is PMS with 15 agents in 3 colours (each colour has its own landmark:
clear roles that one shared network must infer from the observation). It runs in BenchMARL's
``VmasClass`` unchanged except that the scenario is our :class:`PmsScenario` instance instead of
a VMAS built-in's name; all agents form BenchMARL's single group ``"agents"`` in index order,
so agent ``i`` of HetDPS is PMS agent ``i`` (colour ``pms_colours(task)[i]``).
"""
from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence

from benchmarl.environments.vmas.common import VmasClass
from torchrl.envs import EnvBase
from torchrl.envs.libs.vmas import VmasEnv

from marl_backends.envs.pms import PMS_TASKS, PmsScenario


class PmsTask(VmasClass):
    """BenchMARL task class for PMS (config: ``groups``, ``shuffle``, ``max_steps``)."""

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: Optional[int],
                    device) -> Callable[[], EnvBase]:  # noqa: ANN001
        config = copy.deepcopy(self.config)
        return lambda: VmasEnv(scenario=PmsScenario(), num_envs=num_envs, continuous_actions=continuous_actions,
                               seed=seed, device=device, categorical_actions=True, clamp_actions=True, **config)


def pms_groups(task: str | Sequence[int]) -> tuple[int, ...]:
    """Agents per colour: a registered task name (``"15a_3c"``) or the sizes themselves (``(3, 3)``)."""
    if isinstance(task, str):
        if task not in PMS_TASKS:
            raise ValueError(f"unknown PMS task {task!r}; choose one of {', '.join(PMS_TASKS)} or give sizes, e.g. (3, 3).")
        return tuple(PMS_TASKS[task])
    sizes = tuple(int(s) for s in task)
    if len(sizes) < 1 or min(sizes) < 1:
        raise ValueError(f"PMS colour sizes {task!r} must be positive agent counts, e.g. (3, 3).")
    return sizes


def pms_task(task: str | Sequence[int] = "15a_3c", max_steps: int = 50, shuffle: bool = False) -> PmsTask:
    """The BenchMARL task for ``pms_<task>`` (e.g. 15a_3c: 3 colours x 5 agents, 50-step episodes),
    or for colour sizes given directly (``pms_task((3, 3))``: 2 colours x 3 agents)."""
    sizes = pms_groups(task)
    name = task if isinstance(task, str) else f"{sum(sizes)}a_{len(sizes)}c"
    return PmsTask(name=f"pms_{name}", config={"groups": sizes, "shuffle": shuffle, "max_steps": max_steps})


def pms_colours(task: str | Sequence[int] = "15a_3c") -> tuple[int, ...]:
    """Ground-truth colour of every agent, in BenchMARL's agent order."""
    return tuple(g for g, size in enumerate(pms_groups(task)) for _ in range(size))
