"""`hetero train --algo matd3|omdpg`: run folder, metrics, checkpoint, resume, flag errors."""
import json

import pytest

from marl_backends.trainers import cli


def _args(argv):
    import argparse

    p = argparse.ArgumentParser()
    cli.add_train_arguments(p)
    return p.parse_args(argv)


SMALL = ["--env", "spread_v4", "--frames", "800", "--num-envs", "4", "--hidden", "16,16", "--batch-size", "32",
         "--warmup-steps", "100", "--train-interval", "10", "--eval-interval", "5", "--eval-episodes", "2",
         "--checkpoint-interval", "10", "--no-progress", "--no-tensorboard"]


@pytest.mark.parametrize("algo", ["matd3", "omdpg"])
def test_train_writes_a_run_folder_and_resumes(tmp_path, algo):
    run = cli.run_train(_args(SMALL + ["--algo", algo, "--out-dir", str(tmp_path), "--run-name", algo, "--n-step", "2"]))
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["algo"] == algo and cfg["config"]["n_step"] == 2 and cfg["config"]["hidden"] == [16, 16]
    assert cfg["resolved"]["layout"] == ([0, 1, 2, 3] if algo == "matd3" else [0, 0, 1, 1])
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 20 and "eval_return" in rows[0]
    assert (run / "checkpoint.pt").exists()
    run2 = cli.run_train(_args(["--resume", str(run), "--frames", "1200", "--no-progress"]))
    assert run2 == run
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 30


def test_onpolicy_flag_with_offpolicy_algo_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--clip is an on-policy flag"):
        cli.run_train(_args(SMALL + ["--algo", "omdpg", "--clip", "0.1", "--out-dir", str(tmp_path)]))


def test_continuous_on_a_discrete_only_env_is_refused(tmp_path):
    """--no-continuous now trains discrete actions (tests/offpolicy/test_discrete.py); SMAX has no
    continuous mode and its factory refuses --continuous before building anything."""
    argv = SMALL + ["--algo", "omdpg", "--continuous", "--out-dir", str(tmp_path)]
    argv[argv.index("spread_v4")] = "smax_2s3z"
    with pytest.raises(ValueError, match="discrete"):
        cli.run_train(_args(argv))
    assert not any(tmp_path.iterdir())


def test_omdpg_variant_flags_reach_the_config(tmp_path):
    """--pu-anchor target (Eq. 12 as printed), --omq-prefix buffer and --lr-schedule linear (shared
    with the on-policy flags; the horizon is --frames)."""
    argv = SMALL + ["--algo", "omdpg", "--out-dir", str(tmp_path), "--run-name", "v", "--frames", "400",
                    "--pu-anchor", "target", "--omq-prefix", "buffer", "--lr-schedule", "linear"]
    run = cli.run_train(_args(argv))
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert (cfg["pu_anchor"], cfg["omq_prefix"], cfg["lr_schedule"]) == ("target", "buffer", "linear")
