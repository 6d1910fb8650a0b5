"""End to end on pms_15a_3c (test-sized): HetDPS from FPS and from NPS reaches the three colour
groups and keeps them. Test-sized route: the Objective-Het kind, which PMS evaluates model-based
(every agent's reward at the same (s, a)), separates the colours from round one. The Meta-Het
route needs goal-directed behaviour first and runs at script size (case_studies/hetdps_pms.py)."""
from __future__ import annotations

import argparse
import json

import pytest
from sklearn.metrics import adjusted_rand_score

from marl_backends.trainers.cli import add_train_arguments, run_train

COLOURS = (0,) * 5 + (1,) * 5 + (2,) * 5


@pytest.mark.parametrize("init", ["fps", "nps"])
def test_pms_hetdps_finds_and_keeps_colours(tmp_path, init):
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    args = p.parse_args([
        "--env", "pms_15a_3c", "--sharing", "hetdps", "--hetdps-init", init, "--hetdps-kind", "objective",
        "--hetdps-interval", "2", "--hetdps-rollouts", "1", "--hetdps-samples", "400", "--frames", "2400",
        "--num-envs", "4", "--rollout-steps", "100", "--hidden", "32,32", "--ppo-epochs", "1", "--critic-epochs", "1",
        "--eval-interval", "0", "--checkpoint-interval", "0", "--no-progress", "--no-tensorboard", "--threads", "1",
        "--out-dir", str(tmp_path)])
    run = run_train(args)
    rounds = [json.loads(line) for line in (run / "hetdps_rounds.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rounds] == [2, 4, 6]
    assert all(adjusted_rand_score(COLOURS, r["labels"]) == 1.0 for r in rounds), [r["labels"] for r in rounds]
    first = rounds[0]["plan"]["actions"]
    assert sorted(first) == (["keep", "split", "split"] if init == "fps" else ["merge"] * 3)
    assert all(r["plan"]["actions"] == ["keep"] * 3 for r in rounds[1:])  # kept in later rounds
    assert rounds[0]["info"]["mode"] == "model-based"
