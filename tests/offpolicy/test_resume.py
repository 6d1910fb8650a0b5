"""Exact off-policy resume: K iterations == K/2 + resume + K/2 (same seed), and quantify loading."""

import pytest
import torch

from marl_backends.offpolicy.checkpoint import is_offpolicy_checkpoint, load_offpolicy_trainer
from marl_backends.trainers import cli
from tests.offpolicy.resume_check import half_plus_resume_equals_full, metric_rows, train_args

PER_IT = 4 * 5  # num_envs x train_interval
BASE = ["--env", "spread_v4", "--num-envs", "4", "--hidden", "16,16", "--batch-size", "32", "--warmup-steps", "60",
        "--train-interval", "5", "--eval-interval", "3", "--eval-episodes", "2", "--checkpoint-interval", "3",
        "--buffer-size", "200", "--n-step", "3", "--no-progress", "--no-tensorboard"]


_args, _rows = train_args, metric_rows


@pytest.mark.parametrize("algo", ["omdpg", "matd3"])
def test_half_run_plus_resume_equals_uninterrupted_run(tmp_path, algo):
    k = 18  # iterations; the 200-transition ring wraps (360 steps) and episodes (50 steps) span the cut
    full, a, ca, cb = half_plus_resume_equals_full(tmp_path, BASE + ["--algo", algo], k, PER_IT)
    assert any(r["loss_true"] for r in a[: k // 2]) and "eval_return" in a[0]
    buf = ca["resume"]["buffer"]
    assert buf["size"] == 50 and buf["obs"].shape[0] == 50 and buf["obs"].dtype == torch.float32
    assert torch.equal(buf["obs"], cb["resume"]["buffer"]["obs"])
    assert "resume" not in torch.load(full / "checkpoints" / f"iter_{k:06d}.pt", weights_only=False)


def test_buffer_checkpoint_keeps_only_filled_rows(tmp_path):
    half = cli.run_train(_args(BASE + ["--algo", "omdpg", "--frames", str(3 * PER_IT), "--out-dir", str(tmp_path),
                                       "--run-name", "r", "--buffer-size", "100000"]))
    buf = torch.load(half / "checkpoint.pt", weights_only=False)["resume"]["buffer"]
    assert buf["size"] == 15 and buf["obs"].shape[0] == 15 and buf["t_cap"] == 25_000
    assert not list(half.glob(".*tmp*"))  # no temporary files left behind


def test_load_offpolicy_trainer_for_quantify(tmp_path):
    run = cli.run_train(_args(BASE + ["--algo", "omdpg", "--frames", str(6 * PER_IT), "--out-dir", str(tmp_path),
                                      "--run-name", "q"]))
    assert is_offpolicy_checkpoint(run) and is_offpolicy_checkpoint(run / "checkpoints" / "iter_000006.pt")
    assert not is_offpolicy_checkpoint(tmp_path) and not is_offpolicy_checkpoint(tmp_path / "missing")
    tr = load_offpolicy_trainer(run)
    assert tr.cfg.env == "spread_v4" and tr.layout == (0, 0, 1, 1) and tr.buffer.size == 0
    obs = tr.env.reset(seed=0)
    d = tr.policy_distributions(obs.obs)
    assert d.shape == (4, 4, 4)
    ref = torch.load(run / "checkpoint.pt", weights_only=False)["trainer"]["actor"]
    assert all(torch.equal(v, tr.actor.state_dict()[k]) for k, v in ref.items())
    g = torch.Generator().manual_seed(0)
    a_env, a = tr.act_behaviour(obs.obs, obs.avail_actions, generator=g)
    assert a_env.shape == (4, 4, 2) and a.abs().max() <= 1.0
    env_a, _ = load_offpolicy_trainer(run).act_behaviour(obs.obs, None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a_env, env_a)
    with pytest.raises(ValueError, match="not an off-policy run"):
        load_offpolicy_trainer(tmp_path)
