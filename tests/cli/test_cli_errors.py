"""The CLI's error table: every bad input gives one `error:` line, no traceback, the documented exit
code (2: the command cannot start as given; 1: a run failed), and `--debug` adds the traceback."""
from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from hetero.cli import main

TRAIN = ["train", "--env", "spread_v4", "--num-envs", "2", "--rollout-steps", "8", "--hidden", "8,8", "--no-progress",
         "--no-tensorboard"]
OFF = ["train", "--env", "spread_v4", "--num-envs", "2", "--hidden", "8,8", "--no-progress", "--no-tensorboard"]
QUANT = ["quantify", "--env", "spread_v4", "--samples", "64", "--train-samples", "64", "--eval-samples", "32",
         "--epochs", "1", "--quiet", "--no-plots"]

CASES = [  # (argv, expected exit code, text the error line must contain)
    (["train", "--env", "nope"], 2, "unknown env 'nope'"),
    (["train", "--algo", "ppo"], 2, "unknown --algo 'ppo'; expected one of mappo | happo | hamdpo | matd3"),
    ([*TRAIN, "--sharing", "groups:0,0,x"], 2, "comma-separated integers"),
    ([*TRAIN, "--sharing", "groups:0,1"], 2, "2 group labels but the env has 4 agents"),
    ([*TRAIN, "--sharing", "half"], 2, "unknown --sharing 'half'"),
    ([*TRAIN, "--frames", "0"], 2, "--frames must be >= 1"),
    ([*TRAIN, "--frames", "-5"], 2, "--frames must be >= 1"),
    ([*TRAIN, "--frames", "abc"], 2, "argument --frames: invalid int value"),
    ([*TRAIN, "--num-envs", "0"], 2, "--num-envs must be >= 1"),
    ([*TRAIN, "--lr", "-1"], 2, "--lr must be >= 0"),
    ([*TRAIN, "--gamma", "1.5"], 2, "--gamma must be > 0 and <= 1"),
    ([*TRAIN, "--clip", "nan"], 2, "--clip must be > 0"),
    ([*TRAIN, "--buffer-size", "100"], 2, "--buffer-size is an off-policy flag; it has no meaning for --algo mappo"),
    ([*TRAIN, "--happo-shared", "fpb"], 2, "--happo-shared only applies to --algo happo | hamdpo, not mappo"),
    ([*TRAIN, "--algo", "happo", "--mdpo-kl-coef", "2"], 2, "--mdpo-kl-coef only applies to --algo hamdpo"),
    ([*TRAIN, "--hetdps-interval", "5"], 2, "--hetdps-interval configures HetDPS, but --sharing is"),
    ([*OFF, "--algo", "omdpg", "--clip", "0.1"], 2, "--clip is an on-policy flag"),
    ([*OFF, "--algo", "matd3", "--hetdps-kind", "meta"], 2, "--hetdps-kind configures HetDPS"),
    ([*OFF, "--algo", "omdpg", "--polyak", "2"], 2, "--polyak must be > 0 and <= 1"),
    (["train", "--resume", "/nonexistent/run"], 2, "--resume /nonexistent/run: no such run folder"),
    ([*TRAIN, "--device", "cuda:0"], 2, "CUDA is not available"),
    (["train", "--bogus-flag"], 2, "unrecognized arguments: --bogus-flag"),
    (["nope"], 2, "invalid choice: 'nope'"),
    (["quantify", "--env", "nope"], 2, "unknown env 'nope'"),
    ([*QUANT, "--kind", "colour"], 2, "unknown kind 'colour'"),
    ([*QUANT, "--samples", "10"], 2, "--samples 10: need at least 16"),
    ([*QUANT, "--eval-samples", "0"], 2, "eval_samples (--eval-samples) must be >= 1"),
    ([*QUANT, "--train-samples", "-5"], 2, "train_samples (--train-samples) must be >= 1"),
    ([*QUANT, "--epochs", "0"], 2, "CVAEConfig.epochs (--epochs) must be >= 1"),
    ([*QUANT, "--early-stop", "0.7"], 2, "QuantifyConfig.validation (--early-stop) must be >= 0 and < 0.5"),
    ([*QUANT, "--early-stop", "soon"], 2, "--early-stop 'soon': give a fraction in [0, 0.5)"),
    ([*QUANT, "--noise", "1e36"], 2, "--noise must be >= 0 and <= 10"),
    ([*QUANT, "--noise", "-1"], 2, "--noise must be >= 0"),
    ([*QUANT, "--behaviour", "greedy"], 2, "--behaviour 'greedy'"),
    ([*QUANT, "--kind", "meta", "--checkpoint", "RUN"], 2, "--checkpoint gives trained policies to --kind policy"),
    ([*QUANT, "--kind", "policy", "--checkpoint", "/nonexistent/run"], 2, "/nonexistent/run"),
    (["plot", "/nonexistent/run"], 2, "RUN_DIR /nonexistent/run has no metrics.csv"),
    (["sweep", "run", "/nonexistent/s.toml"], 2, "sweep file /nonexistent/s.toml does not exist"),
    (["sweep", "status", "/nonexistent/s.toml"], 2, "sweep file /nonexistent/s.toml does not exist"),
    (["sweep", "run", "s.toml", "--jobs", "0"], 2, "--jobs must be >= 1 (got 0)"),
]


def _one_error(capsys, argv, code, text):
    rc = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == code, (rc, err)
    assert len(errors) == 1, err
    assert text in errors[0], errors[0]
    assert "Traceback" not in out + err
    return errors[0]


@pytest.mark.parametrize("argv,code,text", CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_gives_one_error_line_and_exit_code(capsys, argv, code, text, tmp_path):
    argv = [str(tmp_path / "run") if a == "RUN" else a for a in argv]
    if argv[0] in ("train", "quantify") and "--resume" not in argv and argv[1:2] != ["--bogus-flag"]:
        argv += ["--out-dir" if argv[0] == "train" else "--out", str(tmp_path / "out")]
    _one_error(capsys, argv, code, text)


def test_missing_optional_extras_are_usage_errors(capsys, monkeypatch, tmp_path):
    """SMAX / MaMuJoCo without their extra: the install command in one error line, exit 2."""
    import marl_backends.envs.mamujoco as mamujoco
    import marl_backends.envs.smax as smax

    monkeypatch.setattr(smax, "smax_available", lambda: False)
    monkeypatch.setattr(mamujoco, "mamujoco_available", lambda: False)
    line = _one_error(capsys, ["train", "--env", "smax_3s5z", "--no-tensorboard", "--out-dir", str(tmp_path)], 2,
                      "SMAX envs need JaxMARL")
    assert "pip install" in line
    line = _one_error(capsys, ["quantify", "--env", "mamujoco_halfcheetah_2x3", "--out", str(tmp_path / "q")], 2,
                      "MaMuJoCo tasks need the optional extra")
    assert "pip install" in line
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "smax missing" in out and "mamujoco missing" in out
    assert any(line.startswith("smax_3s5z") and line.endswith("(not installed)") for line in out.splitlines())


def test_envs_says_which_extras_are_installed(capsys):
    assert main(["envs"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.startswith("optional extras: ")
    from hetero.cli import EXTRAS

    extras = {e.strip().rsplit(" ", 1)[0] for e in head[len("optional extras: "):].split(",")}
    optional = set(tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
                   ["project"]["optional-dependencies"]) - {"dev"}
    assert extras == set(EXTRAS) == optional  # every extra of pyproject.toml, no other


def test_reused_run_name_and_quantify_out_are_refused(capsys, tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    _one_error(capsys, [*TRAIN, "--out-dir", str(tmp_path / "runs"), "--run-name", "x"], 2,
               f"--run-name x: {tmp_path / 'runs' / 'x'} already exists; continue it with `hetero train --resume")
    assert not (tmp_path / "runs" / "x_2").exists()
    out = tmp_path / "q"
    (out / "matrices").mkdir(parents=True)
    (out / "matrices" / "obs.npz").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    _one_error(capsys, [*QUANT, "--kind", "objective", "--out", str(out)], 2, "already holds a quantify run")
    assert main([*QUANT, "--kind", "objective", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "matrices").iterdir()) == ["objective.json", "objective.npz"]
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite removes only the previous run's files


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_tensorboard_flag_without_the_package(capsys, tmp_path):
    _one_error(capsys, [*TRAIN, "--tensorboard", "--out-dir", str(tmp_path)], 2, "--tensorboard needs the tensorboard")


def test_a_failed_run_exits_1_and_debug_shows_the_traceback(capsys, monkeypatch, tmp_path):
    import hetero.cli

    def boom(*a, **k):
        raise RuntimeError("CVAE exploded")

    monkeypatch.setattr(hetero.cli, "quantify", boom)
    line = _one_error(capsys, [*QUANT, "--kind", "meta", "--out", str(tmp_path / "a")], 1, "RuntimeError: CVAE exploded")
    assert "--debug" in line
    assert main([*QUANT, "--kind", "meta", "--out", str(tmp_path / "b"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "error: RuntimeError: CVAE exploded"


def test_plot_compare_and_at_are_checked(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("iteration,frames,train_return\n1,10,0.5\n")
    _one_error(capsys, ["plot", str(run), "--compare", str(tmp_path / "nope")], 2,
               f"--compare {tmp_path / 'nope'} has no metrics.csv")
    _one_error(capsys, ["plot", str(run), "--at", "3,x"], 2, "--at takes comma-separated update numbers")
    _one_error(capsys, ["plot", str(run), "--at", "3", "--kinds", "colour"], 2, "unknown kind 'colour' in --kinds")


def test_silent_changes_are_said(capsys, tmp_path):
    """--frames rounded up to whole iterations and plot --at's nearest checkpoint get a note."""
    assert main([*TRAIN, "--frames", "40", "--checkpoint-interval", "2", "--eval-interval", "0", "--eval-episodes", "2",
                 "--ppo-epochs", "1", "--critic-epochs", "1", "--out-dir", str(tmp_path), "--run-name", "r"]) == 0
    err = capsys.readouterr().err
    assert "note: --frames 40 is not a whole number of iterations (16 frames each" in err and "training 48 frames" in err
    assert main(["plot", str(tmp_path / "r"), "--at", "1", "--kinds", "policy", "--train-samples", "64",
                 "--formats", "png"]) == 0
    assert "note: --at 1: no checkpoint at update 1; using the nearest, update 2" in capsys.readouterr().err
