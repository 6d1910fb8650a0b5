"""Benchmarks for quantification: wall time and peak memory vs agent count, and the W2 kernel.

Reproduce (2-core CPU machine, torch CPU build):

    python bench/bench_quantify.py kernel            # all-pairs W2: cdist kernel vs [B,N,N,D] broadcast
    python bench/bench_quantify.py scale             # quantify meta on PMS with 15, 30, 60, 120 agents
                                                     # (3 colours of N/3, 64 episodes, default settings)

Each measurement runs in a fresh child process, so its peak resident memory (ru_maxrss, minus the
process's size after imports) is its own.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _kernel_job(impl: str, b: int, n: int, d: int, q) -> None:
    import torch

    from hetero.wasserstein import w2_diag_gaussians, w2_naive

    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    mu, sigma = torch.randn(b, n, d, generator=g), torch.rand(b, n, d, generator=g) + 0.1
    fn = w2_diag_gaussians if impl == "cdist" else w2_naive
    fn(mu[:8], sigma[:8])
    base = _rss_mb()
    t0 = time.perf_counter()
    for _ in range(3):
        out = fn(mu, sigma).mean(0)
    q.put({"impl": impl, "B": b, "N": n, "D": d, "seconds": (time.perf_counter() - t0) / 3,
           "peak_extra_mb": _rss_mb() - base, "checksum": float(out.sum())})


def _scale_job(groups: tuple[int, ...], q) -> None:
    import torch

    from hetero.grouping import group, group_stats
    from hetero.quantify import QuantifyConfig, quantify
    from marl_backends.envs.pms import PmsScenario
    from marl_backends.envs.sampling import collect_pool
    from marl_backends.envs.vmas_env import VmasEnv

    torch.set_num_threads(1)  # as `hetero quantify` does by default
    base = _rss_mb()
    t0 = time.perf_counter()
    env = VmasEnv(PmsScenario(), f"pms_{sum(groups)}a_{len(groups)}c", 64, "cpu", 0, False, 50, groups=groups)
    pool = collect_pool(env, steps=env.spec.max_steps, behaviour="heuristic", noise=0.3, seed=0, progress=False)
    t1 = time.perf_counter()
    res = quantify(pool, "meta", QuantifyConfig())
    labels = group(res).labels
    from sklearn.metrics import adjusted_rand_score

    q.put({"agents": sum(groups), "groups": len(groups), "sampling_s": t1 - t0, "quantify_s": time.perf_counter() - t1,
           "total_s": time.perf_counter() - t0, "peak_extra_mb": _rss_mb() - base,
           "ari": adjusted_rand_score(env.spec.groups, labels),
           "ratio": group_stats(res.matrix, labels)["ratio"]})


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["kernel", "scale"])
    ap.add_argument("--agents", default="15,30,60,120")
    args = ap.parse_args()
    rows = []
    if args.what == "kernel":
        for b, n in ((10_000, 30), (2_000, 120)):
            fast, naive = _run(_kernel_job, "cdist", b, n, 10), _run(_kernel_job, "naive", b, n, 10)
            rows += [fast, naive]
            print(f"B={b} N={n} D=10: cdist {fast['seconds']*1e3:.1f} ms, {fast['peak_extra_mb']:.0f} MB | "
                  f"naive {naive['seconds']*1e3:.1f} ms, {naive['peak_extra_mb']:.0f} MB | "
                  f"speed-up {naive['seconds']/fast['seconds']:.1f}x, memory ratio "
                  f"{naive['peak_extra_mb']/max(fast['peak_extra_mb'], 1.0):.1f}x")
    else:
        for n in (int(v) for v in args.agents.split(",")):
            groups = (n // 3,) * 3
            r = _run(_scale_job, groups)
            rows.append(r)
            print(f"{r['agents']:4d} agents: sampling {r['sampling_s']:.1f} s, quantify(meta) {r['quantify_s']:.1f} s, "
                  f"total {r['total_s']:.1f} s, peak +{r['peak_extra_mb']:.0f} MB, ARI {r['ari']:.2f}, "
                  f"between/within {r['ratio']:.1f}")
    with open(f"bench/results_{args.what}.json", "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
