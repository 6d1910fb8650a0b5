"""HetDPS vs FPS, NPS, FPS+id, SePS and MADPS on the PMS tasks (paper Sec. 6, Fig. 6, Table 5).

Trains MAPPO under every method on each task and seed, then writes
- ``OUT/rewards.png`` (.pdf): training return against env frames, mean +- std over seeds;
- ``OUT/matrices_<task>.png``: the last round's matrix of every regrouping method (ordered by
  the groups it chose) -- Meta-Het for HetDPS, Policy-Het for MADPS, embedding distance for SePS;
- ``OUT/summary.json`` and ``OUT/table5_speed.md``: final return, groups found, ARI of the final
  layout against the true colours, rounds, round seconds, and training speed (frames per wall
  second) normalised to FPS (paper Table 5; runs that share the CPU confound it -- the controlled
  overhead measurement is bench/bench_hetdps.py).

Methods (all MAPPO; ``--hetdps-interval`` etc. as on the CLI):
  fps, nps, fps-id                 static layouts
  hetdps-fps / hetdps-nps          HetDPS, Meta-Het, starting from FPS / NPS (default no_structure=keep:
                                   the layout is kept while Meta-Het shows no structure)
  hetdps-fps-merge / -nps-merge    the same with no_structure=merge (a no-structure round means one group)
  hetdps-nps-majority              HetDPS from NPS, merged groups take their majority network (--merge
                                   majority, the default since the three-seed runs) instead of the
                                   weighted parameter average that every other method here uses (the
                                   default when these results were made; kept so they reproduce)
  seps                             SePS: id-only VAE embedding + k-means, k = the task's colour count
                                   (SePS needs k; the paper tunes it per task), grouped once
  madps                            MADPS from NPS: Policy-Het with fusion 2.0 / division 3.0

Scaled-down run (this machine, 2 shared CPU cores):
    .venv/bin/python case_studies/hetdps_pms.py --tasks pms_15a_3c --seeds 0 --frames 160000 \
        --interval 10 --jobs 2
Paper scale: --tasks pms_15a_3c pms_30a_3c pms_15a_5c pms_30a_5c --seeds 0 1 2 --frames 5000000
--interval 25 (and --device cuda where available). Run folders go to ``--runs-dir``; finished runs
are skipped, interrupted ones resumed from their checkpoints.
"""
from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

METHODS: dict[str, dict] = {
    "fps": dict(sharing="fps"),
    "nps": dict(sharing="nps"),
    "fps-id": dict(sharing="fps-id"),
    "hetdps-fps": dict(sharing="hetdps", hetdps_init="fps", hetdps_no_structure="keep", merge="weighted"),
    "hetdps-nps": dict(sharing="hetdps", hetdps_init="nps", hetdps_no_structure="keep", merge="weighted"),
    "hetdps-fps-merge": dict(sharing="hetdps", hetdps_init="fps", hetdps_no_structure="merge", merge="weighted"),
    "hetdps-nps-merge": dict(sharing="hetdps", hetdps_init="nps", hetdps_no_structure="merge", merge="weighted"),
    "hetdps-nps-majority": dict(sharing="hetdps", hetdps_init="nps", hetdps_no_structure="keep", merge="majority"),
    "seps": dict(sharing="hetdps", hetdps_init="fps", grouper="seps", merge="weighted"),
    "madps": dict(sharing="hetdps", hetdps_init="nps", grouper="madps", merge="weighted"),
}
COLOURS = {"pms_15a_3c": 3, "pms_30a_3c": 3, "pms_15a_5c": 5, "pms_30a_5c": 5}


def run_one(task: str, method: str, seed: int, frames: int, runs_dir: str, interval: int, extra: dict | None = None,
            tag: str = "") -> str:
    """Train (or resume, or skip if finished) one run; returns its folder."""
    import torch

    from marl_backends.trainers import TrainConfig, load_trainer, make_trainer, train
    from marl_backends.trainers.run_io import write_json

    torch.set_num_threads(1)
    run = Path(runs_dir) / f"{task}_{method}{tag}_s{seed}"
    kw = dict(METHODS[method], env=task, algo="mappo", seed=seed, frames=frames, threads=1, eval_interval=10,
              checkpoint_interval=10, tensorboard=False, progress=False, hetdps_interval=interval,
              **(extra or {}))
    if method == "seps":
        kw["seps_k"] = COLOURS.get(task, 3)
    if (run / "checkpoint.pt").exists():
        tr = load_trainer(run, frames=frames, progress=False)
        if tr.iteration >= tr.cfg.iterations:
            return str(run)
    else:
        run.mkdir(parents=True, exist_ok=True)
        tr = make_trainer(TrainConfig(**kw))
        write_json(run / "config.json", tr.cfg.to_dict())
    train(tr, run)
    return str(run)


def run_all(jobs: list[tuple], n_jobs: int) -> list[str]:
    if n_jobs <= 1:
        return [run_one(*j) for j in jobs]
    with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) as ex:
        return list(ex.map(run_one, *zip(*jobs)))


def true_groups(task: str) -> tuple[int, ...]:
    from marl_backends.envs.registry import make_env

    return tuple(make_env(task, num_envs=1, device="cpu", seed=0).spec.groups)


def summarise(run: str, task: str) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from marl_backends.trainers.run_io import read_metrics

    rows = read_metrics(run)
    ev = [r["eval_return"] for r in rows if isinstance(r.get("eval_return"), float) and not math.isnan(r["eval_return"])]
    layout = [int(v) for v in str(rows[-1]["layout"]).split("-")]
    rounds = []
    log = Path(run) / "hetdps_rounds.jsonl"
    if log.exists():
        rounds = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    truth = true_groups(task)
    first_true = next((r["update"] for r in rounds if adjusted_rand_score(truth, r["labels"]) > 0.999), None)
    return {"frames": rows[-1]["frames"], "final_train_return": float(np.nanmean([r["train_return"] for r in rows[-5:]])),
            "final_eval_return": ev[-1] if ev else None, "wall_s": rows[-1]["wall_s"],
            "speed_fps": rows[-1]["frames"] / rows[-1]["wall_s"], "groups": len(set(layout)),
            "ari_vs_colours": float(adjusted_rand_score(truth, layout)), "rounds": len(rounds),
            "groups_per_round": [len(set(r["labels"])) for r in rounds],
            "first_round_with_colours": first_true,
            "round_s_mean": float(np.mean([r["seconds"] for r in rounds])) if rounds else 0.0}


def plot_rewards(runs: dict, tasks: list[str], methods: list[str], out: Path) -> None:
    from hetero.plotting import reward_bands
    from marl_backends.trainers.run_io import read_metrics

    panels = {task: {m: [([r["frames"] for r in rows], [r["train_return"] for r in rows])
                         for rows in (read_metrics(run) for (t, mm, _), run in runs.items() if t == task and mm == m)]
                     for m in methods} for task in tasks}
    reward_bands(panels, out / "rewards", smooth=3)


def plot_matrices(runs: dict, task: str, out: Path) -> None:
    from hetero.plotting import matrix_panels

    panels = []
    for (t, m, seed), run in runs.items():
        files = sorted(Path(run).glob("hetdps_round_*.npz"))
        if t != task or seed != min(s for (tt, _, s) in runs if tt == task) or not files:
            continue
        z = np.load(files[-1])
        panels.append((f"{m} @ update {int(files[-1].stem.split('_')[-1])}", z["matrix"], z["labels"]))
    if panels:
        matrix_panels(panels, out / f"matrices_{task}", formats=("png",), suptitle=f"{task}: last round's matrix")


def speed_table(summary: list[dict], out: Path) -> None:
    lines = ["| task | method | speed (frames/s) | normalised to FPS |", "|---|---|---|---|"]
    for task in sorted({s["task"] for s in summary}):
        base = [s["speed_fps"] for s in summary if s["task"] == task and s["method"] == "fps"]
        for s in (s for s in summary if s["task"] == task):
            ratio = s["speed_fps"] / np.mean(base) if base else float("nan")
            lines.append(f"| {task} | {s['method']} (seed {s['seed']}) | {s['speed_fps']:.0f} | {ratio:.3f}x |")
    (out / "table5_speed.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(COLOURS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--interval", type=int, default=25, help="--hetdps-interval of the regrouping methods")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (one torch thread each)")
    p.add_argument("--out", default="case_studies/results/hetdps_pms")
    p.add_argument("--runs-dir", default="runs/hetdps_pms")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = [(t, m, s) for t in a.tasks for m in a.methods for s in a.seeds]
    folders = run_all([(t, m, s, a.frames, a.runs_dir, a.interval) for t, m, s in keys], a.jobs)
    runs = dict(zip(keys, folders))
    summary = []
    for (task, m, seed), run in runs.items():
        summary.append({"task": task, "method": m, "seed": seed, **summarise(run, task)})
        print(json.dumps(summary[-1]))
    (out / "summary.json").write_text(json.dumps({"args": vars(a), "runs": summary}, indent=1))
    speed_table(summary, out)
    plot_rewards(runs, a.tasks, a.methods, out)
    for task in a.tasks:
        plot_matrices(runs, task, out)
    print(f"wrote {out}/summary.json, table5_speed.md, rewards.png, matrices_*.png")


if __name__ == "__main__":
    main()
