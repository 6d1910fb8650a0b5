"""Case study: HetDPS inside BenchMARL vs BenchMARL's own shared and non-shared MAPPO policies (issue 13).

Task: PMS 15a_3c (15 agents, 3 colours, each colour its own landmark) through BenchMARL's VMAS
task interface (:func:`marl_backends.benchmarl.tasks.pms_task`), continuous actions, BenchMARL
MAPPO with its defaults except the budget-related settings below (same for every method):
4000 frames per batch (80 envs x 50 steps), 5 passes of one 4000-frame minibatch per batch,
MLP 128x128 Tanh, lr 5e-4. Methods:

- ``shared``: BenchMARL MlpConfig, ``share_policy_params=True`` (FPS).
- ``nonshared``: BenchMARL MlpConfig, ``share_policy_params=False`` (NPS).
- ``hetdps``: GroupedMlpConfig starting from FPS + HetDPSCallback (Meta-Het, a round every 5
  iterations on the last 2 batches, local state = position and velocity).

Each run records the training return (BenchMARL's collection ``mean_return``) per iteration, its
frames/s, and for HetDPS the seconds spent in the callback and the rounds (groups found).

Reproduce (one run per process, one thread; results in case_studies/results/benchmarl/):
    python -m case_studies.benchmarl_hetdps --method hetdps --seed 0 --frames 80000
    python -m case_studies.benchmarl_hetdps --all --seeds 0 1 --frames 80000   # 6 runs, sequential
    python -m case_studies.benchmarl_hetdps --summarize                       # table + curves
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("results") / "benchmarl"
METHODS = ("hetdps", "shared", "nonshared")

try:  # BenchMARL pickles its callbacks: module-level class
    from benchmarl.experiment import Callback as _Callback
except ImportError:
    _Callback = object


class CurveRecorder(_Callback):
    """Training return, frames and wall time after every iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self._t0 = None

    def on_setup(self) -> None:
        self._t0 = time.perf_counter()

    def on_train_end(self, training_td, group: str) -> None:  # noqa: ANN001
        e = self.experiment
        self.rows.append({"iteration": e.n_iters_performed + 1, "frames": e.total_frames,
                          "train_return": float(e.mean_return), "wall_s": time.perf_counter() - self._t0})
        if (e.n_iters_performed + 1) % 5 == 0:
            print(json.dumps(self.rows[-1]), flush=True)


def run(method: str, seed: int, frames: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    from marl_backends.benchmarl import GroupedMlpConfig
    from marl_backends.benchmarl.callbacks import HetDPSCallback
    from marl_backends.benchmarl.tasks import pms_colours, pms_task

    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch, cfg.on_policy_n_envs_per_worker = frames, 4000, 80
    cfg.on_policy_n_minibatch_iters, cfg.on_policy_minibatch_size, cfg.lr = 5, 4000, 5e-4
    cfg.evaluation, cfg.render, cfg.loggers, cfg.create_json, cfg.checkpoint_at_end = False, False, [], False, False
    cfg.share_policy_params = method != "nonshared"
    mlp = MlpConfig(num_cells=[128, 128], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    curve = CurveRecorder()
    callbacks = [curve]
    model = mlp
    if method == "hetdps":
        het = HetDPSCallback(interval=5, pool_rollouts=2, local_state_dims=4, plots=False, seed=seed)
        callbacks.append(het)
        model = GroupedMlpConfig(num_cells=[128, 128], activation="tanh", init_layout="fps", seed=seed)
    with tempfile.TemporaryDirectory() as d:
        cfg.save_folder = d
        exp = Experiment(task=pms_task("15a_3c"), algorithm_config=MappoConfig.get_from_yaml(), model_config=model,
                         critic_model_config=mlp, seed=seed, config=cfg, callbacks=callbacks)
        t0 = time.perf_counter()
        exp.run()
        wall = time.perf_counter() - t0
    res = {"method": method, "seed": seed, "frames": exp.total_frames, "wall_s": wall, "loop_s": exp.total_time,
           "fps": exp.total_frames / exp.total_time, "curve": curve.rows, "true_colours": list(pms_colours("15a_3c"))}
    if method == "hetdps":
        res["callback_s"] = het.seconds
        res["fps_without_callback"] = exp.total_frames / (exp.total_time - het.seconds)
        res["rounds"] = [{"iteration": r.update, "labels": list(r.labels), "actions": r.plan["actions"],
                          "seconds": r.seconds, "p_value": r.info.get("p_value")} for r in het.hetdps.history]
    return res


def summarize() -> None:
    from hetero.plotting import reward_bands  # noqa: F401 (same figure style as the PMS case study)
    from hetero.plotting import curves, trailing_mean

    runs = [json.loads(p.read_text()) for p in sorted(OUT.glob("run_*.json"))]
    if not runs:
        raise SystemExit(f"no runs in {OUT}; run --all first.")
    lines = ["| method | seeds | frames | final return (mean of last 5 its, mean +/- sd over seeds) | frames/s | groups found |",
             "|---|---|---|---|---|---|"]
    series = {}
    for m in METHODS:
        rs = [r for r in runs if r["method"] == m]
        if not rs:
            continue
        finals = [float(np.nanmean([c["train_return"] for c in r["curve"][-5:]])) for r in rs]
        groups = "; ".join(f"s{r['seed']}: " + " -> ".join(f"{x['iteration']}:{len(set(x['labels']))}g" for x in r["rounds"])
                           for r in rs) if m == "hetdps" else "-"
        fps = " / ".join(f"{r['fps']:.0f}" + (f" ({r['fps_without_callback']:.0f} w/o callback)" if m == "hetdps" else "")
                         for r in rs)
        lines.append(f"| {m} | {len(rs)} | {rs[0]['frames']} | {np.mean(finals):.1f} +/- {np.std(finals):.1f} | {fps} | {groups} |")
        for r in rs:
            x = [c["frames"] for c in r["curve"]]
            y = trailing_mean(np.array([c["train_return"] for c in r["curve"]], dtype=float), 5)
            series[f"{m} s{r['seed']}"] = (x, y)
    curves(series, OUT / "returns", ylabel="training return (5-iteration mean)",
           title="BenchMARL MAPPO on PMS 15a_3c", formats=("png",))
    table = "\n".join(lines)
    (OUT / "summary.md").write_text(table + "\n")
    print(table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=METHODS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=80_000)
    p.add_argument("--all", action="store_true", help="every method x --seeds, one process each, sequentially")
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    p.add_argument("--summarize", action="store_true")
    a = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if a.summarize:
        return summarize()
    if a.all:
        for seed in a.seeds:
            for m in METHODS:
                subprocess.run([sys.executable, "-m", "case_studies.benchmarl_hetdps", "--method", m, "--seed", str(seed),
                                "--frames", str(a.frames)], check=True)
        return summarize()
    if a.method is None:
        p.error("give --method, --all or --summarize")
    res = run(a.method, a.seed, a.frames)
    (OUT / f"run_{a.method}_s{a.seed}.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "curve"}), flush=True)


if __name__ == "__main__":
    main()
