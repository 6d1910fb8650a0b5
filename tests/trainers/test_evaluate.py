"""`hetero evaluate RUN`: trained on- and off-policy runs played outside training."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_env import FakeEnv, fake_factory

from marl_backends.trainers.cli import add_train_arguments, run_train
from marl_backends.trainers.evaluate import add_evaluate_arguments, cmd_evaluate, load_run, rollout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "offpolicy"))
from toy_env import ToyLineEnv  # noqa: E402

TINY = ["--num-envs", "2", "--rollout-steps", "8", "--frames", "32", "--hidden", "16,16", "--ppo-epochs", "1",
        "--critic-epochs", "1", "--eval-episodes", "2", "--eval-interval", "1", "--no-progress", "--no-tensorboard"]


def _train(argv, env_factory):
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    return run_train(p.parse_args(argv), env_factory=env_factory)


def _evaluate(argv, env_factory=None):
    p = argparse.ArgumentParser()
    add_evaluate_arguments(p)
    return cmd_evaluate(p.parse_args(argv), env_factory)


class RenderingFake(FakeEnv):
    """The fake env with a renderer: frame t is a flat image of brightness 10 t."""

    def render_frame(self, env_index: int = 0):
        return np.full((8, 8, 3), min(255, 10 * int(self.t[env_index])), dtype=np.uint8)


@pytest.fixture(scope="module")
def onpolicy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    return _train(["--env", "fake", "--algo", "mappo", "--sharing", "groups:0,0,1,1", "--out-dir", str(out), *TINY],
                  fake_factory())


def test_rollout_reproduces_the_trainers_eval_return(onpolicy_run):
    """Same policy, envs and seed as the training loop's evaluation -> the same eval_return."""
    tr = load_run(onpolicy_run, fake_factory())
    want = tr.evaluate()["eval_return"]
    env = fake_factory()(tr.cfg.eval_episodes, tr.cfg.seed + 7919)
    res = rollout(tr, env, tr.cfg.eval_episodes, seed=tr.cfg.seed * 100_003 + 50_000 + tr.iteration)
    assert res.mean_return == pytest.approx(want, abs=1e-5)
    assert res.lengths == (8, 8) and res.wins == ()


def test_cli_prints_writes_json_and_gif(onpolicy_run, tmp_path, capsys):
    factory = lambda n, seed: RenderingFake(n, seed, 4, False, 8)  # noqa: E731
    gif, js = tmp_path / "ep.gif", tmp_path / "ev.json"
    assert _evaluate([str(onpolicy_run), "--episodes", "3", "--seed", "5", "--gif", str(gif), "--json", str(js)],
                     factory) == 0
    out = capsys.readouterr().out
    assert "3 episodes (greedy policy, seed 5): return" in out and "layout 0-0-1-1" in out
    d = json.loads(js.read_text())
    assert d["episodes"] == 3 and len(d["returns"]) == 3 and d["iteration"] == 2 and d["frames"] == 32
    assert d["return_mean"] == pytest.approx(np.mean(d["returns"]))
    from PIL import Image

    im = Image.open(gif)
    assert im.n_frames == 8 == d["gif_frames"]  # env 0's whole episode, one frame per step
    # same seed -> same numbers; a stochastic policy is another evaluation
    assert _evaluate([str(onpolicy_run), "--episodes", "3", "--seed", "5", "--json", str(tmp_path / "b.json")],
                     factory) == 0
    assert json.loads((tmp_path / "b.json").read_text())["returns"] == d["returns"]


def test_offpolicy_run_and_its_iter_checkpoints(tmp_path, capsys):
    factory = lambda n, seed: ToyLineEnv(n)  # noqa: E731
    run = _train(["--env", "toy", "--algo", "matd3", "--frames", "200", "--num-envs", "2", "--hidden", "16,16",
                  "--batch-size", "16", "--warmup-steps", "40", "--train-interval", "10", "--eval-interval", "5",
                  "--eval-episodes", "2", "--checkpoint-interval", "5", "--no-progress", "--no-tensorboard",
                  "--out-dir", str(tmp_path)], factory)
    tr = load_run(run, factory)
    env = factory(2, 0)
    res = rollout(tr, env, 2, seed=3)
    assert res.mean_return == pytest.approx(tr.evaluate(factory(2, 0), 2, seed=3))
    assert _evaluate([str(run / "checkpoints" / "iter_000005.pt"), "--episodes", "2", "--stochastic"], factory) == 0
    assert "iteration 5 (100 frames)" in capsys.readouterr().out


def test_bad_inputs_are_one_error_line(onpolicy_run, tmp_path, capsys):
    assert _evaluate([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _evaluate([str(onpolicy_run), "--episodes", "0"], fake_factory()) == 2
    assert "--episodes 0" in capsys.readouterr().err
    assert _evaluate([str(onpolicy_run), "--gif", str(tmp_path / "x.gif")], fake_factory()) == 2
    assert "cannot render frames" in capsys.readouterr().err and not (tmp_path / "x.gif").exists()


def test_vmas_env_renders_a_frame_headless():
    from marl_backends.envs import make_env

    env = make_env("spread_v3", num_envs=1, device="cpu", seed=0)
    env.reset(seed=0)
    frame = env.render_frame(0)
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0  # something was drawn


class WinningFake(FakeEnv):
    """The fake env reporting battles: even-indexed envs win when their episode ends."""

    def step(self, actions):
        res = super().step(actions)
        import torch

        res.info["won"] = res.done & (torch.arange(self.num_envs) % 2 == 0)
        return res


def test_win_rate_where_the_env_reports_wins(onpolicy_run, tmp_path, capsys):
    factory = lambda n, seed: WinningFake(n, seed, 4, False, 8)  # noqa: E731
    assert _evaluate([str(onpolicy_run), "--episodes", "4", "--json", str(tmp_path / "w.json")], factory) == 0
    assert "win rate 0.50" in capsys.readouterr().out
    d = json.loads((tmp_path / "w.json").read_text())
    assert d["win_rate"] == 0.5 and d["wins"] == [True, False, True, False]
