"""Episodes longer than a rollout: the envs run on across iterations (30-step episodes, 8-step rollouts)."""
from __future__ import annotations

import math

import torch
from fake_env import fake_factory

from marl_backends.trainers import TrainConfig, load_trainer, make_trainer, train
from marl_backends.trainers.rollout import EnvCursor, collect, gae
from marl_backends.trainers.run_io import read_metrics

LONG = dict(env="fake", num_envs=3, rollout_steps=8, hidden=(16, 16), ppo_epochs=2, num_minibatches=2,
            critic_epochs=2, critic_minibatches=2, eval_episodes=2, progress=False, tensorboard=False, seed=5)


def _chunked_and_unbroken(steps: int, chunk: int):
    tr = make_trainer(TrainConfig(**LONG), fake_factory(max_steps=30))
    env = tr.env_factory(3, 0)
    out = []
    for k in (chunk, steps):
        cur = EnvCursor.start(env, seed=11)
        gen = torch.Generator().manual_seed(7)
        ros = []
        for _ in range(steps // k):
            ro, cur = collect(env, tr.actor, tr.critic, k, gen, cur)
            ros.append(ro)
        out.append(ros)
    return out


def test_chunked_rollouts_see_whole_episodes_equal_to_an_unbroken_run():
    chunks, (whole,) = _chunked_and_unbroken(120, 8)
    rets = [r for ro in chunks for r in ro.episode_returns]
    lens = [n for ro in chunks for n in ro.episode_lengths]
    assert len(rets) >= 9 and all(math.isfinite(r) for r in rets)
    assert max(lens) == 30  # whole 30-step episodes, though no rollout is longer than 8 steps
    assert rets == whole.episode_returns and lens == whole.episode_lengths
    for k in ("obs", "action", "reward", "terminated", "truncated", "value", "next_value"):
        torch.testing.assert_close(torch.cat([getattr(ro, k) for ro in chunks]), getattr(whole, k), rtol=0, atol=0)


def test_rollout_boundary_bootstraps_from_the_state_the_next_rollout_continues_from():
    """GAE with lambda = 0 is one-step TD: the chunked advantages equal the unbroken run's at every
    step, the last step of every chunk included (bootstrap from V(s_T), not 0 or a reset state)."""
    chunks, (whole,) = _chunked_and_unbroken(64, 8)

    def adv(ro):
        return gae(ro.reward, ro.value, ro.next_value, ro.terminated, ro.done, 0.99, 0.0)[0]

    torch.testing.assert_close(torch.cat([adv(ro) for ro in chunks]), adv(whole))


def test_trainer_without_learning_logs_the_unbroken_runs_episode_returns():
    """lr 0: 15 iterations of 8 steps collect exactly what one 120-step iteration does; before
    the envs ran on, every iteration restarted episodes and train_return stayed NaN."""
    cfg = TrainConfig(**{**LONG, "lr": 0.0, "critic_lr": 0.0, "frames": 3 * 120})
    chunked = make_trainer(cfg, fake_factory(max_steps=30))
    rets = []
    while chunked.iteration < cfg.iterations:
        chunked.iterate()
        rets += chunked.last_rollout.episode_returns
    whole = make_trainer(cfg.replace(rollout_steps=120), fake_factory(max_steps=30))
    m = whole.iterate()
    assert rets == whole.last_rollout.episode_returns and math.isfinite(m["train_return"])
    assert max(whole.last_rollout.episode_lengths) == 30


def test_resume_mid_episode_continues_with_the_same_numbers(tmp_path):
    cfg = TrainConfig(**{**LONG, "algo": "mappo", "frames": 3 * 8 * 6, "eval_interval": 2, "checkpoint_interval": 1})
    full = make_trainer(cfg, fake_factory(max_steps=30))
    train(full, tmp_path / "a")
    part = make_trainer(cfg.replace(frames=3 * 8 * 2), fake_factory(max_steps=30))
    train(part, tmp_path / "b")  # stops 16 steps into the first 30-step episodes
    assert bool((part.cursor.ep_len == 16).all())
    resumed = load_trainer(tmp_path / "b", fake_factory(max_steps=30), frames=3 * 8 * 6)
    assert torch.equal(resumed.cursor.ep_len, part.cursor.ep_len)
    train(resumed, tmp_path / "b")
    for a, b in zip(full.actor.state_dict().values(), resumed.actor.state_dict().values()):
        assert torch.equal(a, b)
    drop = {"fps", "rollout_s", "update_s", "wall_s"}
    ra, rb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert len(ra) == len(rb) == 6
    for x, y in zip(ra, rb):
        for k in set(x) - drop:
            assert x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k])), k
    assert any(math.isfinite(r["train_return"]) for r in ra)


def test_train_return_is_finite_from_the_first_finished_episode_on():
    cfg = TrainConfig(**{**LONG, "frames": 3 * 8 * 8})
    tr = make_trainer(cfg, fake_factory(max_steps=30))
    rets = [tr.iterate()["train_return"] for _ in range(cfg.iterations)]
    first = next(i for i, r in enumerate(rets) if math.isfinite(r))
    assert first <= 3 and all(math.isfinite(r) for r in rets[first:])  # episodes end every 30 steps, rollouts are 8


def test_resume_keeps_the_env_state_of_the_running_episodes(tmp_path):
    """EnvCursor carried obs/state/... through checkpoints but not env_state (S^E): the first
    rollout after a resume had no S^E, so its sample pool's model-free conditions differed from the
    unbroken run's, and a HetDPS pool spanning the resume failed to concatenate (round skipped)."""
    from hetero.samples import SamplePool

    cfg = TrainConfig(env="pms_15a_3c", algo="mappo", num_envs=2, rollout_steps=10, hidden=(16, 16), ppo_epochs=1,
                      num_minibatches=1, critic_epochs=1, critic_minibatches=1, eval_episodes=1, eval_interval=0,
                      checkpoint_interval=1, progress=False, tensorboard=False, seed=3, frames=2 * 10 * 3)
    full = make_trainer(cfg)
    train(full, tmp_path / "a")
    part = make_trainer(cfg.replace(frames=2 * 10 * 2))
    train(part, tmp_path / "b")
    before = part.sample_pool()
    resumed = load_trainer(tmp_path / "b", frames=2 * 10 * 3)
    assert resumed.cursor.obs.env_state is not None
    assert torch.equal(resumed.cursor.obs.env_state, part.cursor.obs.env_state)
    train(resumed, tmp_path / "b")
    after, unbroken = resumed.sample_pool(), full.sample_pool()
    assert after.env_state is not None and torch.equal(after.env_state, unbroken.env_state)
    assert SamplePool.concat([before, after]).rows == before.rows + after.rows
