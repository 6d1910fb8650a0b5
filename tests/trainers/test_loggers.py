"""TensorBoard / W&B sinks (grouped tags, step = frames), the missing-package warning and the
end-of-run summary (summary.json)."""
from __future__ import annotations

import argparse
import json
import sys

import pytest
from fake_env import fake_factory

from marl_backends.trainers.cli import add_train_arguments, run_train
from marl_backends.trainers.loggers import WandbSink, run_summary, scalars, tag

TINY = ["--env", "fake", "--num-envs", "2", "--rollout-steps", "8", "--frames", "48", "--hidden", "16,16",
        "--ppo-epochs", "1", "--critic-epochs", "1", "--eval-episodes", "2", "--eval-interval", "2", "--no-progress"]


def _train(argv):
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    return run_train(p.parse_args(argv), env_factory=fake_factory())


def test_tags_are_grouped():
    assert [tag(k) for k in ("train_return", "eval_return", "eval_win_rate", "hetdps_groups", "hetdps_round_s",
                             "actor_loss", "fps", "loss_true", "q")] == [
        "train/return", "eval/return", "eval/win_rate", "hetdps/groups", "hetdps/round_s", "loss/actor", "perf/fps",
        "loss/true", "train/q"]
    row = {"iteration": "3", "frames": "48", "train_return": "-1.5", "eval_return": "nan", "layout": "0-1", "x": "a"}
    assert scalars(row) == {"train/return": -1.5}  # counters, text and NaN are not logged


def test_summary_of_a_resumed_run_is_strict_json():
    rows = [{"iteration": 1, "frames": 100, "train_return": -3.0, "wall_s": 10.0, "layout": "0-0"},
            {"iteration": 2, "frames": 200, "train_return": -2.0, "eval_return": -1.0, "wall_s": 20.0, "layout": "0-0"},
            # resumed: the clock restarts
            {"iteration": 3, "frames": 300, "train_return": float("nan"), "eval_return": -4.0, "wall_s": 5.0,
             "layout": "0-1", "hetdps_rounds": 2.0}]
    s = run_summary(rows)
    assert s["wall_s"] == 25.0 and s["fps"] == 12.0 and s["frames"] == 300 and s["iterations"] == 3
    assert s["final_eval_return"] == -4.0 and s["best_eval_return"] == -1.0 and s["best_eval_frames"] == 200
    assert s["final_train_return"] == -2.5 and s["final_layout"] == "0-1" and s["final_groups"] == 2
    assert s["hetdps_rounds"] == 2
    json.dumps(s, allow_nan=False)
    assert run_summary([{"iteration": 1, "frames": 8, "train_return": "", "wall_s": 1.0}])["final_eval_return"] is None


def test_run_writes_summary_and_warns_once_without_tensorboard(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    run = _train([*TINY, "--tensorboard", "--out-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert err.count("warning: --tensorboard") == 1 and "--no-tensorboard" in err and "Traceback" not in err
    assert not (run / "tb").exists()
    s = json.loads((run / "summary.json").read_text())
    assert s["frames"] == 48 and s["final_eval_return"] is not None and s["final_layout"]
    assert "done: 3 iterations, 48 frames" in out and "best eval" in out


def test_tensorboard_events_grouped_by_frames(tmp_path):
    pytest.importorskip("tensorboard", reason="needs the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _train([*TINY, "--tensorboard", "--sharing", "hetdps:nps", "--hetdps-interval", "1", "--hetdps-samples", "32",
                  "--hetdps-rollouts", "1", "--out-dir", str(tmp_path)])
    ea = EventAccumulator(str(run / "tb"))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"train/return", "eval/return", "hetdps/groups", "loss/actor", "perf/fps"} <= tags
    assert not any("/" not in t for t in tags)  # every tag in a group
    assert [e.step for e in ea.Scalars("train/return")] == [16, 32, 48]  # env frames, not iterations
    assert [e.step for e in ea.Scalars("eval/return")] == [32, 48]


def test_wandb_offline_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="needs the wandb extra")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    sink = WandbSink(tmp_path, "hetero-test", {"algo": "mappo"})
    sink.log({"iteration": 1, "frames": 16, "train_return": -2.0, "hetdps_groups": 3})
    sink.log({"iteration": 2, "frames": 32, "train_return": -1.0, "eval_return": -0.5})
    sink.close()
    import wandb

    wandb.teardown()  # flush and stop the W&B service so the offline file is complete
    run_id = (tmp_path / "wandb_id").read_text().strip()
    (data,) = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    raw = data.read_bytes()
    for key in (b"train/return", b"eval/return", b"hetdps/groups", b"frames", b"hetero-test"):
        assert key in raw
