"""Does model-free Obs-Het separate the colours only while the CVAE is under-trained? (issue 10.4)

With the condition x in agent-index order (x = global state s for every agent), two agents of one
colour sit in different slots of x and are different functions of x, so the within-colour
distance grows as the CVAE learns and between/within falls with the epochs. With ego-centric x
(own slot first, then the others, then the landmarks; hetero/kinds.py) same-colour agents are one
function of x and the ratio should not fall.

For each seed and epoch count: collect a PMS pool with the goal-directed heuristic (noise 0.3, as
``hetero quantify``), quantify Obs-Het with ``QuantifyConfig(mode="model-free")`` and report the
mean within-colour and between-colour distance (colours = ``env.spec.groups``) and their ratio.
Which condition layout ran is read off the code (``SamplePool`` has ``env_state`` only with
ego-centric kinds), so the same command measures main and this branch:

    python -m case_studies.egocentric_epochs --seeds 0 1 2          # from the repository root
    # defaults: ~10 min per seed on a quiet 2-core CPU (150 + 40 + 6 epochs x 2 split-half CVAEs),
    # ~45 min per seed at load ~20

Rows are merged into ``--out`` (default case_studies/results/egocentric_epochs.json) under the
layout's name (plus any non-default setting), so running it on main and on this branch fills
one table. The results file was made with (on main: the same commands from a checkout of main
with this script copied in, each writing its own JSON, then ``--seeds --merge FILE...``):

    python -m case_studies.egocentric_epochs --seeds 0 1 2 --epochs 5 6 40 150  # CLI default: --early-stop auto
    python -m case_studies.egocentric_epochs --seeds 0 1 2 --validation 0       # every epoch trained
    python -m case_studies.egocentric_epochs --seeds 0 1 2 --validation 0.125   # early stopping at every epoch count
    python -m case_studies.egocentric_epochs --seeds 0 1 2 --kl-weight 0.005 --train-samples 1000 \
        --eval-samples 500 --no-split-half                                       # ~10 min per layout
    python -m case_studies.egocentric_epochs --seeds 0 --epochs 6 40 --kl-weight 0.005
    python -m case_studies.egocentric_epochs --seeds 0 --epochs 6 40 --behaviour random [--kl-weight 0.005 \
        --train-samples 1000 --eval-samples 500 --no-split-half]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hetero.cvae import CVAEConfig
from hetero.cli import early_stop_fraction
from hetero.grouping import group_stats
from hetero.quantify import QuantifyConfig, quantify
from hetero.samples import SamplePool


def layout_name() -> str:
    """Which condition layout ``hetero.kinds`` builds (ego-centric once SamplePool carries S^E)."""
    names = {f.name for f in dataclasses.fields(SamplePool)}
    return "ego-centric" if "env_state" in names else "index-order"


def measure(env_name: str, seed: int, epochs: list[int], samples: int, noise: float, behaviour: str,
            base: QuantifyConfig, validation: str = "auto") -> list[dict]:
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    env = make_env(env_name, num_envs=max(1, -(-samples // 50)), seed=seed)
    pool = collect_pool(env, steps=env.spec.max_steps, behaviour=behaviour, noise=noise, seed=seed, progress=False)
    truth = np.asarray(env.spec.groups)
    rows = []
    for ep in epochs:
        cfg = replace(base, seed=seed, cvae=replace(base.cvae, epochs=ep),
                      validation=early_stop_fraction(validation, ep))  # as `hetero quantify --early-stop`
        t0 = time.perf_counter()
        res = quantify(pool, "obs", cfg)
        s = group_stats(res.matrix, truth)
        rows.append({"seed": seed, "epochs": ep, "within": s["within"], "between": s["between"], "ratio": s["ratio"],
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  seed {seed} epochs {ep:4d}: within {s['within']:.3f} between {s['between']:.3f} "
              f"ratio {s['ratio']:.2f} ({rows[-1]['seconds']} s)", flush=True)
    return rows


def table(results: dict) -> str:
    """Mean over seeds (min-max in brackets) of within, between and ratio per layout and epoch count."""
    lines = ["| condition x | epochs | seeds | within | between | between/within |", "|---|---|---|---|---|---|"]
    for layout, rows in results.items():
        for ep in sorted({r["epochs"] for r in rows}):
            sel = [r for r in rows if r["epochs"] == ep]
            cell = lambda k: (f"{np.mean([r[k] for r in sel]):.2f} "  # noqa: E731
                              f"[{min(r[k] for r in sel):.2f}-{max(r[k] for r in sel):.2f}]")
            lines.append(f"| {layout} | {ep} | {len(sel)} | {cell('within')} | {cell('between')} | {cell('ratio')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="pms_15a_3c")
    p.add_argument("--seeds", type=int, nargs="*", default=[0], help="none: only merge and print the table")
    p.add_argument("--epochs", type=int, nargs="+", default=[6, 40, 150])
    p.add_argument("--samples", type=int, default=3200, help="transitions per agent (as `hetero quantify`)")
    p.add_argument("--noise", type=float, default=0.3, help="exploration noise of the heuristic behaviour")
    p.add_argument("--behaviour", default="heuristic", choices=["heuristic", "random"], help="who fills the pool")
    p.add_argument("--kl-weight", type=float, default=CVAEConfig.kl_weight, help="CVAE KL weight")
    p.add_argument("--train-samples", type=int, default=QuantifyConfig.train_samples)
    p.add_argument("--eval-samples", type=int, default=QuantifyConfig.eval_samples)
    p.add_argument("--no-split-half", action="store_true", help="one CVAE on the whole pool (half the cost)")
    p.add_argument("--validation", default="auto",
                   help="fraction of each half's episodes for early stopping (0: train exactly --epochs); auto "
                        "(default): as `hetero quantify --early-stop auto`, on above the calibrated epochs")
    p.add_argument("--merge", nargs="*", default=[], help="JSON files of other runs (e.g. on main) to merge into --out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="case_studies/results/egocentric_epochs.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    layout = layout_name()
    base = QuantifyConfig(mode="model-free", train_samples=args.train_samples, eval_samples=args.eval_samples,
                          split_half=not args.no_split_half,
                          cvae=replace(CVAEConfig(), kl_weight=args.kl_weight))
    extras = [f"{args.behaviour} behaviour"] if args.behaviour != "heuristic" else []
    extras.append(f"KL weight {args.kl_weight:g}")  # explicit: the default moved from 0.05 to 0.01 in 0.2.0
    if args.validation == "auto" and not args.no_split_half:
        extras.append("--early-stop auto")
    elif float(args.validation) > 0 and not args.no_split_half:
        extras.append("early stopping")
    if (args.train_samples, args.eval_samples) != (QuantifyConfig.train_samples, QuantifyConfig.eval_samples):
        extras.append(f"{args.train_samples}/{args.eval_samples} train/eval x")
    if args.no_split_half:
        extras.append("one CVAE")
    key = ", ".join([layout, *extras])
    out = Path(args.out)
    results = json.loads(out.read_text())["results"] if out.exists() else {}
    for other in args.merge:
        results.update(json.loads(Path(other).read_text())["results"])
    if args.seeds:
        print(f"Obs-Het (model-free) on {args.env}, condition x: {key}", flush=True)
        rows = [r for r in results.get(key, []) if r["seed"] not in args.seeds or r["epochs"] not in args.epochs]
        for seed in args.seeds:
            rows += measure(args.env, seed, args.epochs, args.samples, args.noise, args.behaviour, base, args.validation)
        results[key] = sorted(rows, key=lambda r: (r["epochs"], r["seed"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": args.env, "kind": "obs", "mode": "model-free", "noise": args.noise,
                               "samples": args.samples, "results": results}, indent=1))
    print(table(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
