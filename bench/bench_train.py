"""Training throughput (env frames per second, whole run: rollouts + updates + final eval).

Reproduce (CPU):
    .venv/bin/python bench/bench_train.py                 # all four cases, writes bench/results_train.json
    .venv/bin/python bench/bench_train.py --cases balance-mappo-fps --threads 2

Cases:
- ``pms-*``: ``pms_15a_3c`` (15 agents, discrete) with our defaults (HARL App. K Tables 4/6: 20
  envs x 200 steps = 4000 frames per batch, [128, 128] ReLU + LayerNorm, 5 actor and 5 critic
  epochs on 1 minibatch).
- ``balance-*``: VMAS ``balance`` (VMAS's default 3 agents, continuous), 6000 frames per batch
  from 60 envs, 3 passes of 15 minibatches of 400 (45 SGD steps per batch, for actor and
  critic alike), MLP 256x256 Tanh, lr 5e-5, 60k frames. This is *not* BenchMARL's work: its
  ``on_policy_n_minibatch_iters: 45`` means 45 passes (675 SGD steps per batch) on 4 agents, so
  the "7.6x BenchMARL" once derived from these cases compared unequal work. The like-for-like
  comparison (same work, whole processes, one thread) is ``bench/bench_benchmarl.py``.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from marl_backends.trainers import TrainConfig, make_trainer, train

BALANCE = dict(env="vmas_balance", continuous=True, num_envs=60, rollout_steps=100, num_minibatches=15, ppo_epochs=3,
               critic_minibatches=15, critic_epochs=3, hidden=(256, 256), activation="tanh", feature_norm=False,
               layer_norm=False, lr=5e-5, critic_lr=5e-5, frames=60_000)
PMS = dict(env="pms_15a_3c", frames=40_000)
CASES = {
    "pms-mappo-fps": dict(PMS, algo="mappo", sharing="fps"),
    "pms-happo-nps": dict(PMS, algo="happo", sharing="nps"),
    "balance-mappo-fps": dict(BALANCE, algo="mappo", sharing="fps"),
    "balance-happo-nps": dict(BALANCE, algo="happo", sharing="nps"),
}


def run_case(name: str, threads: int, frames: int | None) -> dict:
    kw = dict(CASES[name], progress=False, tensorboard=False, eval_interval=0, eval_episodes=10,
              checkpoint_interval=0, threads=threads, seed=0)
    if frames:
        kw["frames"] = frames
    cfg = TrainConfig(**kw)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        tr = make_trainer(cfg)
        train(tr, d)
        wall = time.perf_counter() - t0
        rows = list(csv_rows(Path(d) / "metrics.csv"))
    roll = sum(float(r["rollout_s"]) for r in rows)
    upd = sum(float(r["update_s"]) for r in rows)
    return {"case": name, "frames": tr.frames, "wall_s": round(wall, 2), "fps": round(tr.frames / wall, 1),
            "rollout_s": round(roll, 2), "update_s": round(upd, 2),
            "final_train_return": float(rows[-1]["train_return"]), "eval_return": float(rows[-1]["eval_return"]),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}}


def csv_rows(path: Path):  # noqa: ANN201
    import csv
    with open(path, newline="") as f:
        yield from csv.DictReader(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch default; 1 avoids oversubscription on shared cores)")
    p.add_argument("--frames", type=int, default=0, help="override every case's frame budget")
    p.add_argument("--out", default=str(Path(__file__).with_name("results_train.json")))
    a = p.parse_args()
    results = []
    for name in a.cases:
        r = run_case(name, a.threads, a.frames)
        print(json.dumps({k: v for k, v in r.items() if k != "config"}), flush=True)
        results.append(r)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version()}
    Path(a.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
