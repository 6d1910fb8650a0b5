"""SND (Bettini et al., JMLR 2024) beside Policy-Het on the same trained checkpoints.

For every run folder: roll the trained policies into a sample pool, then measure on it
(1) Policy-Het (paper Eq. 16: CVAE encodings of pi_i(.|o), W2 between them) and (2) SND (W between
the action distributions themselves; TV for the discrete PMS actions, see hetero/metrics.py),
both on observations drawn from the same pool. Reports each measure's scalar (mean over agent
pairs) and its between / within colour ratio (PMS knows the colours), plus the run's eval return.

Run behind case_studies/results/snd (pms_15a_3c, MAPPO, 160k frames, FPS / NPS / colour groups,
seeds 0 and 1; training with one torch thread per run, two runs at a time):
    for s in fps nps groups:env; do for seed in 0 1; do
      .venv/bin/python -m hetero.cli train --env pms_15a_3c --algo mappo --sharing $s --seed $seed --frames 160000 \\
          --threads 1 --out-dir runs/snd --run-name pms_15a_3c_${s/:/-}_s$seed --no-progress; done; done
    .venv/bin/python case_studies/snd_vs_policy_het.py runs/snd/pms_15a_3c_* --out case_studies/results/snd
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from hetero.grouping import group_stats
from hetero.metrics import snd
from hetero.quantify import QuantifyConfig, quantify
from marl_backends.envs import make_env
from marl_backends.envs.sampling import collect_pool
from marl_backends.trainers import load_trainer
from marl_backends.trainers.run_io import read_metrics


def measure(run: Path, samples: int, seed: int) -> dict:
    tr = load_trainer(run, threads=1)
    env = make_env(tr.cfg.env, num_envs=max(1, samples // 50), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    pool = collect_pool(env, steps=env.spec.max_steps, seed=seed, progress=False,
                        behaviour=lambda o: tr.actor.act(o.obs.to(tr.device), o.avail_actions, generator=gen)[0])
    colours = env.spec.groups
    ph = quantify(pool, "policy", QuantifyConfig(train_samples=samples, eval_samples=samples // 2, seed=seed),
                  policy_fn=tr.policy_distributions)
    sn = snd(tr.policy_distributions, pool, discrete=tr.spec.discrete, samples=samples, seed=seed)
    rows = read_metrics(run)
    ev = [r["eval_return"] for r in rows if isinstance(r.get("eval_return"), float) and not math.isnan(r["eval_return"])]
    off = ~np.eye(len(colours), dtype=bool)
    out = {"run": run.name, "sharing": tr.cfg.sharing, "seed": tr.cfg.seed, "frames": tr.frames,
           "eval_return": ev[-1] if ev else None, "snd": sn.value, "snd_metric": sn.metric,
           "snd_colour": group_stats(sn.matrix, colours),
           "policy_het": float(ph.matrix[off].mean()), "policy_het_colour": group_stats(ph.matrix, colours),
           "snd_matrix": sn.matrix.tolist(), "policy_het_matrix": ph.matrix.tolist()}
    return out


def table(results: list[dict]) -> str:
    lines = ["| run | eval return | SND (TV) | SND within / between colour | Policy-Het (mean W2) | "
             "Policy-Het within / between colour |", "|---|---|---|---|---|---|"]
    for r in results:
        ret = "n/a" if r["eval_return"] is None else f"{r['eval_return']:.1f}"
        a, b = r["snd_colour"], r["policy_het_colour"]
        lines.append(f"| {r['run']} | {ret} | {r['snd']:.3f} | {a['within']:.3f} / {a['between']:.3f} | "
                     f"{r['policy_het']:.3f} | {b['within']:.3f} / {b['between']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("case_studies/results/snd"))
    a = p.parse_args()
    torch.set_num_threads(1)
    results = [measure(run, a.samples, a.seed) for run in a.runs]
    a.out.mkdir(parents=True, exist_ok=True)
    for r in results:  # a ratio is inf when the within-colour distance is 0 (shared networks): null in JSON
        for k in ("snd_colour", "policy_het_colour"):
            r[k] = {s: (None if math.isinf(v) else v) for s, v in r[k].items()}
    (a.out / "summary.json").write_text("[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n")
    (a.out / "table.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
