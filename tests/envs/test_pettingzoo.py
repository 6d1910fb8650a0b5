"""PettingZoo ParallelEnv adapter: padding, masks, deaths, auto-reset, and quantify through make_env."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from marl_backends.envs import make_env
from marl_backends.envs.pettingzoo import PettingZooEnv
from marl_backends.envs.sampling import collect_pool

HAS_MPE2 = importlib.util.find_spec("mpe2") is not None


class TwoRoles:
    """A tiny ParallelEnv written the PettingZoo way (no pettingzoo import needed): a scout (obs 3,
    actions 2) and two workers (obs 2, actions 4); worker_1 leaves at step 2; episodes of 4 steps."""

    metadata = {"name": "two_roles"}

    def __init__(self, horizon: int = 4):
        self.possible_agents = ["scout_0", "worker_0", "worker_1"]
        self.horizon = horizon

    def observation_space(self, a):
        return spaces.Box(-10, 10, (3,) if a.startswith("scout") else (2,), np.float32)

    def action_space(self, a):
        return spaces.Discrete(2 if a.startswith("scout") else 4)

    def _obs(self):
        return {a: np.full(self.observation_space(a).shape, self.t + 10 * i, np.float32)
                for i, a in enumerate(self.possible_agents) if a in self.agents}

    def reset(self, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents)
        for a, x in actions.items():
            assert self.action_space(a).contains(int(x)), (a, x)
        self.t += 1
        rew = {a: float(actions[a]) for a in self.agents}
        if self.t == 2 and "worker_1" in self.agents:
            self.agents.remove("worker_1")
            term = {a: a == "worker_1" for a in self.possible_agents if a in rew}
        else:
            term = {a: False for a in rew}
        trunc = {a: self.t >= self.horizon for a in rew}
        obs = self._obs()
        if self.t >= self.horizon:
            self.agents = []
        return obs, rew, term, trunc, {a: {} for a in rew}

    def close(self):
        pass


def test_unequal_spaces_are_padded_with_masks():
    env = PettingZooEnv(TwoRoles, num_envs=3, name="two_roles")
    s = env.spec
    assert (s.n_agents, s.obs_dim, s.action_dim, s.discrete, s.max_steps) == (3, 3, 4, True, 100)
    assert s.obs_dims == (3, 2, 2) and s.groups == (0, 1, 1) and s.state_dim == 9
    o = env.reset(seed=0)
    assert o.obs.shape == (3, 3, 3) and (o.obs[:, 1:, 2] == 0).all()  # workers' padding
    assert o.avail_actions[0].tolist() == [[True, True, False, False], [True] * 4, [True] * 4]
    with pytest.raises(ValueError, match="action 3 is unavailable"):
        env.step(torch.tensor([[3, 0, 0]] * 3))


def test_deaths_and_auto_reset():
    env = PettingZooEnv(TwoRoles, num_envs=2, name="two_roles")
    env.reset(seed=0)
    a = torch.tensor([[1, 3, 2], [0, 1, 1]])
    r1 = env.step(a)
    assert r1.reward.tolist() == [[1, 3, 2], [0, 1, 1]] and r1.obs.alive is None
    r2 = env.step(a)  # worker_1 leaves: dead in next, its reward 0 from now on
    assert r2.next.alive[:, 2].tolist() == [False, False] and (r2.next.obs[:, 2] == 0).all()
    r3 = env.step(a)  # a dead agent's action is not passed to the env
    assert r3.reward[:, 2].tolist() == [0, 0]
    r4 = env.step(a)
    assert r4.truncated.all() and not r4.terminated.any()
    assert (r4.next.obs[:, 0, 0] == 4).all() and (r4.obs.obs[:, 0, 0] == 0).all()  # final obs kept, then reset
    assert r4.obs.alive is None  # everyone back after the reset


def test_collect_pool_marks_dead_agents_invalid():
    env = PettingZooEnv(TwoRoles, num_envs=4, name="two_roles")
    pool = collect_pool(env, steps=8, behaviour="random", progress=False)
    assert pool.rows == 32 and pool.action.shape == (32, 3, 4)
    assert pool.valid[:, :2].all() and not pool.valid[:, 2].all()
    assert pool.action[:, 0, 2:].sum() == 0  # the scout never takes a padded action


def test_bad_spec_strings_say_what_to_write():
    with pytest.raises(ValueError, match="pettingzoo:<module>:<env_fn>"):
        make_env("pettingzoo:mpe2.simple_tag_v3")
    with pytest.raises(ValueError, match="cannot import"):
        make_env("pettingzoo:no_such_module_xyz:parallel_env")


class TurnBased(TwoRoles):
    """The AEC shape of TwoRoles (agents act in turn): reset returns None, ``last`` / ``agent_iter``."""

    def reset(self, seed=None, options=None):
        super().reset(seed, options)

    def last(self):
        return None

    def agent_iter(self):
        return iter(self.agents)


def test_an_aec_env_is_refused_with_the_parallel_hint():
    with pytest.raises(ValueError, match=r"a PettingZoo AEC env .*conversions\.aec_to_parallel"):
        PettingZooEnv(TurnBased, num_envs=2, name="turn_based")


@pytest.mark.skipif(not HAS_MPE2, reason="mpe2 not installed (extra: pettingzoo)")
def test_an_aec_constructor_is_refused_naming_the_parallel_one(capsys, tmp_path):
    from hetero.cli import main

    with pytest.raises(ValueError, match=r"AEC env .* Use --env pettingzoo:mpe2\.simple_push_v3:parallel_env, or wrap "
                                         r"your AEC env with pettingzoo\.utils\.conversions\.aec_to_parallel"):
        make_env("pettingzoo:mpe2.simple_push_v3:env", num_envs=2)
    assert main(["quantify", "--env", "pettingzoo:mpe2.simple_push_v3:env", "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "parallel_env" in err and "Traceback" not in err


@pytest.mark.skipif(not HAS_MPE2, reason="mpe2 not installed (extra: pettingzoo)")
def test_quantify_cli_on_an_mpe2_task_with_roles(tmp_path):
    from hetero.cli import main

    out = tmp_path / "q"
    assert main(["quantify", "--env", "pettingzoo:mpe2.simple_tag_v3:parallel_env", "--kind", "meta",
                 "--samples", "200", "--train-samples", "300", "--eval-samples", "150", "--epochs", "2",
                 "--quiet", "--no-plots", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kinds"]["meta"]["mode"] == "model-free" and len(summary["kinds"]["meta"]["groups"]) == 4
    env = make_env("pettingzoo:mpe2.simple_tag_v3:parallel_env", num_envs=2)
    assert env.spec.groups == (0, 0, 0, 1) and env.spec.obs_dims == (16, 16, 16, 14)


class ScoutAndWorker(TwoRoles):
    """TwoRoles without worker_1 (nobody leaves)."""

    def __init__(self, horizon: int = 4):
        super().__init__(horizon)
        self.possible_agents = ["scout_0", "worker_0"]


def test_obs_het_is_undefined_where_the_local_state_is_the_observation(tmp_path, capsys):
    """The adapter's local state s_i is the observation o_i (nothing finer): Obs-Het's target is
    part of its condition. quantify refuses it with why; the CLI skips it under a kind list and
    refuses it alone."""
    from hetero.cli import main
    from hetero.kinds import obs_het_undefined
    from hetero.quantify import quantify
    from marl_backends.envs import registry

    env = PettingZooEnv(ScoutAndWorker, num_envs=4, name="scout_and_worker")
    pool = collect_pool(env, steps=40, behaviour="random", seed=0, progress=False)
    assert "undefined" in obs_het_undefined(pool)
    with pytest.raises(ValueError, match="Obs-Het is undefined here: each agent's local state s_i is its observation"):
        quantify(pool, "obs")
    vmas = collect_pool(make_env("spread_v4", num_envs=4, seed=0), steps=10, seed=0, progress=False)
    assert obs_het_undefined(vmas) is None  # a real local state: defined

    registry.register("scout_and_worker_test", lambda num_envs, device, seed, continuous, **kw: PettingZooEnv(
        ScoutAndWorker, num_envs=num_envs, device=device, seed=seed, name="scout_and_worker"), "test env")
    try:
        fast = ["--samples", "200", "--train-samples", "64", "--eval-samples", "32", "--epochs", "1", "--quiet",
                "--no-plots", "--ignore-memory-check"]
        out = tmp_path / "two"
        assert main(["quantify", "--env", "scout_and_worker_test", "--kind", "obs,response", *fast, "--out", str(out)]) == 0
        kinds = json.loads((out / "summary.json").read_text())["kinds"]
        assert "undefined" in kinds["obs"]["undefined"] and "groups" in kinds["response"]
        assert "Obs-Het skipped" in capsys.readouterr().out
        assert main(["quantify", "--env", "scout_and_worker_test", "--kind", "obs", *fast, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: Obs-Het is undefined here")
    finally:
        registry.REGISTRY.pop("scout_and_worker_test", None)
