"""`hetero quantify --samples` means transitions per agent (issue 10.7), numeric options are checked
in the configs too (Python API), and `--kind all` leaves out Policy-Het of untrained networks."""
from __future__ import annotations

import json

import pytest

from hetero.cli import MIN_STREAMS, main, pool_shape
from hetero.cvae import CVAEConfig
from hetero.quantify import QuantifyConfig

FAST = ["--train-samples", "64", "--eval-samples", "32", "--epochs", "1", "--quiet", "--no-plots"]


@pytest.mark.parametrize("samples", [16, 40, 100, 401, 3200])
def test_pool_shape_gives_about_samples_rows_from_at_least_8_streams(samples):
    envs, steps = pool_shape(samples)
    assert envs >= MIN_STREAMS and 1 <= steps <= 50
    assert samples <= envs * steps < samples + envs


@pytest.mark.parametrize("samples", [40, 100])
def test_samples_is_transitions_per_agent_on_a_100_step_env(tmp_path, samples):
    """vmas_balance has 100-step episodes: main made ceil(samples/50) envs of a full episode each
    (100 -> 200 rows; 40 -> one env, and the split-half crashed)."""
    out = tmp_path / "q"
    assert main(["quantify", "--env", "vmas_balance", "--kind", "meta", "--samples", str(samples), "--out", str(out),
                 *FAST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    assert samples <= summary["pool_rows"] < samples + MIN_STREAMS
    assert cfg["pool"]["envs"] >= MIN_STREAMS and summary["pool_rows"] == cfg["pool"]["envs"] * cfg["pool"]["steps"]
    assert cfg["versions"]["hetero"] and "git_commit" in cfg["versions"]


def test_configs_validate_numbers_for_the_python_api():
    with pytest.raises(ValueError, match="eval_samples"):
        QuantifyConfig(eval_samples=0)
    with pytest.raises(ValueError, match="train_samples"):
        QuantifyConfig(train_samples=-5)
    with pytest.raises(ValueError, match="mode"):
        QuantifyConfig(mode="model-ish")
    with pytest.raises(ValueError, match="epochs"):
        CVAEConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        CVAEConfig(lr=float("inf"))
    with pytest.raises(ValueError, match="patience"):
        CVAEConfig(patience=0)
    with pytest.raises(ValueError, match="early-stop"):
        QuantifyConfig(validation=-0.1)


def test_kind_all_without_checkpoint_leaves_out_policy_and_default_kind_says_what_it_sees(tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["quantify", "--env", "spread_v4", "--kind", "all", "--samples", "64", "--out", str(out), *FAST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["kinds"]) == ["obs", "response", "effect", "objective", "meta"]
    text = json.dumps(summary)
    assert "Infinity" not in text and "NaN" not in text  # strict JSON
    assert "Run --kind all" not in capsys.readouterr().out
    assert main(["quantify", "--env", "spread_v4", "--samples", "64", "--out", str(tmp_path / "m"), *FAST]) == 0
    out_text = capsys.readouterr().out
    assert "note: Meta-Het (the default kind)" in out_text and "Effect-Het" in out_text and "--kind all" in out_text


def test_early_stop_auto_holds_out_episodes_only_above_the_calibrated_epochs(tmp_path, capsys):
    """--early-stop auto (the default): the calibrated default epochs train exactly; a longer fit keeps
    each half's best held-out epoch (long fits memorise PMS's landmark layouts, README)."""
    from hetero.cli import AUTO_EARLY_STOP, early_stop_fraction

    assert early_stop_fraction("auto", CVAEConfig.epochs) == 0.0
    assert early_stop_fraction("auto", CVAEConfig.epochs + 1) == AUTO_EARLY_STOP
    assert early_stop_fraction("0", 150) == 0.0 and early_stop_fraction("0.25", 1) == 0.25
    args = ["quantify", "--env", "spread_v4", "--kind", "obs", "--mode", "model-free", "--samples", "400",
            "--train-samples", "64", "--eval-samples", "32", "--quiet", "--no-plots"]
    capsys.readouterr()
    assert main([*args, "--epochs", str(CVAEConfig.epochs + 3), "--out", str(tmp_path / "long")]) == 0
    assert "early stopping (--early-stop 0.125)" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "long" / "config.json").read_text())
    kept = json.loads((tmp_path / "long" / "summary.json").read_text())["kinds"]["obs"]["epochs_kept"]
    assert cfg["quantify"]["validation"] == AUTO_EARLY_STOP
    assert len(kept) == 2 and all(1 <= k <= CVAEConfig.epochs + 3 for k in kept)
    assert main([*args, "--epochs", str(CVAEConfig.epochs + 3), "--early-stop", "0", "--out", str(tmp_path / "off")]) == 0
    assert "epochs_kept" not in json.loads((tmp_path / "off" / "summary.json").read_text())["kinds"]["obs"]
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    assert json.loads((tmp_path / "default" / "config.json").read_text())["quantify"]["validation"] == 0.0


def test_reweight_is_on_by_default_and_can_be_turned_off(tmp_path):
    args = ["quantify", "--env", "spread_v4", "--samples", "400", *FAST]
    assert main([*args, "--out", str(tmp_path / "on")]) == 0
    assert main([*args, "--no-reweight", "--out", str(tmp_path / "off")]) == 0
    on, off = (json.loads((tmp_path / d / "config.json").read_text())["quantify"]["reweight"] for d in ("on", "off"))
    assert on is True and off is False and QuantifyConfig().reweight is True


def test_env_args_reach_the_env_and_are_recorded(tmp_path, capsys):
    out = tmp_path / "tag"
    args = ["quantify", "--env", "vmas_simple_tag", "--env-args", "num_adversaries=4,num_good_agents=2",
            "--kind", "response", "--samples", "400", *FAST]
    assert main([*args, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads((out / "config.json").read_text())["env_spec"]["n_agents"] == 6
    assert summary["env_args"] == "num_adversaries=4,num_good_agents=2"
    assert len(summary["kinds"]["response"]["groups"]) == 6
    capsys.readouterr()
    assert main(["quantify", "--env", "vmas_simple_tag", "--env-args", "num_adversaries", *FAST,
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --env-args") and "key=value" in err[0]


def test_summary_records_the_behaviour_that_filled_the_pool(tmp_path, capsys):
    """An env without a scripted policy fills the pool with random actions under --behaviour heuristic:
    summary.json says random (and keeps what was asked for); an env with one says heuristic."""
    for env, used in (("vmas_transport", "random"), ("spread_v4", "heuristic")):
        out = tmp_path / env
        assert main(["quantify", "--env", env, "--kind", "obs", "--samples", "400", *FAST, "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert (summary["behaviour"], summary["behaviour_requested"]) == (used, "heuristic"), env
        assert ("no scripted policy" in capsys.readouterr().out) == (used == "random")
