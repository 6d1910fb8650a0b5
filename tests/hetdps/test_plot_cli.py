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


def test_seeds_share_a_curve_and_rounds_say_what_they_did(tmp_path):
    from hetero.run_figures import group_runs, round_outcome

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    flags = ["--env", "fake", "--num-envs", "2", "--rollout-steps", "8", "--hidden", "16,16", "--ppo-epochs", "1",
             "--critic-epochs", "1", "--eval-interval", "0", "--no-progress", "--no-tensorboard", "--frames", "16",
             "--out-dir", str(tmp_path), "--sharing", "fps"]
    a, b = (run_train(p.parse_args([*flags, "--seed", s]), env_factory=fake_factory()) for s in ("0", "1"))
    c = run_train(p.parse_args([*flags, "--lr", "0.001"]), env_factory=fake_factory())
    groups = group_runs(a, [b, c])
    assert sorted(map(len, groups.values())) == [1, 2]  # a and b are seeds of one setting; c has another lr
    assert any(lbl.endswith("(this run)") and len(m) == 2 for lbl, m in groups.items())
    kept = {"labels": [0, 1, 2], "plan": {"old_layout": [0, 1, 2]},
            "info": {"note": "split-half stability 0.1 < 0.5: no structure beyond noise yet; layout kept"}}
    assert round_outcome(kept) == "layout kept (3 groups): no structure"
    assert round_outcome({"labels": [0, 0, 1], "plan": {"old_layout": [0, 1, 2]}, "info": {}}) == "regrouped into 2 groups"
    assert round_outcome({"labels": [0, 0, 1], "plan": {"old_layout": [0, 0, 1]}, "info": {}}) == "2 groups, unchanged"


def test_all_zero_matrix_keeps_a_unit_scale(tmp_path):
    import numpy as np

    from hetero.plotting import draw_heatmap, plt

    fig, ax = plt.subplots()
    im = draw_heatmap(ax, np.zeros((3, 3)))
    assert im.get_clim() == (0.0, 1.0)
    plt.close(fig)
