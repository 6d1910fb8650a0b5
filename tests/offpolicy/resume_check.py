"""Shared check of the off-policy CLI's exact resume: K/2 iterations + resume + K/2 == K."""
from __future__ import annotations

import argparse
import csv

import torch

from marl_backends.trainers import cli


def train_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli.add_train_arguments(p)
    return p.parse_args(argv)


def metric_rows(run, drop=("wall_s",)) -> list[dict]:  # noqa: ANN001
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def half_plus_resume_equals_full(tmp_path, flags: list[str], k: int, per_it: int):  # noqa: ANN001, ANN201
    """Train K iterations in one go and K/2 + resume + K/2; assert identical metrics, networks and
    RNG. Returns (full run dir, its metric rows, full checkpoint, half checkpoint)."""
    full = cli.run_train(train_args(flags + ["--frames", str(k * per_it), "--out-dir", str(tmp_path), "--run-name", "full"]))
    half = cli.run_train(train_args(flags + ["--frames", str(k // 2 * per_it), "--out-dir", str(tmp_path),
                                             "--run-name", "half"]))
    torch.manual_seed(999)  # a resumed process starts from arbitrary global RNG state
    assert cli.run_train(train_args(["--resume", str(half), "--frames", str(k * per_it), "--no-progress"])) == half
    a, b = metric_rows(full), metric_rows(half)
    assert len(a) == k and a == b
    ca = torch.load(full / "checkpoint.pt", weights_only=False)
    cb = torch.load(half / "checkpoint.pt", weights_only=False)
    for name in ("actor", "critic", "actor_tgt", "critic_tgt"):
        for key, v in ca["trainer"][name].items():
            assert torch.equal(v, cb["trainer"][name][key]), (name, key)
    assert torch.equal(ca["rng"], cb["rng"])
    return full, a, ca, cb
