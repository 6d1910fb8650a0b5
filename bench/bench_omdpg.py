"""OMDPG update time for C_k = 2 and 5 against MATD3 (OMDPG paper Table 5 compares them).

Times ``OffPolicyTrainer.update()`` (one critic update, plus the actor and target update every
``policy_delay``-th call, so the mean covers both) on a buffer filled from the env. Default:
HalfCheetah 2x3 (MaMuJoCo extra) with HARL's MAMuJoCo sizes (batch 1000, hidden [256, 256]);
falls back to VMAS spread_v4 (continuous) when the extra is absent.

    python bench/bench_omdpg.py [--env NAME] [--updates 100] [--batch 1000] [--threads 1] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from marl_backends.envs import make_env
from marl_backends.envs.mamujoco import mamujoco_available
from marl_backends.offpolicy import OffPolicyTrainer, matd3, omdpg


def time_updates(env, cfg, layout, updates: int, fill: int) -> dict:
    tr = OffPolicyTrainer(env, cfg, layout)
    tr.collect(fill)
    for _ in range(5):  # warm-up (allocator, first-call overheads)
        tr.update()
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    ts = []
    for _ in range(updates):
        t0 = time.perf_counter()
        tr.update()
        if cfg.device.startswith("cuda"):
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return {"algo": cfg.algo, "n_critics": cfg.n_critics, "mean_ms": 1e3 * statistics.mean(ts),
            "median_ms": 1e3 * statistics.median(ts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="mamujoco_halfcheetah_2x3" if mamujoco_available() else "spread_v4")
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    env = make_env(a.env, num_envs=4, seed=0, continuous=True)
    layout = env.spec.groups or tuple(range(env.spec.n_agents))
    common = dict(batch_size=a.batch, hidden=tuple(a.hidden), device=a.device, warmup_steps=0, buffer_size=100_000)
    fill = max(300, 2 * a.batch // env.num_envs)
    rows = [time_updates(env, cfg, layout, a.updates, fill)
            for cfg in (matd3(**common), omdpg(n_critics=2, **common), omdpg(n_critics=5, **common))]
    base = rows[0]["mean_ms"]
    print(f"env={a.env} agents={env.spec.n_agents} batch={a.batch} hidden={a.hidden} threads={a.threads} device={a.device}")
    print(f"{'algo':<8}{'C_k':>4}{'mean ms':>10}{'median ms':>11}{'x MATD3':>9}")
    for r in rows:
        r["x_matd3"] = r["mean_ms"] / base
        print(f"{r['algo']:<8}{r['n_critics']:>4}{r['mean_ms']:>10.1f}{r['median_ms']:>11.1f}{r['x_matd3']:>9.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"args": vars(a), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
