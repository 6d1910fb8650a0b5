"""Policy-updating baseline drift (OMDPG paper Fig. 2 / Sec. 3.3) and the OMQ / GQC ablation (Fig. 6).

Figure 2 (``--study drift``): HAPPO-NoPS vs HAPPO-ParPS (sequential per-agent updates with
shared group parameters: the drifting baseline of Eq. 3) vs HAPPO-ParPS-FPB (fixed pre-update
baseline) vs OMDPG (ParPS actors, OMQ, GQC).
Figure 6 (``--study ablation``): MATD3-NoPS, MATD3-ParPS, MATD3-ParPS-GQC (5 GQC critics with the
PU loss, MATD3 actor loss), MATD3-ParPS-OMQ (2 GQC critics, OMQ actor loss), and full OMDPG.

The paper runs SMAC maps for millions of steps. Scaled to a 2-core CPU, the default task is the
heterogeneous VMAS ``spread_v4`` (continuous actions, 2 x 2 agents whose groups are rewarded for
different landmarks, Objective-Het; ParPS = the two true groups), ``--frames`` env steps per run
(default 200k) and ``--seeds`` seeds (default 1). Any continuous registry env works (``--env
mamujoco_halfcheetah_6x1_het`` for the paper's gear-modified HalfCheetah with hind / fore groups,
given far more frames than fit here).

Writes ``runs/baseline_drift/<study>/<variant>_s<seed>/`` (run folders of ``hetero train``),
``curves.csv``, ``summary.json`` and ``<study>.png`` (eval return vs env steps, mean +- std over
seeds).

    python case_studies/baseline_drift.py --study drift|ablation|both [--frames 200000] [--seeds 1]
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from marl_backends.offpolicy.cli import build, train_loop
from marl_backends.trainers.checkpoint import make_trainer
from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.loop import train as onpolicy_train
from marl_backends.trainers.run_io import read_metrics

# name -> (kind, settings). on-policy settings go to TrainConfig; off-policy ones to ABLATION presets.
DRIFT = {
    "HAPPO-NoPS": ("on", dict(algo="happo", sharing="nps")),
    "HAPPO-ParPS": ("on", dict(algo="happo", sharing="groups:env", happo_shared="naive")),
    "HAPPO-ParPS-FPB": ("on", dict(algo="happo", sharing="groups:env", happo_shared="fpb")),
    "OMDPG": ("off", dict(algo="omdpg", sharing="groups:env")),
}
ABLATION_STUDY = {
    "MATD3-NoPS": ("off", dict(algo="matd3", sharing="nps")),
    "MATD3-ParPS": ("off", dict(algo="matd3", sharing="groups:env")),
    "MATD3-ParPS-GQC": ("off", dict(algo="matd3-gqc", sharing="groups:env")),
    "MATD3-ParPS-OMQ": ("off", dict(algo="matd3-omq", sharing="groups:env")),
    "OMDPG": ("off", dict(algo="omdpg", sharing="groups:env")),
}


def run_variant(kind: str, spec: dict, env: str, frames: int, seed: int, out: Path, evals: int,
                pu_prefix_min: int = 1, own_kw: dict | None = None) -> list[tuple[float, float]]:
    """Train one variant; returns (env steps, eval return) pairs. ``own_kw``: extra OffPolicyConfig fields."""
    out.mkdir(parents=True, exist_ok=True)
    if kind == "on":
        cfg = TrainConfig(env=env, continuous=True, frames=frames, seed=seed, num_envs=20, rollout_steps=100,
                          eval_interval=max(1, frames // (2000 * evals)), eval_episodes=20, checkpoint_interval=0,
                          out_dir=str(out.parent), run_name=out.name, progress=False, tensorboard=False, **spec)
        onpolicy_train(make_trainer(cfg), out)
    else:
        run = dict(env=env, frames=frames, num_envs=20, eval_episodes=20, checkpoint_interval=0, progress=False,
                   tensorboard=False, hidden=(128, 128), **spec)
        own = dict(seed=seed, batch_size=256, warmup_steps=2000, n_step=3, train_interval=5, buffer_size=200_000,
                   pu_prefix_min=pu_prefix_min, **(own_kw or {}))
        trainer, eval_env, run = build(run, own)
        run["eval_interval"] = max(1, frames // (100 * evals))
        train_loop(trainer, eval_env, run, out)
    return eval_points(out)


def eval_points(run_dir: Path) -> list[tuple[float, float]]:
    """(env steps, eval return) of every evaluated iteration in a run folder's metrics.csv."""
    return [(float(r["frames"]), float(r["eval_return"])) for r in read_metrics(run_dir)
            if isinstance(r.get("eval_return"), float) and r["eval_return"] == r["eval_return"]]


def plot(curves: dict[str, list[list[tuple[float, float]]]], path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, runs in curves.items():
        n = min(len(r) for r in runs)
        x = np.array([p[0] for p in runs[0][:n]])
        y = np.array([[p[1] for p in r[:n]] for r in runs])
        ax.plot(x, y.mean(0), label=name)
        ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default="both", choices=["drift", "ablation", "both"])
    ap.add_argument("--env", default="spread_v4")
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--evals", type=int, default=10, help="evaluations per run")
    ap.add_argument("--only", nargs="*", default=None, help="run only these variant names")
    ap.add_argument("--pu-prefix-min", type=int, default=1, choices=[0, 1], help="see OffPolicyConfig.pu_prefix_min")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/baseline_drift")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    studies = {"drift": DRIFT, "ablation": ABLATION_STUDY}
    for study in (["drift", "ablation"] if a.study == "both" else [a.study]):
        base = Path(a.out) / a.env / study
        curves, summary = {}, {}
        for name, (kind, spec) in studies[study].items():
            if a.only and name not in a.only:
                continue
            for seed in range(a.seeds):
                out = base / f"{name}_s{seed}"
                t0 = time.perf_counter()
                if (out / "metrics.csv").exists() and (out / "done").exists():
                    pts = eval_points(out)
                else:
                    pts = run_variant(kind, spec, a.env, a.frames, seed, out, a.evals, a.pu_prefix_min)
                    (out / "done").write_text("")
                curves.setdefault(name, []).append(pts)
                wall = time.perf_counter() - t0
                last = [p[1] for p in pts[-3:]]
                summary.setdefault(name, []).append({"seed": seed, "final_eval_return": sum(last) / len(last),
                                                     "best_eval_return": max(p[1] for p in pts), "wall_s": wall})
                print(f"[{study}] {name:<17} seed {seed}: final eval {summary[name][-1]['final_eval_return']:9.2f}  "
                      f"best {summary[name][-1]['best_eval_return']:9.2f}  ({wall:.0f} s)", flush=True)
        with open(base / "curves.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["variant", "seed", "env_steps", "eval_return"])
            for name, runs in curves.items():
                for seed, pts in enumerate(runs):
                    w.writerows([name, seed, x, y] for x, y in pts)
        (base / "summary.json").write_text(json.dumps({"env": a.env, "frames": a.frames, "variants": summary}, indent=1))
        title = "baseline drift (Fig. 2)" if study == "drift" else "OMQ / GQC ablation (Fig. 6)"
        plot(curves, base / f"{study}.png", f"{title}: {a.env}")


if __name__ == "__main__":
    main()
