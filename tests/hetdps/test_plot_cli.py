"""`hetero plot RUN_DIR`: HetDPS matrices across rounds, group timeline, reward curves, --at matrices."""
from __future__ import annotations

import argparse

from fake_env import fake_factory

from hetero.cli import main
from marl_backends.trainers.cli import add_train_arguments, run_train


def test_plot_run_folder(tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    flags = ["--env", "fake", "--num-envs", "4", "--rollout-steps", "8", "--hidden", "16,16", "--ppo-epochs", "1",
             "--critic-epochs", "1", "--eval-interval", "0", "--no-progress", "--no-tensorboard", "--frames", "96",
             "--checkpoint-interval", "1", "--out-dir", str(tmp_path)]
    run = run_train(p.parse_args([*flags, "--sharing", "hetdps:nps", "--hetdps-interval", "1", "--hetdps-samples", "32",
                                  "--hetdps-rollouts", "1"]), env_factory=fake_factory())
    other = run_train(p.parse_args([*flags, "--sharing", "fps"]), env_factory=fake_factory())
    assert main(["plot", str(run), "--compare", str(other), "--formats", "png"]) == 0
    figs = run / "figures"
    for name in ("hetdps_matrices.png", "group_timeline.png", "rewards.png"):
        assert (figs / name).stat().st_size > 0
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "metrics.csv" in capsys.readouterr().err
