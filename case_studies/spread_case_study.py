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
    args = ap.parse_args()
    from hetero.plotting import draw_heatmap, plt, save_figure

    cfg = QuantifyConfig(cvae=replace(CVAEConfig(), epochs=args.epochs))
    results = {v: run_version(v, cfg=cfg, seed=args.seed) for v in VERSIONS}
    fig, axes = plt.subplots(len(KIND_ORDER), len(VERSIONS), figsize=(2.2 * len(VERSIONS), 2.2 * len(KIND_ORDER)))
    summary = {}
    for c, v in enumerate(VERSIONS):
        for r, kind in enumerate(KIND_ORDER):
            e = results[v][kind]
            draw_heatmap(axes[r, c], e["matrix"], (0, 0, 1, 1), f"{v} {KINDS[kind].title}")
            axes[r, c].set_xlabel("")
            summary.setdefault(v, {})[kind] = {k: (list(x) if isinstance(x, tuple) else x)
                                               for k, x in e.items() if k != "matrix"}
            print(f"{v} {kind:9s} [{e['mode']}] groups {e['labels']} between {e['between']:.3f} "
                  f"within {e['within']:.3f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / "spread_case_study")
    (out / "spread_case_study.json").write_text(json.dumps(summary, indent=1, default=float))
    np.savez(out / "spread_case_study.npz", **{f"{v}_{k}": results[v][k]["matrix"] for v in VERSIONS for k in KIND_ORDER})
    print(f"wrote {out}/spread_case_study.(png|pdf|json|npz)")


if __name__ == "__main__":
    main()
