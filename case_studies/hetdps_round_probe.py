"""What does a HetDPS round see early in training? (why HetDPS ends below NPS, README "HetDPS")

HetDPS from NPS and the NPS baseline follow one trajectory until HetDPS's first round, so the NPS
runs' checkpoints of the small sweep (``case_studies/sweeps/hetdps_pms_small.toml``) are the state
a round at that update starts from. For each checkpoint: continue its envs for one rollout
(checkpoints written before 0.2.0 restore the cursor without S^E), gather ``--rollouts`` rollouts
as a round does, and quantify Meta-Het with HetDPS's round settings, once with the plain swap test
(what rounds use) and once behaviour-invariant (``reweight=True``). Reports the structure test's
p-value, the number of groups and their ARI against the colours.

    python -m case_studies.hetdps_round_probe --envs pms_15a_3c pms_15a_5c   # ~10 min on one core
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from case_studies.calibration import ari
from hetero.grouping import group, group_stats
from hetero.hetdps import HETDPS_QUANTIFY
from hetero.quantify import quantify
from hetero.samples import SamplePool


def probe(run: Path, iteration: int, rollouts: int, seed: int) -> list[dict]:
    from marl_backends.trainers.checkpoint import load_trainer

    tr = load_trainer(run / "checkpoints" / f"iter_{iteration:06d}.pt")
    tr.last_rollout = tr._collect()  # one rollout to refill the running episodes' S^E
    pools = []
    for _ in range(rollouts):
        tr.last_rollout = tr._collect()
        pools.append(tr.sample_pool())
    pool, truth = SamplePool.concat(pools), tr.spec.groups
    rows = []
    for reweight in (False, True):
        cfg = replace(HETDPS_QUANTIFY, reweight=reweight, seed=seed + 1)
        t0 = time.perf_counter()
        res = quantify(pool, "meta", cfg)
        g = group(res, seed=seed)
        rows.append({"run": run.name, "iteration": iteration, "reweight": reweight, "groups": g.n_groups,
                     "ari": ari(truth, g.labels), "p_value": res.p_value,
                     "colour_ratio": group_stats(res.matrix, truth)["ratio"], "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", default=["pms_15a_3c", "pms_15a_5c"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iterations", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts per round (hetero train --hetdps-rollouts)")
    ap.add_argument("--sweep", default="runs/sweeps/hetdps_pms_small/runs")
    ap.add_argument("--out", default="case_studies/results/hetdps_rounds/probe.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for env in a.envs:
        for seed in a.seeds:
            for it in a.iterations:
                rows += probe(Path(a.sweep) / f"{env}_nps_s{seed}", it, a.rollouts, seed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=1))
    for env in a.envs:
        for rw in (False, True):
            sel = [r for r in rows if r["run"].startswith(env) and r["reweight"] == rw]
            print(f"{env} {'behaviour-invariant' if rw else 'plain'}: mean ARI {np.mean([r['ari'] for r in sel]):.2f}, "
                  f"structure in {sum(r['p_value'] < 0.01 for r in sel)} of {len(sel)}")


if __name__ == "__main__":
    main()
