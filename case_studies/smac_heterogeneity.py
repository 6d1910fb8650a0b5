"""Paper Sec. 6.2 on SMAX: Meta-Het matrices on 3s5z and 3s5z_vs_3s6z, and whether the groups
match the unit types (stalkers vs zealots).

The paper finds the groups follow the unit types on the harder map (3s5z_vs_3s6z) and need not on
the easier one (3s5z). Here both maps run on SMAX (JaxMARL, no StarCraft II); SMACv2's tasks
draw unit types per episode, so the type question is asked on SMAX's fixed-type maps.

For each map and behaviour (SMAX-scripted micro with noise, and a MAPPO-FPS policy trained here
for ``--frames``) the script quantifies, model-free:

- ``meta``: Meta-Het on the pool as collected. Each agent's observation carries its own
  unit-type one-hot (and its allies'), so types can separate on the label alone.
- ``meta_no_type_bits``: Meta-Het after zeroing every unit-type bit in the observations, so
  only behaviour, dynamics and reward can tell types apart.

and reports the groups, their adjusted Rand index against the unit types, and the mean
between-type / within-type distance ratio.

    python case_studies/smac_heterogeneity.py --out case_studies/results/smac   # ~5 min on 2 CPU cores
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hetero.grouping import group, group_stats
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool

MAPS = ("smax_3s5z", "smax_3s5z_vs_3s6z")
VARIANTS = ("meta", "meta_no_type_bits")


def type_bit_mask(obs_dim: int, n_allies: int, n_enemies: int) -> torch.Tensor:
    """[Do] bool, True at every unit-type bit of a SMAX unit-list observation (others' and own)."""
    from marl_backends.envs.smax import OWN_FEATURES, UNIT_FEATURES

    m = torch.zeros(obs_dim, dtype=torch.bool)
    others = n_allies - 1 + n_enemies
    m[: others * UNIT_FEATURES].view(others, UNIT_FEATURES)[:, 7:] = True
    m[others * UNIT_FEATURES + 4: others * UNIT_FEATURES + OWN_FEATURES] = True
    return m


def strip_unit_types(pool: SamplePool, mask: torch.Tensor) -> SamplePool:
    """The pool with every unit-type bit of obs / next_obs set to 0."""
    keep = (~mask).to(pool.obs.dtype)
    return replace(pool, obs=pool.obs * keep, next_obs=pool.next_obs * keep)


def trained_behaviour(env_name: str, frames: int, seed: int, run_dir: Path):
    """Train MAPPO-FPS for ``frames`` and return (act_fn, final metrics row)."""
    from marl_backends.trainers.checkpoint import make_trainer
    from marl_backends.trainers.config import TrainConfig
    from marl_backends.trainers.loop import train

    cfg = TrainConfig(algo="mappo", env=env_name, sharing="fps", frames=frames, num_envs=20, rollout_steps=100,
                      seed=seed, eval_interval=0, eval_episodes=20, checkpoint_interval=0, progress=False)
    trainer = make_trainer(cfg)
    train(trainer, run_dir)
    last = trainer.evaluate()
    gen = torch.Generator().manual_seed(seed)
    return (lambda o: trainer.actor.act(o.obs, o.avail_actions, gen)[0]), last


def quantify_map(env_name: str, behaviour, cfg: QuantifyConfig, episodes: int, seed: int) -> dict:  # noqa: ANN001
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    env = make_env(env_name, num_envs=episodes, seed=seed)
    if env.spec.groups is None or not env_name.startswith("smax_"):
        raise SystemExit(f"{env_name}: this study needs a SMAX map with fixed unit types (e.g. smax_3s5z); maps that "
                         "draw types per episode (smax_smacv2_*, smacv2_*) have no per-agent type to compare with.")
    pool = collect_pool(env, steps=env.spec.max_steps, behaviour=behaviour, noise=0.3, seed=seed, progress=False)
    n, ne = env.spec.n_agents, env.spec.action_dim - 5
    pools = {"meta": pool, "meta_no_type_bits": strip_unit_types(pool, type_bit_mask(env.spec.obs_dim, n, ne))}
    types = env.spec.groups
    out = {"unit_types": list(env.unit_type_names), "type_labels": list(types),
           "valid_fraction": round(float(pool.valid.float().mean()), 4)}
    for name, p in pools.items():
        t0 = time.perf_counter()
        res = quantify(p, "meta", cfg)
        groups = group(res, seed=seed)
        st = group_stats(res.matrix, types)
        out[name] = {"matrix": res.matrix.round(4).tolist(), "labels": list(map(int, groups.labels)),
                     "noise_floor": round(res.noise_floor, 4), "p_value": res.p_value,
                     "between_type": round(st["between"], 4), "within_type": round(st["within"], 4),
                     "ratio": round(st["ratio"], 3), "ari_vs_types": _ari(groups.labels, types),
                     "seconds": round(time.perf_counter() - t0, 1)}
    return out


def _ari(a, b) -> float:  # noqa: ANN001
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(list(a), list(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/smac_heterogeneity")
    ap.add_argument("--maps", nargs="+", default=list(MAPS))
    ap.add_argument("--frames", type=int, default=200_000, help="MAPPO-FPS training frames per map (0: skip)")
    ap.add_argument("--episodes", type=int, default=128, help="episodes (parallel envs) in each sample pool")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", default="runs/smac_heterogeneity", help="training run folders (checkpoints)")
    ap.add_argument("--figure-only", action="store_true",
                    help="redraw OUT/smac_meta_het.png|pdf from OUT/summary.json without recomputing anything")
    args = ap.parse_args()
    if args.figure_only:
        _figure(json.loads((Path(args.out) / "summary.json").read_text())["results"], Path(args.out) / "smac_meta_het")
        return
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = QuantifyConfig(seed=args.seed)
    results: dict = {}
    for m in args.maps:
        results[m] = {"heuristic": quantify_map(m, "heuristic", cfg, args.episodes, args.seed)}
        if args.frames:
            act, ev = trained_behaviour(m, args.frames, args.seed, Path(args.runs_dir) / m)
            results[m]["mappo_fps"] = quantify_map(m, act, cfg, args.episodes, args.seed)
            results[m]["mappo_fps"]["policy_eval"] = ev
        for beh, r in results[m].items():
            for v in VARIANTS:
                x = r[v]
                print(f"{m:20s} {beh:10s} {v:18s} groups {x['labels']}  ARI vs types {x['ari_vs_types']:.2f}  "
                      f"between/within {x['ratio']:.2f}  floor {x['noise_floor']:.2f}")
        (out / "summary.json").write_text(json.dumps({"settings": vars(args), "results": results}, indent=1) + "\n")
    _figure(results, out / "smac_meta_het")


VARIANT_TITLES = {"meta": "Meta-Het", "meta_no_type_bits": "Meta-Het, type bits zeroed"}
BEHAVIOUR_TITLES = {"heuristic": "scripted + noise", "mappo_fps": "MAPPO-FPS policy"}


def _figure(results: dict, path: Path) -> None:
    """One row per map: (behaviour x variant) Meta-Het matrices, agents ordered by unit type."""
    from hetero.plotting import matrix_panels

    panels, ncols = [], 1
    for m in results:
        row = [(m, b, v) for b in results[m] for v in VARIANTS]
        ncols = max(ncols, len(row))
        for _, b, v in row:
            r = results[m][b][v]
            title = f"{m.removeprefix('smax_')}, {BEHAVIOUR_TITLES.get(b, b)}\n{VARIANT_TITLES[v]}: ARI {r['ari_vs_types']:.2f}"
            panels.append((title, np.asarray(r["matrix"]), results[m][b]["type_labels"]))
    matrix_panels(panels, path, ncols=ncols, suptitle="SMAX: Meta-Het vs unit types (white lines: stalkers | zealots)")


if __name__ == "__main__":
    main()
