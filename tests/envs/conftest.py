"""Shared fixtures for the env tests: one thread (shared 2-core machine), small batches."""
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def pools():
    """name -> (env, pool) for the envs whose model the tests check, collected once."""
    from marl_backends.envs import collect_pool, make_env

    cache = {}

    def get(name: str, continuous: bool = False):
        key = (name, continuous)
        if key not in cache:
            env = make_env(name, num_envs=8, seed=3, continuous=continuous)
            cache[key] = (env, collect_pool(env, 50, noise=0.3, seed=3, progress=False))
        return cache[key]

    return get
