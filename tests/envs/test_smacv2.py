"""SMACv2 backend against a fake wrapper with SMACv2's API (StarCraft II cannot run here)."""
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from marl_backends.envs.base import VecMultiAgentEnv
from marl_backends.envs.smacv2 import (
    MAP_FILE, TASKS, Smacv2Env, capability_config, register_all, smacv2_available, unit_type_names, wrapper_kwargs,
)

TYPE_OFFSET = 1900  # fake game unit-type ids; get_unit_type_id maps them to 0..2


class FakeTeamDist:
    """Like SMACv2's weighted-teams distribution: an unseeded numpy Generator drawing types."""

    def __init__(self, n_units: int):
        self.n_units, self.rng = n_units, np.random.default_rng()

    def generate(self):
        return {"team_gen": {"ally_team": self.rng.integers(0, 3, self.n_units).tolist()}}


class FakeWrapper:
    """StarCraftCapabilityEnvWrapper look-alike: obs/state/avail from a numpy RNG, battles that end at
    random (won or lost), and the episode limit flagged in info as with ``continuing_episode=True``.
    ``state[0]`` is the episode index and ``state[1]`` the step, so tests can tell episodes apart."""

    def __init__(self, task: str, seed: int, end_prob: float = 0.1, limit: int = 6):
        t = TASKS[task]
        self.n_agents, self.n_enemies, self.episode_limit, self.end_prob = t.n_units, t.n_enemies, limit, end_prob
        self.n_actions = 6 + self.n_enemies
        self.rng = np.random.default_rng(seed)
        self.env_key_to_distribution_map = {"team_gen": FakeTeamDist(self.n_agents)}
        self.names = ([f"move_{i}" for i in range(4)] + [f"enemy_{i}" for i in range(3 * self.n_enemies)]
                      + ["own_health", "own_pos_x", "own_pos_y"] + [f"own_unit_type_bit_{b}" for b in range(3)])
        self.episode, self.steps, self.closed, self.agents = -1, 0, False, {}
        self.history = []  # (won, episode_limit) per finished episode

    def get_env_info(self):
        return {"state_shape": 2 + 4 * self.n_agents, "obs_shape": len(self.names), "cap_shape": 3,
                "n_actions": self.n_actions, "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def get_obs_feature_names(self):
        return list(self.names)

    def get_unit_type_id(self, unit, ally):
        return unit.unit_type - TYPE_OFFSET

    def _draw(self):
        n, a = self.n_agents, self.n_actions
        self.alive = self.rng.random(n) > 0.2
        obs = self.rng.normal(size=(n, len(self.names))).astype(np.float32)
        types = np.array([self.get_unit_type_id(self.agents[i], True) for i in range(n)])
        obs[:, -3:] = np.eye(3)[types]
        obs[~self.alive] = 0.0
        self.obs = obs
        avail = (self.rng.random((n, a)) < 0.5).astype(int)
        avail[:, 0], avail[:, 1] = 0, 1
        avail[~self.alive] = np.eye(a, dtype=int)[0]
        self.avail = avail
        self.state = np.concatenate([[self.episode, self.steps], self.rng.normal(size=4 * n)]).astype(np.float32)

    def reset(self):
        team = self.env_key_to_distribution_map["team_gen"].generate()["team_gen"]["ally_team"]
        self.agents = {i: SimpleNamespace(unit_type=TYPE_OFFSET + t) for i, t in enumerate(team)}
        self.episode, self.steps = self.episode + 1, 0
        self._draw()
        return self.get_obs(), self.get_state()

    def get_obs(self):
        return [o.copy() for o in self.obs]

    def get_state(self):
        return self.state.copy()

    def get_avail_actions(self):
        return self.avail.tolist()

    def step(self, actions):
        for i, a in enumerate(actions):
            assert self.avail[i][a] == 1, f"Agent {i} cannot perform action {a}"
        self.steps += 1
        info = {"battle_won": False}
        if self.rng.random() < self.end_prob:
            info["battle_won"] = bool(self.rng.random() < 0.5)
            done = True
        elif self.steps >= self.episode_limit:
            info["episode_limit"] = done = True
        else:
            done = False
        if done:
            self.history.append((info["battle_won"], info.get("episode_limit", False)))
        self._draw()
        return float(self.rng.random()), done, info

    def close(self):
        self.closed = True


def make(task="smacv2_protoss_5v5", num_envs=3, seed=0, **fake):
    return Smacv2Env(task, num_envs=num_envs, seed=seed, wrapper_factory=lambda s: FakeWrapper(task, s, **fake))


def test_tasks_configs_and_registration():
    assert len(TASKS) == 12 and {"smacv2_zerg_10v11", "smacv2_terran_20v20", "smacv2_protoss_5v5"} <= set(TASKS)
    reg = {}
    register_all(lambda name, factory, desc: reg.__setitem__(name, (factory, desc)))
    assert set(reg) == set(TASKS) and all(d for _, d in reg.values())
    with pytest.raises(ValueError, match="discrete"):
        reg["smacv2_zerg_5v5"][0](num_envs=1, device="cpu", seed=0, continuous=True)
    cfg = capability_config("smacv2_zerg_10v11")
    assert (cfg["n_units"], cfg["n_enemies"]) == (10, 11)
    assert cfg["team_gen"]["unit_types"] == ["zergling", "baneling", "hydralisk"]
    assert cfg["team_gen"]["weights"] == [0.45, 0.1, 0.45] and cfg["team_gen"]["exception_unit_types"] == ["baneling"]
    assert cfg["start_positions"] == {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32}
    assert capability_config("smacv2_protoss_20v20")["team_gen"]["weights"] == [0.45, 0.45, 0.1]
    kw = wrapper_kwargs("smacv2_terran_10v10", 7, obs_own_pos=False)
    assert kw["map_name"] == "10gen_terran" and kw["seed"] == 7 and kw["continuing_episode"] is True
    assert kw["obs_own_pos"] is False
    assert unit_type_names("smacv2_zerg_5v5") == ("zergling", "hydralisk", "baneling")
    with pytest.raises(ValueError, match="unknown SMACv2 task"):
        unit_type_names("smacv2_zerg_3v3")


def test_spec_and_observation_assembly():
    env = make(num_envs=3)
    assert isinstance(env, VecMultiAgentEnv) and env.model is None
    s = env.spec
    assert (s.n_agents, s.action_dim, s.obs_dim, s.state_dim, s.local_state_dim) == (5, 11, 25, 22, 3)
    assert s.discrete and s.max_steps == 6 and s.groups is None and s.obs_dims == (25,) * 5
    obs = env.reset()
    assert obs.obs.shape == (3, 5, 25) and obs.obs.dtype == torch.float32
    assert obs.state.shape == (3, 22) and obs.state.dtype == torch.float32
    assert obs.avail_actions.shape == (3, 5, 11) and obs.avail_actions.dtype == torch.bool
    torch.testing.assert_close(obs.local_state, obs.obs[..., -6:-3])  # own health, x, y; no type bits
    torch.testing.assert_close(obs.alive, obs.obs[..., -6] > 0)
    for e, w in enumerate(env._envs):
        torch.testing.assert_close(obs.obs[e], torch.tensor(np.stack(w.get_obs())))
        assert obs.avail_actions[e].int().tolist() == w.get_avail_actions()
    # own unit-type bits agree with the types read from the units (alive agents)
    alive = obs.alive
    assert torch.equal(obs.obs[..., -3:].argmax(-1)[alive], env.unit_types[alive])
    env.close()
    assert all(w.closed for w in env._envs)


def test_env_state_is_the_enemy_part_of_the_state():
    """S^E = the ``enemy_*`` entries of get_state() where the wrapper names its state features."""

    class Named(FakeWrapper):
        def get_state_feature_names(self):
            n = self.n_agents
            return ["episode", "step"] + [f"ally_{i}" for i in range(2 * n)] + [f"enemy_{i}" for i in range(2 * n)]

    task = "smacv2_protoss_5v5"
    env = Smacv2Env(task, num_envs=2, wrapper_factory=lambda s: Named(task, s))
    obs = env.reset()
    torch.testing.assert_close(obs.env_state, obs.state[:, 12:])
    assert make(num_envs=1).reset().env_state is None  # no feature names: no S^E


def test_auto_reset_next_is_final_obs_is_reset():
    env = make(num_envs=4, end_prob=0.3)
    obs, g, seen = env.reset(), torch.Generator().manual_seed(0), 0
    for _ in range(30):
        res = env.step(env.heuristic_actions(obs, 1.0, g))
        done = res.done
        for e in range(4):
            if done[e]:
                seen += 1
                assert res.obs.state[e, 1] == 0 and res.obs.state[e, 0] == res.next.state[e, 0] + 1
                assert not torch.equal(res.next.obs[e], res.obs.obs[e])
            else:
                assert torch.equal(res.next.obs[e], res.obs.obs[e]) and res.next.state[e, 1] > 0
        assert torch.equal(res.reward[:, 0], res.reward[:, -1]) and res.reward.shape == (4, 5)
        obs = res.obs
    assert seen > 5


def test_terminated_vs_truncated_and_won():
    env = make(num_envs=2, end_prob=0.0, limit=3)
    obs, g = env.reset(), torch.Generator().manual_seed(1)
    for t in range(3):
        res = env.step(env.heuristic_actions(obs, 1.0, g))
        obs = res.obs
        assert bool(res.truncated.all()) == (t == 2) and not res.terminated.any() and not res.info["won"].any()
    env = make(num_envs=8, end_prob=1.0, seed=4)
    res = env.step(env.heuristic_actions(env.reset(), 1.0, g))
    assert res.terminated.all() and not res.truncated.any()
    won = [w.history[-1][0] for w in env._envs]
    assert res.info["won"].tolist() == won and 0 < sum(won) < 8


def test_unit_types_follow_episodes_and_seeds():
    env = make(num_envs=3, end_prob=0.5, seed=2)
    obs, g = env.reset(), torch.Generator().manual_seed(2)
    types = env.unit_types.clone()
    assert types.shape == (3, 5) and types.dtype == torch.long
    for w, row in zip(env._envs, types.tolist()):
        assert row == [u.unit_type - TYPE_OFFSET for u in w.agents.values()]
    for _ in range(10):
        res = env.step(env.heuristic_actions(obs, 1.0, g))
        assert torch.equal(res.info["unit_types"], types)  # the transition's episode
        types, obs = env.unit_types.clone(), res.obs  # the current (possibly new) episode
    a, b, c = make(seed=9), make(seed=9), make(seed=10)
    assert torch.equal(a.reset().obs, b.reset().obs) and torch.equal(a.unit_types, b.unit_types)
    c.reset()
    assert not torch.equal(a.unit_types, c.unit_types)
    a.reset(seed=3), b.reset(seed=3)
    assert torch.equal(a.unit_types, b.unit_types)


def test_unavailable_action_guard():
    env = make(num_envs=2)
    obs = env.reset()
    with pytest.raises(RuntimeError, match="reset"):
        make().step(torch.zeros(3, 5, dtype=torch.long))
    act = env.heuristic_actions(obs, 1.0, torch.Generator().manual_seed(0))
    bad = int((~obs.avail_actions[1, 3]).nonzero()[0])
    act[1, 3] = bad
    with pytest.raises(ValueError, match=rf"env 1, agent 3: action {bad} is unavailable"):
        env.step(act)
    act[1, 3] = 99
    with pytest.raises(ValueError, match="action 99"):
        env.step(act)
    with pytest.raises(ValueError, match="expected"):
        env.step(torch.zeros(2, 4, dtype=torch.long))


def test_heuristic_actions_are_always_available():
    env = make("smacv2_terran_10v11", num_envs=4, end_prob=0.1)
    obs, g = env.reset(), torch.Generator().manual_seed(5)
    counts = torch.zeros(env.spec.action_dim)
    for _ in range(200):
        act = env.heuristic_actions(obs, 0.0, g)
        assert act.dtype == torch.long and obs.avail_actions.gather(-1, act[..., None]).all()
        counts += torch.bincount(act.flatten(), minlength=env.spec.action_dim)
        obs = env.step(act).obs  # the fake asserts availability too
    assert (counts[1:] > 0).all()  # every action gets picked somewhere


def test_install_errors(monkeypatch, tmp_path):
    monkeypatch.delenv("SC2PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="SC2PATH is not set.*install StarCraft II"):
        Smacv2Env("smacv2_protoss_5v5")
    monkeypatch.setenv("SC2PATH", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="not a folder.*set SC2PATH"):
        Smacv2Env("smacv2_protoss_5v5")
    monkeypatch.setenv("SC2PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"Maps/SMAC_Maps/{MAP_FILE} is missing: copy"):
        Smacv2Env("smacv2_protoss_5v5")
    (tmp_path / "Maps" / "SMAC_Maps").mkdir(parents=True)
    (tmp_path / "Maps" / "SMAC_Maps" / MAP_FILE).write_bytes(b"")
    monkeypatch.setitem(sys.modules, "smacv2", None)  # not importable, even where installed
    with pytest.raises(ImportError, match="install smacv2 from its git repository"):
        Smacv2Env("smacv2_protoss_5v5")
    assert not smacv2_available()
    with pytest.raises(ValueError, match="at least 1"):
        make(num_envs=0)


@pytest.mark.skipif(not smacv2_available(),
                    reason="needs StarCraft II (SC2PATH) and smacv2, which cannot be installed on this machine")
def test_real_smacv2_steps():
    env = Smacv2Env("smacv2_protoss_5v5", num_envs=1, seed=0)
    try:
        obs, g = env.reset(), torch.Generator().manual_seed(0)
        assert env.spec.n_agents == 5 and obs.obs.shape == (1, 5, env.spec.obs_dim)
        assert env.spec.local_state_dim == 4  # health, shield, x, y (type bits left out)
        for _ in range(5):
            res = env.step(env.heuristic_actions(obs, 1.0, g))
            obs = res.obs
        assert res.info["unit_types"].shape == (1, 5) and int(res.info["unit_types"].max()) < 3
    finally:
        env.close()
