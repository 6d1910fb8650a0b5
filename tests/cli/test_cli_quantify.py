"""`hetero quantify` / `hetero envs` end to end on tiny settings."""
import json
import re

import numpy as np
import pytest

from hetero.cli import format_matrix, main

TINY = ["--samples", "200", "--train-samples", "200", "--eval-samples", "100", "--epochs", "2", "--quiet"]


def test_quantify_writes_a_self_describing_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["quantify", "--env", "spread_v4", "--kind", "objective,meta", "--out", str(out), *TINY]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["env"] == "spread_v4" and cfg["kinds"] == ["objective", "meta"] and cfg["seed"] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kinds"]["objective"]["mode"] == "model-based"
    assert summary["kinds"]["meta"]["mode"] == "model-based"  # spread evaluates every part of Meta-Het
    for kind in ("objective", "meta"):
        m = np.load(out / "matrices" / f"{kind}.npz")
        assert m["matrix"].shape == (4, 4) and m["stderr"].shape == (4, 4)
        assert json.loads((out / "matrices" / f"{kind}.json").read_text())["kind"] == kind
        assert (out / "figures" / f"{kind}.png").stat().st_size > 0
        assert (out / "figures" / f"{kind}.pdf").stat().st_size > 0
    text = capsys.readouterr().out
    assert "Objective-Het [model-based] on spread_v4" in text and "groups:" in text


def test_same_seed_same_matrix_through_the_cli(tmp_path):
    for name in ("a", "b"):
        main(["quantify", "--env", "spread_v1", "--kind", "obs", "--out", str(tmp_path / name), "--no-plots", *TINY])
    a, b = (np.load(tmp_path / n / "matrices" / "obs.npz")["matrix"] for n in ("a", "b"))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_unknown_env_and_kind_are_clear_errors(tmp_path, capsys):
    assert main(["quantify", "--env", "pms_15a_4c", "--out", str(tmp_path), *TINY]) == 2
    assert re.search("^error: unknown env 'pms_15a_4c'.*pms_15a_3c", capsys.readouterr().err, re.M)
    assert main(["quantify", "--env", "pms_15a_3c", "--kind", "colour", "--out", str(tmp_path), *TINY]) == 2
    assert "error: unknown kind 'colour'" in capsys.readouterr().err


def test_envs_lists_our_scenarios(capsys):
    assert main(["envs"]) == 0
    text = capsys.readouterr().out
    for name in ("pms_15a_3c", "pms_30a_5c_shuffle", "spread_v0", "spread_v6", "vmas_balance"):
        assert name in text


def test_format_matrix_orders_by_group():
    m = np.array([[0, 1, 5], [1, 0, 5], [5, 5, 0.0]])
    lines = format_matrix(m, (1, 0, 1)).splitlines()
    assert lines[0].split() == ["1", "0", "2"]
    assert "|" in lines[1]


@pytest.mark.parametrize("algo", ["mappo", "matd3"])
def test_policy_het_from_a_trained_checkpoint(tmp_path, algo):
    """`hetero train` then `hetero quantify --kind policy --checkpoint RUN_DIR` (on- and off-policy)."""
    train = ["train", "--env", "spread_v4", "--algo", algo, "--frames", "400", "--num-envs", "4", "--hidden", "16,16",
             "--out-dir", str(tmp_path), "--run-name", algo, "--no-progress"]
    train += (["--sharing", "nps", "--rollout-steps", "50"] if algo == "mappo" else
              ["--continuous", "--batch-size", "32", "--warmup-steps", "100", "--train-interval", "10"])
    assert main(train) == 0
    run = tmp_path / algo
    out = tmp_path / "q"
    assert main(["quantify", "--env", "spread_v4", "--kind", "policy,snd", "--checkpoint", str(run),
                 "--behaviour", f"checkpoint:{run}", "--out", str(out), "--no-plots", *TINY,
                 *([] if algo == "mappo" else ["--continuous"])]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kinds"]["policy"]["mode"] == "model-based"
    m = np.load(out / "matrices" / "policy.npz")["matrix"]
    assert m.shape == (4, 4) and (m[~np.eye(4, dtype=bool)] > 0).all()  # NPS / per-agent actors differ
    snd = summary["snd"]  # SND on the same checkpoint: TV for discrete MAPPO, W2 for continuous MATD3
    d = np.asarray(snd["matrix"])
    assert snd["metric"] == ("tv" if algo == "mappo" else "w2") and d.shape == (4, 4) and (np.diag(d) == 0).all()
    assert snd["snd"] > 0 and snd["snd"] == pytest.approx(d.sum() / 12, rel=1e-5)


def test_checkpoint_of_another_env_is_refused(tmp_path, capsys):
    main(["train", "--env", "spread_v0", "--algo", "mappo", "--frames", "200", "--num-envs", "2", "--rollout-steps", "50",
          "--hidden", "8,8", "--out-dir", str(tmp_path), "--run-name", "r", "--no-progress"])
    assert main(["quantify", "--env", "spread_v4", "--kind", "policy", "--checkpoint", str(tmp_path / "r"), *TINY]) == 2
    assert "trained on 'spread_v0', not --env 'spread_v4'" in capsys.readouterr().err
