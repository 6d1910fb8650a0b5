"""Paper Fig. 3: the spread case study, v0 (homogeneous) to v6 (every kind heterogeneous).

Two groups of two agents. Each version changes one function of group 1 (v1 observation order,
v2 max speed, v3 repulsive vs attractive force, v4 target landmark; v5 = v1+v4, v6 = all), so the
matching kind must separate the groups and the others must not. Obs/Response/Effect/Objective-Het
are model-based (the env evaluates every agent's function at the same x); Meta-Het is model-free.

    python case_studies/spread_case_study.py --out runs/case_study      # ~2-4 min on 2 CPU cores
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from hetero.cvae import CVAEConfig
from hetero.grouping import group, group_stats
from hetero.kinds import KINDS
from hetero.quantify import QuantifyConfig, quantify

VERSIONS = ("v0", "v1", "v2", "v3", "v4", "v5", "v6")
KIND_ORDER = ("obs", "response", "effect", "objective", "meta")
CHANGED = {  # which env kinds each version changes (the case study's ground truth)
    "v0": (), "v1": ("obs",), "v2": ("response",), "v3": ("effect",), "v4": ("objective",),
    "v5": ("obs", "objective"), "v6": ("obs", "response", "effect", "objective"),
}


def run_version(version: str, kinds=KIND_ORDER, cfg: QuantifyConfig = QuantifyConfig(), samples: int = 3200,
                seed: int = 0) -> dict:
    """Quantify ``kinds`` on ``spread_<version>``; returns kind -> matrix, labels, stats, mode."""
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    env = make_env(f"spread_{version}", num_envs=max(1, samples // 50), seed=seed)
    pool = collect_pool(env, steps=env.spec.max_steps, behaviour="heuristic", noise=0.3, seed=seed, progress=False)
    out = {}
    for kind in kinds:
        res = quantify(pool, kind, replace(cfg, seed=seed), model=env.model)
        groups = group(res, seed=seed)
        truth_stats = group_stats(res.matrix, env.spec.groups)
        out[kind] = {"matrix": res.matrix, "labels": groups.labels, "mode": res.mode,
                     "noise_floor": res.noise_floor, **truth_stats}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/case_study")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=CVAEConfig.epochs)
    ap.add_argument("--figure-only", action="store_true",
                    help="redraw OUT/spread_case_study.png|pdf from OUT/spread_case_study.npz without recomputing")
    args = ap.parse_args()
    out = Path(args.out)
    if args.figure_only:
        figure(dict(np.load(out / "spread_case_study.npz")), out / "spread_case_study")
        return
    cfg = QuantifyConfig(cvae=replace(CVAEConfig(), epochs=args.epochs))
    results = {v: run_version(v, cfg=cfg, seed=args.seed) for v in VERSIONS}
    summary = {}
    for v in VERSIONS:
        for kind in KIND_ORDER:
            e = results[v][kind]
            summary.setdefault(v, {})[kind] = {k: (list(x) if isinstance(x, tuple) else x)
                                               for k, x in e.items() if k != "matrix"}
            print(f"{v} {kind:9s} [{e['mode']}] groups {e['labels']} between {e['between']:.3f} "
                  f"within {e['within']:.3f}")
    out.mkdir(parents=True, exist_ok=True)
    matrices = {f"{v}_{k}": results[v][k]["matrix"] for v in VERSIONS for k in KIND_ORDER}
    (out / "spread_case_study.json").write_text(json.dumps(summary, indent=1, default=float))
    np.savez(out / "spread_case_study.npz", **matrices)
    figure(matrices, out / "spread_case_study")
    print(f"wrote {out}/spread_case_study.(png|pdf|json|npz)")


def figure(matrices: dict[str, np.ndarray], stem: Path) -> None:
    """Kinds (rows) x versions (columns); one colour scale per kind, so a row compares versions."""
    from hetero.plotting import colorbar, draw_heatmap, plt, save_figure

    fig, axes = plt.subplots(len(KIND_ORDER), len(VERSIONS), figsize=(2.0 * len(VERSIONS) + 1.2, 2.0 * len(KIND_ORDER)),
                             layout="constrained", squeeze=False)
    for r, kind in enumerate(KIND_ORDER):
        vmax = max(float(matrices[f"{v}_{kind}"].max()) for v in VERSIONS) or 1.0
        for c, v in enumerate(VERSIONS):
            ax = axes[r, c]
            im = draw_heatmap(ax, matrices[f"{v}_{kind}"], (0, 0, 1, 1), v if r == 0 else "", vmax=vmax)
            ax.set_xlabel("")
            top = float(matrices[f"{v}_{kind}"].max())
            if top > 0:  # the row shares a scale; a small matrix (v2 Response-Het) still says how small
                ax.text(0.03, 0.03, f"max {top:.2g}", transform=ax.transAxes, fontsize=7, color="white",
                        bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "pad": 1.5})
            if c == 0:
                ax.set_ylabel(KINDS[kind].title)
        colorbar(fig, im, axes[r, :].tolist())
    fig.suptitle("spread v0 (homogeneous) to v6: each version changes agents {2,3} (v1 obs, v2 response, v3 effect, "
                 "v4 objective, v5 obs + objective, v6 all)", fontsize=9)
    save_figure(fig, stem)


if __name__ == "__main__":
    main()
