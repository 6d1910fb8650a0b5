"""`hetero train --algo omdpg|matd3|... --sharing hetdps[:INIT]`: rounds in the run folder, the
layout they set, exact resume with HetDPS state, and the errors for bad flag combinations."""
import argparse
import csv
import json

import pytest
import torch

from marl_backends.offpolicy.checkpoint import load_offpolicy_trainer
from marl_backends.offpolicy.cli import HETDPS_DEFAULTS
from marl_backends.trainers import cli

PER_IT = 4 * 5  # num_envs x train_interval
BASE = ["--env", "spread_v4", "--num-envs", "4", "--hidden", "16,16", "--batch-size", "32", "--warmup-steps", "40",
        "--train-interval", "5", "--eval-interval", "4", "--eval-episodes", "2", "--checkpoint-interval", "4",
        "--buffer-size", "400", "--n-step", "3", "--pool-size", "200", "--no-progress", "--no-tensorboard"]
HET = BASE + ["--hetdps-samples", "64"]  # small CVAE training sets


def _args(argv):
    p = argparse.ArgumentParser()
    cli.add_train_arguments(p)
    return p.parse_args(argv)


def _rows(run, drop=("wall_s", "hetdps_round_s")):
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def _rounds(run):
    return [json.loads(x) for x in (run / "hetdps_rounds.jsonl").read_text().splitlines()]


def _stable(rounds):  # drop timings
    out = []
    for r in rounds:
        r = {k: v for k, v in r.items() if k != "seconds"}
        r["info"] = {k: v for k, v in r["info"].items() if k != "quantify_s"}
        out.append(r)
    return out


def _actor_groups(run):
    sd = torch.load(run / "checkpoint.pt", weights_only=False)["trainer"]["actor"]
    return {v.shape[0] for k, v in sd.items() if k.endswith("weight") and v.dim() == 3}


@pytest.mark.parametrize("algo", ["omdpg", "matd3"])
def test_hetdps_rounds_in_run_folder_and_layout(tmp_path, algo):
    run = cli.run_train(_args(HET + ["--algo", algo, "--sharing", "hetdps:nps", "--hetdps-interval", "2",
                                      "--frames", str(6 * PER_IT), "--out-dir", str(tmp_path), "--run-name", "r"]))
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["run"]["sharing"] == "hetdps:nps" and cfg["run"]["hetdps_init"] == "nps"
    assert cfg["run"]["hetdps_interval"] == 2 and cfg["run"]["hetdps_kind"] == "meta"
    assert cfg["run"]["hetdps_rollouts"] == HETDPS_DEFAULTS["hetdps_rollouts"] == 1
    rounds = _rounds(run)
    assert [r["update"] for r in rounds] == [1, 3, 5]  # from iteration 1; none at the last (6)
    assert all("error" not in r["info"] and r["info"]["mode"] == "model-based" for r in rounds)  # spread: the model
    assert rounds[0]["plan"]["old_layout"] == [0, 1, 2, 3]  # the first round starts from NPS
    assert len(list(run.glob("hetdps_round_*.npz"))) == 3
    rows = _rows(run, drop=())
    last = rounds[-1]["labels"]
    assert rows[-1]["hetdps_rounds"] == "3" and rows[-1]["layout"] == "-".join(map(str, last))
    assert rows[-1]["hetdps_groups"] == str(len(set(last))) and "hetdps_round_s" in rows[0]
    assert _actor_groups(run) == {len(set(last))}  # the actors really have the round's groups
    tr = load_offpolicy_trainer(run)
    assert tr.layout == tuple(last) and len(tr.hetdps.history) == 3


def test_hetdps_grouper_changes_the_layout(tmp_path):
    """From FPS (``--sharing hetdps --hetdps-init fps``), SePS with k=2 splits the shared actor."""
    run = cli.run_train(_args(HET + ["--algo", "matd3-omq", "--sharing", "hetdps", "--hetdps-init", "fps",
                                      "--grouper", "seps", "--seps-k", "2", "--seps-samples", "64",
                                      "--hetdps-interval", "3", "--frames", str(4 * PER_IT),
                                      "--out-dir", str(tmp_path), "--run-name", "s"]))
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["run"]["sharing"] == "hetdps:fps" and cfg["resolved"]["layout"] == [0, 0, 0, 0]
    (rnd,) = _rounds(run)  # SePS groups once, at the first round (iteration 1)
    assert rnd["update"] == 1 and rnd["plan"]["old_layout"] == [0, 0, 0, 0] and len(set(rnd["labels"])) == 2
    layouts = [r["layout"] for r in _rows(run)]
    assert set(layouts) == {"-".join(map(str, rnd["labels"]))}
    assert _actor_groups(run) == {2}


def test_hetdps_half_run_plus_resume_equals_uninterrupted_run(tmp_path):
    k, cut = 10, 6  # rounds at 1, 4, 7; the cut at 6 falls between gathering the 2 pools for round 7
    flags = HET + ["--algo", "omdpg", "--sharing", "hetdps:nps", "--hetdps-interval", "3", "--hetdps-rollouts", "2",
                    "--eval-interval", "6"]  # the half run evaluates at its end: so must the full one
    full = cli.run_train(_args(flags + ["--frames", str(k * PER_IT), "--out-dir", str(tmp_path), "--run-name", "full"]))
    half = cli.run_train(_args(flags + ["--frames", str(cut * PER_IT), "--out-dir", str(tmp_path),
                                        "--run-name", "half"]))
    ck = torch.load(half / "checkpoint.pt", weights_only=False)
    assert len(ck["hetdps"]["pools"]) == 1 and len(ck["hetdps"]["history"]) == 2  # one pool gathered for round 7
    assert torch.load(half / "checkpoints" / "iter_000004.pt", weights_only=False)["hetdps"]["pools"] == []
    with pytest.raises(ValueError, match="--hetdps-interval cannot be changed"):
        cli.run_train(_args(["--resume", str(half), "--hetdps-interval", "5", "--no-progress"]))
    torch.manual_seed(999)  # a resumed process starts from arbitrary global RNG state
    assert cli.run_train(_args(["--resume", str(half), "--frames", str(k * PER_IT), "--no-progress"])) == half
    ra, rb = _rounds(full), _rounds(half)
    assert [r["update"] for r in ra] == [1, 4, 7] and _stable(ra) == _stable(rb)
    assert len({tuple(r["labels"]) for r in ra} | {(0, 1, 2, 3)}) > 1  # the layout did change
    a, b = _rows(full), _rows(half)
    assert len(a) == k and a == b
    ca = torch.load(full / "checkpoint.pt", weights_only=False)
    cb = torch.load(half / "checkpoint.pt", weights_only=False)
    assert ca["trainer"]["layout"] == cb["trainer"]["layout"] == ra[-1]["labels"]
    for name in ("actor", "critic", "actor_tgt"):
        for key, v in ca["trainer"][name].items():
            assert torch.equal(v, cb["trainer"][name][key]), (name, key)
    assert torch.equal(ca["rng"], cb["rng"])


@pytest.mark.parametrize("extra, msg", [
    (["--hetdps-interval", "2"], "--hetdps-interval configures HetDPS.*--sharing hetdps"),
    (["--sharing", "groups:env", "--grouper", "seps"], "--grouper configures HetDPS"),
    (["--sharing", "hetdps:nps", "--hetdps-init", "fps"], "already names the initial layout"),
    (["--sharing", "hetdps", "--grouper", "seps"], "--seps-k"),
    (["--sharing", "hetdps", "--hetdps-kind", "colour"], "--hetdps-kind"),
    (["--sharing", "hetdps", "--hetdps-interval", "0"], "--hetdps-interval must be >= 1"),
    (["--sharing", "hetdps:groups:0,1"], "hetdps:groups:0,1"),
])
def test_bad_hetdps_combinations_are_refused(tmp_path, extra, msg):
    with pytest.raises(ValueError, match=msg):
        cli.run_train(_args(BASE + ["--algo", "omdpg", "--frames", str(PER_IT), "--out-dir", str(tmp_path), *extra]))
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_hetero_train_entry_point_and_plot(tmp_path):
    """`hetero train --algo omdpg --sharing hetdps:nps ...` then `hetero plot RUN_DIR` draws the rounds."""
    from hetero.cli import main

    assert main(["train", *HET, "--algo", "omdpg", "--sharing", "hetdps:nps", "--hetdps-interval", "2",
                 "--frames", str(4 * PER_IT), "--out-dir", str(tmp_path), "--run-name", "e"]) == 0
    run = tmp_path / "e"
    assert [r["update"] for r in _rounds(run)] == [1, 3]
    assert main(["plot", str(run), "--formats", "png"]) == 0
    for name in ("hetdps_matrices.png", "group_timeline.png", "rewards.png"):
        assert (run / "figures" / name).stat().st_size > 0


def test_resolve_hetdps_defaults_and_static_runs():
    from marl_backends.offpolicy.cli import resolve_hetdps

    run = {"sharing": "hetdps"}
    h = resolve_hetdps(run)
    assert run["sharing"] == "hetdps:fps" and h["hetdps_init"] == "fps"
    assert h["hetdps_interval"] == 400 and h["hetdps_rollouts"] == 1 and h["hetdps_kind"] == "meta"
    run = {"sharing": "HetDPS:groups:env", "hetdps_kind": "policy"}
    assert resolve_hetdps(run)["hetdps_kind"] == "policy" and run["sharing"] == "hetdps:groups:env"
    run = {"sharing": "nps"}
    assert resolve_hetdps(run) is None and run == {"sharing": "nps"}  # static runs stay as they were
