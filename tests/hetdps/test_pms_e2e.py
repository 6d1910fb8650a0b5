"""End to end on pms_15a_3c (test-sized): HetDPS from FPS and from NPS reaches the three colour
groups at its first round (update 1) and keeps them, with the default kind: Meta-Het, which PMS
evaluates model-based (every agent's meta-transition at the same (s, a, S^E)), so the answer does
not wait for trained policies."""
from __future__ import annotations

import argparse
import json

import pytest
from sklearn.metrics import adjusted_rand_score

from marl_backends.trainers.cli import add_train_arguments, run_train

COLOURS = (0,) * 5 + (1,) * 5 + (2,) * 5


def _args(tmp_path, init):
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    return p.parse_args([
        "--env", "pms_15a_3c", "--sharing", "hetdps", "--hetdps-init", init,
        "--hetdps-interval", "2", "--hetdps-rollouts", "1", "--hetdps-samples", "400", "--frames", "2400",
        "--num-envs", "4", "--rollout-steps", "100", "--hidden", "32,32", "--ppo-epochs", "1", "--critic-epochs", "1",
        "--eval-interval", "0", "--checkpoint-interval", "0", "--no-progress", "--no-tensorboard", "--threads", "1",
        "--out-dir", str(tmp_path)])


@pytest.mark.parametrize("init", ["fps", "nps"])
def test_pms_hetdps_finds_and_keeps_colours(tmp_path, init):
    run = run_train(_args(tmp_path, init))
    rounds = [json.loads(line) for line in (run / "hetdps_rounds.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rounds] == [1, 3, 5]
    assert all(adjusted_rand_score(COLOURS, r["labels"]) == 1.0 for r in rounds), [r["labels"] for r in rounds]
    first = rounds[0]["plan"]["actions"]
    assert sorted(first) == (["keep", "split", "split"] if init == "fps" else ["merge"] * 3)
    assert all(r["plan"]["actions"] == ["keep"] * 3 for r in rounds[1:])  # kept in later rounds
    assert rounds[0]["info"]["mode"] == "model-based"


def test_rounds_do_not_read_the_env_type_labels(tmp_path):
    """The env's ground-truth types (EnvSpec.groups) are for reports only: scrambling them changes no
    round's grouping."""
    from dataclasses import replace

    from marl_backends.envs import make_env

    def scrambled(num_envs, seed):  # noqa: ANN001, ANN202
        env = make_env("pms_15a_3c", num_envs=num_envs, seed=seed)
        env.spec = replace(env.spec, groups=(2, 0, 1, 1, 0) * 3)
        return env

    plain = run_train(_args(tmp_path / "plain", "nps"))
    other = run_train(_args(tmp_path / "scrambled", "nps"), env_factory=scrambled)
    labels = [[json.loads(x)["labels"] for x in (run / "hetdps_rounds.jsonl").read_text().splitlines()]
              for run in (plain, other)]
    assert labels[0] == labels[1] and len(labels[0]) == 3
