"""Vectorised multi-agent environments: PMS, the spread case study and VMAS built-ins."""
from marl_backends.envs.base import EnvSpec, Observation, StepResult, VecMultiAgentEnv
from marl_backends.envs.model import LandmarkModel
from marl_backends.envs.registry import list_envs, make_env, register
from marl_backends.envs.sampling import collect_pool
from marl_backends.envs.vmas_env import VmasEnv

__all__ = [
    "EnvSpec", "Observation", "StepResult", "VecMultiAgentEnv", "LandmarkModel", "VmasEnv",
    "collect_pool", "list_envs", "make_env", "register",
]
