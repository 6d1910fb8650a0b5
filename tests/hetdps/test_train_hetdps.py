"""`--sharing hetdps` through the training CLI: rounds in the run folder, resume, config errors."""
from __future__ import annotations

import argparse
import json

import pytest
from fake_env import fake_factory

from marl_backends.trainers import TrainConfig, load_trainer
from marl_backends.trainers.cli import add_train_arguments, run_train
from marl_backends.trainers.run_io import read_metrics

TINY = ["--env", "fake", "--num-envs", "4", "--rollout-steps", "8", "--hidden", "16,16", "--ppo-epochs", "1",
        "--critic-epochs", "1", "--eval-episodes", "2", "--eval-interval", "0", "--no-progress", "--no-tensorboard",
        "--hetdps-samples", "64", "--hetdps-interval", "2", "--hetdps-rollouts", "2", "--checkpoint-interval", "1"]


def _parse(argv):
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    return p.parse_args(argv)


@pytest.mark.parametrize("init", ["fps", "nps"])
def test_train_with_hetdps_logs_rounds(tmp_path, init):
    run = run_train(_parse([*TINY, "--sharing", "hetdps", "--hetdps-init", init, "--frames", "128",
                            "--out-dir", str(tmp_path)]), env_factory=fake_factory())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["resolved"]["sharing"] == f"hetdps:{init}" and cfg["hetdps_kind"] == "meta"
    rounds = [json.loads(line) for line in (run / "hetdps_rounds.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rounds] == [1, 3]  # from update 1; none at the last update (4)
    assert all(r["seconds"] > 0 and "mode" in r["info"] and "measure" in r["info"] for r in rounds)
    assert len(list(run.glob("hetdps_round_*.npz"))) == 2
    rows = read_metrics(run)
    assert rows[-1]["hetdps_rounds"] == 2 and rows[-1]["layout"] == "-".join(map(str, rounds[-1]["labels"]))
    tr = load_trainer(run, fake_factory())
    assert tr.layout == tuple(rounds[-1]["labels"]) and len(tr.hetdps.history) == 2


def test_resume_continues_layout_and_round_history(tmp_path):
    flags = [*TINY, "--sharing", "hetdps:nps", "--hetdps-interval", "3", "--hetdps-rollouts", "2"]
    full = run_train(_parse([*flags, "--frames", "192", "--out-dir", str(tmp_path / "a")]), env_factory=fake_factory())
    part = run_train(_parse([*flags, "--frames", "96", "--out-dir", str(tmp_path / "b")]), env_factory=fake_factory())
    # stopped after update 3: one of the two pools for the round at 4 is already gathered and checkpointed
    assert len(load_trainer(part, fake_factory()).hetdps.pools) == 1
    run_train(_parse(["--resume", str(part), "--frames", "192", "--no-progress"]), env_factory=fake_factory())
    ra = (full / "hetdps_rounds.jsonl").read_text().splitlines()
    rb = (part / "hetdps_rounds.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k not in ("seconds",)} for x in ra]
    stripb = [{k: v for k, v in json.loads(x).items() if k not in ("seconds",)} for x in rb]
    for r in strip + stripb:
        r["info"].pop("quantify_s", None)
    assert strip == stripb and [r["update"] for r in strip] == [1, 4]
    ma, mb = read_metrics(full), read_metrics(part)
    assert [r["actor_loss"] for r in ma] == [r["actor_loss"] for r in mb]
    assert [r["layout"] for r in ma] == [r["layout"] for r in mb]


@pytest.mark.parametrize("grouper", ["seps", "madps"])
def test_baseline_groupers_through_cli(tmp_path, grouper):
    run = run_train(_parse([*TINY, "--sharing", "hetdps:nps", "--grouper", grouper, "--seps-k", "2", "--frames", "64",
                            "--madps-fusion", "0.5", "--madps-division", "5", "--out-dir", str(tmp_path)]),
                    env_factory=fake_factory())
    rounds = [json.loads(line) for line in (run / "hetdps_rounds.jsonl").read_text().splitlines()]
    assert len(rounds) == 1 and "error" not in rounds[0]["info"]
    if grouper == "seps":
        assert len(set(rounds[0]["labels"])) == 2


@pytest.mark.parametrize("kw, flag", [
    ({"sharing": "hetdps", "grouper": "seps"}, "--seps-k"),
    ({"sharing": "fps", "grouper": "madps"}, "--sharing hetdps"),
    ({"sharing": "hetdps", "merge": "mean"}, "--merge"),
    ({"sharing": "hetdps", "hetdps_kind": "colour"}, "--hetdps-kind"),
    ({"sharing": "hetdps", "grouper": "madps", "madps_fusion": 3.0, "madps_division": 1.0}, "--madps-fusion"),
    ({"sharing": "hetdps", "hetdps_interval": 0}, "--hetdps-interval"),
])
def test_config_errors_name_the_flag(kw, flag):
    with pytest.raises(ValueError, match=flag):
        TrainConfig(**kw)


def test_bad_initial_layout_named(tmp_path):
    with pytest.raises(ValueError, match="hetdps:groups:0,1"):
        run_train(_parse([*TINY, "--sharing", "hetdps:groups:0,1", "--out-dir", str(tmp_path)]), env_factory=fake_factory())
