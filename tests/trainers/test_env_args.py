"""--env-args: scenario kwargs reach the env (e.g. BenchMARL's 4-agent balance)."""
import pytest

from marl_backends.envs.registry import parse_env_args
from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.onpolicy import registry_factory


def test_parse_env_args_types_and_errors():
    assert parse_env_args("n_agents=4, mass=2.5,random=true,name=x") == {
        "n_agents": 4, "mass": 2.5, "random": True, "name": "x"}
    assert parse_env_args("") == {}
    with pytest.raises(ValueError, match="key=value"):
        parse_env_args("n_agents")


def test_env_args_set_the_vmas_agent_count():
    cfg = TrainConfig(env="vmas_balance", env_args="n_agents=4", continuous=True, num_envs=2, progress=False)
    assert registry_factory(cfg)(2, 0).spec.n_agents == 4
    assert registry_factory(TrainConfig(env="vmas_balance", continuous=True))(2, 0).spec.n_agents == 3
