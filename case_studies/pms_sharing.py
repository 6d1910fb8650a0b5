"""Reward curves of MAPPO under four sharing paradigms on the PMS tasks (paper Sec. 6, Fig. 6 style).

Trains MAPPO with FPS, NPS, FPS+id and the true colour groups (``groups:env``) on each task and
seed, then plots the training return (mean +- std over seeds) against env frames.

Scaled-down run behind case_studies/results/pms_sharing (2 tasks x 4 sharings x 2 seeds x 120k frames,
~25 min on 2 shared CPU cores, one torch thread per run):
    .venv/bin/python case_studies/pms_sharing.py --tasks pms_15a_3c pms_15a_5c --seeds 0 1 --frames 120000
Paper scale (hours on CPU; use --device cuda where available):
    .venv/bin/python case_studies/pms_sharing.py --tasks pms_15a_3c pms_30a_3c pms_15a_5c pms_30a_5c \
        --seeds 0 1 2 --frames 5000000

Every run is a normal run folder under ``--runs-dir`` (default ``runs/pms_sharing``); re-running the script skips finished runs and
resumes interrupted ones from their checkpoints. Outputs: ``OUT/pms_sharing_rewards.png`` (and
.pdf) and ``OUT/summary.json`` (final training / evaluation return of every run).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from hetero.plotting import reward_bands
from marl_backends.trainers import TrainConfig, load_trainer, make_trainer, train
from marl_backends.trainers.run_io import read_metrics, write_json

SHARINGS = ("fps", "nps", "fps-id", "groups:env")
LABELS = {"fps": "FPS", "nps": "NPS", "fps-id": "FPS+id", "groups:env": "true colour groups"}


def run_one(task: str, sharing: str, seed: int, frames: int, runs_dir: Path, threads: int, device: str) -> Path:
    run = runs_dir / f"{task}_{sharing.replace(':', '-')}_s{seed}"
    cfg = TrainConfig(env=task, algo="mappo", sharing=sharing, seed=seed, frames=frames, threads=threads,
                      device=device, eval_interval=10, checkpoint_interval=10, tensorboard=False)
    if (run / "checkpoint.pt").exists():
        tr = load_trainer(run, frames=frames, threads=threads, device=device)
        if tr.iteration >= tr.cfg.iterations:
            return run
    else:
        run.mkdir(parents=True, exist_ok=True)
        tr = make_trainer(cfg)
        write_json(run / "config.json", cfg.to_dict())
    train(tr, run)
    return run


def plot(runs: dict, tasks: list[str], out: Path) -> None:
    panels = {task: {LABELS[sh]: [([r["frames"] for r in rows], [r["train_return"] for r in rows])
                                  for rows in (read_metrics(run) for (t, s, _), run in runs.items()
                                               if t == task and s == sh)]
                     for sh in SHARINGS} for task in tasks}
    reward_bands(panels, out / "pms_sharing_rewards", smooth=5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["pms_15a_3c", "pms_30a_3c", "pms_15a_5c", "pms_30a_5c"])
    p.add_argument("--sharings", nargs="+", default=list(SHARINGS), choices=SHARINGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="case_studies/results/pms_sharing", help="figure and summary.json")
    p.add_argument("--runs-dir", default="runs/pms_sharing", help="run folders (git-ignored runs/ by default)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for task in a.tasks:
        for sharing in a.sharings:
            for seed in a.seeds:
                runs[(task, sharing, seed)] = run_one(task, sharing, seed, a.frames, Path(a.runs_dir), a.threads,
                                                     a.device)
    summary = []
    for (task, sharing, seed), run in runs.items():
        rows = read_metrics(run)
        ev = [r["eval_return"] for r in rows if isinstance(r.get("eval_return"), float) and not math.isnan(r["eval_return"])]
        tail = [r["train_return"] for r in rows[-5:]]
        summary.append({"task": task, "sharing": sharing, "seed": seed, "frames": rows[-1]["frames"],
                        "final_train_return": float(np.nanmean(tail)), "final_eval_return": ev[-1] if ev else None,
                        "wall_s": rows[-1]["wall_s"]})
        print(json.dumps(summary[-1]))
    write_json(out / "summary.json", {"args": vars(a), "runs": summary})
    plot(runs, a.tasks, out)
    print(f"figure: {out / 'pms_sharing_rewards.png'}")


if __name__ == "__main__":
    main()
