"""Why do the GQC variants learn slower than MATD3 on spread_v4? One-seed probe of the GQC pieces.

Arms (all MATD3 actor loss -Q_1, ParPS, the ``baseline_drift.py --study ablation`` settings):
MATD3-ParPS (twin critics, shared minibatch, clipped double-Q target), MATD3-ParPS-GQC (5
critics, own minibatches, own targets Eq. 9, PU loss Eqs. 12-14), and GQC with one piece changed:
``target=min`` (clipped double-Q over the 5 target critics), ``pu_coef=0`` (no PU loss) or
``beta=0`` (PU loss without the std penalty: only the pull of Q(s, a_ood) to Q^tgt(s, a_ood)) or
``pu_coef=0.01`` (Table 4's smallest lambda_PU); and full OMDPG with / without the PU loss.
Reports final / best eval return and the critics' mean Q at sampled (s, a) over the last 10% of
updates (vs MATD3's) as an overestimation indicator.

    python case_studies/omdpg_gqc_probe.py [--frames 60000] [--arms ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_drift import run_variant  # noqa: E402

from marl_backends.trainers.run_io import read_metrics  # noqa: E402

ARMS = {
    "MATD3-ParPS": ({"algo": "matd3", "sharing": "groups:env"}, {}),
    "GQC": ({"algo": "matd3-gqc", "sharing": "groups:env"}, {}),
    "GQC-target-min": ({"algo": "matd3-gqc", "sharing": "groups:env"}, {"target": "min"}),
    "GQC-no-PU": ({"algo": "matd3-gqc", "sharing": "groups:env"}, {"pu_coef": 0.0}),
    "GQC-beta0": ({"algo": "matd3-gqc", "sharing": "groups:env"}, {"beta": 0.0}),
    "GQC-lambda0.01": ({"algo": "matd3-gqc", "sharing": "groups:env"}, {"pu_coef": 0.01}),
    "OMDPG": ({"algo": "omdpg", "sharing": "groups:env"}, {}),
    "OMDPG-no-PU": ({"algo": "omdpg", "sharing": "groups:env"}, {"pu_coef": 0.0}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="spread_v4")
    ap.add_argument("--frames", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/omdpg_gqc_probe")
    ap.add_argument("--json", default="case_studies/results/omdpg/gqc_probe_spread_v4.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res = json.loads(Path(a.json).read_text())["arms"] if Path(a.json).exists() else {}
    for name in a.arms:
        spec, own = ARMS[name]
        t0 = time.perf_counter()
        out = Path(a.out) / f"{name}_s{a.seed}"
        pts = run_variant("off", spec, a.env, a.frames, a.seed, out, evals=10, own_kw=own)
        rows = [r for r in read_metrics(out) if isinstance(r.get("q"), float)]
        tail = rows[-max(1, len(rows) // 10):]
        res[name] = {"own": own, "final_eval_return": pts[-1][1], "best_eval_return": max(p[1] for p in pts),
                     "evals": pts, "q_last10pct": sum(r["q"] for r in tail) / len(tail),
                     "wall_s": time.perf_counter() - t0}
        print(f"{name:16s} final {pts[-1][1]:8.2f} best {res[name]['best_eval_return']:8.2f} "
              f"Q(s,a) {res[name]['q_last10pct']:8.2f}  {res[name]['wall_s']:.0f}s", flush=True)
    Path(a.json).write_text(json.dumps({"env": a.env, "frames": a.frames, "seed": a.seed, "arms": res}, indent=1))


if __name__ == "__main__":
    main()
