"""Model-based HetDPS rounds at their own pool size: which CVAE they fit, over many seeds.

A model-based round (Meta-Het evaluated for every agent at the same inputs; PMS and spread have a
model) fits one CVAE on the round's pool. This compares the two fits a round could use on the
*same* pools: the first release's CVAE (``HETDPS_CVAE``: lr 2e-3, batch 256, 10 epochs, KL 0.05)
and the CLI's calibrated one (``CVAEConfig()``: lr 4e-3, batch 1024, 5 epochs, KL 0.01, what
``hetero quantify``'s model-based Meta-Het fits), each with the round's settings otherwise
(``build_hetdps`` from a default ``TrainConfig``: 1000 training conditions, 500 evaluation ones).

Pools are gathered exactly as a run's first round gathers them: MAPPO ``--sharing hetdps:nps``
from seed s, its ``hetdps_rollouts`` rollouts of untrained policies (the state at update 1, when
the policies carry no information about the agents' types). The env's groups score the answer
(ARI); the round never reads them. spread_v0's agents carry two type labels but are identical in
every function: its true answer is one group (scored 1 for one group, else 0).

    python -m case_studies.model_based_rounds --seeds 20      # ~25 min on one core
    python -m case_studies.model_based_rounds --fits "2 epochs (CVAEConfig(epochs=2))"   # one fit

Results: ``case_studies/results/model_based_rounds/`` (``rounds.json``, ``table.md``).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from case_studies.calibration import ari
from hetero.cvae import HETDPS_CVAE, CVAEConfig
from hetero.grouping import group
from hetero.quantify import quantify
from hetero.samples import SamplePool

OUT = Path(__file__).parent / "results" / "model_based_rounds"
ENVS = ("pms_15a_3c", "pms_15a_5c", "pms_30a_3c", "pms_30a_5c", "pms_15a_5c_shuffle", "spread_v0", "spread_v2",
        "spread_v4")
IDENTICAL = {"spread_v0"}  # the env's type labels, but every function is the same: the answer is one group
FITS = {"first release (HETDPS_CVAE)": HETDPS_CVAE, "CLI (CVAEConfig())": CVAEConfig(),
        "2 epochs (CVAEConfig(epochs=2))": CVAEConfig(epochs=2)}


def round_pool(env: str, seed: int):  # noqa: ANN201
    """The pool and the round settings of a `--sharing hetdps:nps` run's first round."""
    from marl_backends.trainers import TrainConfig, make_trainer

    tr = make_trainer(TrainConfig(env=env, algo="mappo", sharing="hetdps", hetdps_init="nps", seed=seed,
                                  progress=False, tensorboard=False, eval_interval=0, checkpoint_interval=0))
    pools = []
    for _ in range(tr.hetdps.cfg.pool_rollouts):
        tr.last_rollout = tr._collect()
        pools.append(tr.sample_pool())
    grouper = tr.hetdps.grouper
    return SamplePool.concat(pools), grouper, tr.spec.groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", default=list(ENVS))
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 per env; (env, seed) pairs already in rounds.json are kept")
    ap.add_argument("--fits", nargs="+", default=list(FITS), choices=list(FITS), metavar="FIT",
                    help=f"which fits to run (default all: {', '.join(map(repr, FITS))})")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "rounds.json"
    rows = json.loads(saved.read_text()) if saved.exists() else []
    done = {(r["env"], r["seed"], r["fit"]) for r in rows}
    for env in a.envs:
        for seed in range(a.seeds):
            todo = [name for name in a.fits if (env, seed, name) not in done]
            if not todo:
                continue
            pool, grouper, truth = round_pool(env, seed)  # the same pool for every fit: seeded
            for name in todo:
                cvae = FITS[name]
                cfg = replace(grouper.cfg, seed=grouper.seed, model_based_cvae=cvae)  # round 0's seed
                t0 = time.perf_counter()
                res = quantify(pool, grouper.kind, cfg, model=grouper.model)
                labels = group(res, seed=cfg.seed).labels
                one = env in IDENTICAL
                rows.append({"env": env, "seed": seed, "fit": name, "mode": res.mode, "groups": len(set(labels)),
                             "ari": 1.0 if one and len(set(labels)) == 1 else (0.0 if one else ari(truth, labels)),
                             "p_value": res.p_value, "seconds": round(time.perf_counter() - t0, 3)})
                print(rows[-1], flush=True)
            (out / "rounds.json").write_text(json.dumps(rows, indent=1))
    envs = list(dict.fromkeys(r["env"] for r in rows))
    lines = ["| env | fit | seeds | true groups found (ARI >= 0.9) | groups per seed | round seconds (mean) |",
             "|---|---|---|---|---|---|"]
    for env in envs:
        for name in FITS:
            r = [x for x in rows if x["env"] == env and x["fit"] == name]
            if not r:
                continue
            ok = sum(x["ari"] >= 0.9 for x in r)
            counts = sorted({x["groups"] for x in r})
            lines.append(f"| {env} | {name} | {len(r)} | {ok} of {len(r)} | {', '.join(map(str, counts))} | "
                         f"{np.mean([x['seconds'] for x in r]):.2f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
