"""Benchmarks for quantification: the quantify stage and the whole command, before/after; wall time
and peak memory vs agent count; the W2 kernel.

Reproduce (torch CPU build; 1 torch thread, as `hetero quantify` uses by default):

    python bench/bench_quantify.py speed --tree /tmp/base --label before  # code to compare, e.g.
    python bench/bench_quantify.py speed --label after                    # `git archive d795768`
    python bench/bench_quantify.py scale --label after  # quantify meta on PMS with 15, 30, 60, 120
                                                     # agents (3 colours of N/3, 64 episodes, defaults)
    python bench/bench_quantify.py kernel            # all-pairs W2: cdist kernel vs [B,N,N,D] broadcast
    python bench/bench_quantify.py speed --device cuda   # same, on a GPU machine (scale too)
    python bench/bench_quantify.py settings --behaviours heuristic,random \
        --cvae '{"lr": 2e-3, "batch_size": 256, "epochs": 10}' --cvae '{}'   # CVAE settings vs quality

``speed`` measures, on pms_15a_3c with heuristic behaviour and seed 0: the quantify stage
(``quantify(pool, "meta")`` with default settings; first call in a fresh process, as the CLI
makes it, then a second call), the whole command ``hetero quantify --env pms_15a_3c --quiet``
(plots included) and ``hetero --help``, each ``--repeat`` times. Besides wall time it records
the CPU time (user + system) of the process: with one thread it is what the wall time is on an
idle machine, and it is much less inflated than wall time when other jobs share the cores (the
1-minute load average is recorded with every row). Results are appended to
``bench/results_speed.json`` (kept per label and device; a rerun replaces its rows).

Each measurement runs in a fresh child process, so its imports and peak resident memory
(ru_maxrss, minus the process's size after imports) are its own. ``--tree DIR`` measures the
``hetero`` of another checkout (the child puts DIR first on sys.path / runs in DIR).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _kernel_job(tree: str, impl: str, b: int, n: int, d: int, q) -> None:
    sys.path.insert(0, tree)
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


def _pms_pool(groups: tuple[int, ...], device: str):
    from marl_backends.envs.pms import PmsScenario
    from marl_backends.envs.sampling import collect_pool
    from marl_backends.envs.vmas_env import VmasEnv

    env = VmasEnv(PmsScenario(), f"pms_{sum(groups)}a_{len(groups)}c", 64, device, 0, False, 50, groups=groups)
    return env, collect_pool(env, steps=env.spec.max_steps, behaviour="heuristic", noise=0.3, seed=0, progress=False)


def _quality(env, res) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from hetero.grouping import group, group_stats

    labels = group(res).labels
    return {"ari": adjusted_rand_score(env.spec.groups, labels), "ratio": group_stats(res.matrix, env.spec.groups)["ratio"]}


def _scale_job(tree: str, groups: tuple[int, ...], device: str, q) -> None:
    sys.path.insert(0, tree)
    import torch

    from hetero.quantify import QuantifyConfig, quantify

    torch.set_num_threads(1)  # as `hetero quantify` does by default
    base = _rss_mb()
    t0 = time.perf_counter()
    env, pool = _pms_pool(groups, device)
    t1, c1 = time.perf_counter(), _cpu_s()
    res = quantify(pool, "meta", QuantifyConfig(device=device))
    t2, c2 = time.perf_counter(), _cpu_s()
    q.put({"agents": sum(groups), "groups": len(groups), "device": device, "sampling_s": t1 - t0,
           "quantify_s": t2 - t1, "quantify_cpu_s": c2 - c1, "total_s": t2 - t0,
           "peak_extra_mb": _rss_mb() - base, "load_1min": os.getloadavg()[0], **_quality(env, res)})


def _stage_job(tree: str, device: str, q) -> None:
    sys.path.insert(0, tree)
    import torch

    from hetero.quantify import QuantifyConfig, quantify

    torch.set_num_threads(1)
    env, pool = _pms_pool((5, 5, 5), device)
    row = {}
    for call in ("first", "second"):  # the first pays one-time costs (lazy imports), as in the CLI
        t0, c0 = time.perf_counter(), _cpu_s()
        res = quantify(pool, "meta", QuantifyConfig(device=device))
        row[f"stage_{call}_s"], row[f"stage_{call}_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
    row["settings"] = res.settings["cvae"]
    q.put(row | _quality(env, res))


def _settings_job(tree: str, task: str, behaviour: str, seed: int, cvae: list[dict], q) -> None:
    """Meta-Het on one pool under several CVAE settings: time, ARI vs colours, ratio, structure-test p-value."""
    sys.path.insert(0, tree)
    from dataclasses import replace

    import torch

    from sklearn.metrics import adjusted_rand_score

    from hetero.cvae import CVAEConfig
    from hetero.grouping import cluster, group_stats
    from hetero.quantify import QuantifyConfig, quantify
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    torch.set_num_threads(1)
    env = make_env(task, num_envs=64, seed=seed)
    pool = collect_pool(env, steps=env.spec.max_steps, behaviour=behaviour, noise=0.3, seed=seed, progress=False)
    rows = []
    for cv in cvae:
        cfg = QuantifyConfig(seed=seed, cvae=replace(CVAEConfig(), **cv))
        t0, c0 = time.perf_counter(), _cpu_s()
        res = quantify(pool, "meta", cfg)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        labels = cluster(res.matrix, res.noise_floor, seed=seed).labels
        rows.append({"task": task, "behaviour": behaviour, "seed": seed, "lr": cfg.cvae.lr,
                     "batch_size": cfg.cvae.batch_size, "epochs": cfg.cvae.epochs,
                     "quantify_cpu_s": cpu, "quantify_wall_s": wall, "load_1min": os.getloadavg()[0],
                     "ari_vs_colours": adjusted_rand_score(env.spec.groups, labels), "n_groups": len(set(labels)),
                     "between_within_ratio": group_stats(res.matrix, env.spec.groups)["ratio"],
                     "p_value": res.p_value, "noise_floor": res.noise_floor})
    q.put(rows)


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def _timed_command(tree: str, args: list[str]) -> dict:
    """Wall and CPU time (user + system of the child) of ``python -m hetero.cli ARGS`` run in tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hetero.cli", *args], cwd=tree, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def speed(tree: str, label: str, device: str, repeat: int) -> list[dict]:
    rows = []
    for r in range(repeat):
        row = {"label": label, "device": device, "repeat": r, "load_1min_before": os.getloadavg()[0]}
        row |= _run(_stage_job, tree, device)
        with tempfile.TemporaryDirectory() as out:
            cmd = _timed_command(tree, ["quantify", "--env", "pms_15a_3c", "--quiet", "--device", device, "--out", out])
        row |= {"command_s": cmd["wall_s"], "command_cpu_s": cmd["cpu_s"]}
        helped = _timed_command(tree, ["--help"])
        row |= {"help_s": helped["wall_s"], "help_cpu_s": helped["cpu_s"], "load_1min_after": os.getloadavg()[0]}
        rows.append(row)
        print(f"{label} [{device}] #{r}: quantify stage {row['stage_first_s']:.1f} s wall / {row['stage_first_cpu_s']:.1f} s CPU "
              f"(second call {row['stage_second_s']:.1f} / {row['stage_second_cpu_s']:.1f}), whole command "
              f"{row['command_s']:.1f} / {row['command_cpu_s']:.1f}, --help {row['help_s']:.1f} / {row['help_cpu_s']:.1f}, "
              f"ARI {row['ari']:.2f}, ratio {row['ratio']:.1f}, load {row['load_1min_before']:.1f}-{row['load_1min_after']:.1f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["speed", "scale", "kernel", "settings"])
    ap.add_argument("--agents", default="15,30,60,120", help="scale: agent counts (3 colours of N/3)")
    ap.add_argument("--tree", default=str(HERE), help="checkout whose hetero is measured (default: this one)")
    ap.add_argument("--label", default="after", help="speed, scale: name of the measured code (before / after)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeat", type=int, default=3, help="speed: measurements per quantity")
    ap.add_argument("--tasks", default="pms_15a_3c,pms_15a_5c_shuffle,pms_30a_5c", help="settings: PMS tasks")
    ap.add_argument("--behaviours", default="heuristic", help="settings: heuristic and/or random")
    ap.add_argument("--seeds", default="0,1,2", help="settings: seeds")
    ap.add_argument("--cvae", action="append", default=None,
                    help="settings: CVAEConfig overrides as JSON, repeatable (default: the defaults)")
    args = ap.parse_args()
    tree = str(Path(args.tree).resolve())
    rows = []
    if args.what == "speed":
        rows = speed(tree, args.label, args.device, args.repeat)
        path = HERE / "bench" / "results_speed.json"
        old = json.loads(path.read_text()) if path.exists() else []
        keep = [r for r in old if (r["label"], r["device"]) != (args.label, args.device)]
        path.write_text(json.dumps(keep + rows, indent=1))
        return
    if args.what == "settings":
        cvae = [json.loads(c) for c in args.cvae] if args.cvae else [{}]
        for task in args.tasks.split(","):
            for behaviour in args.behaviours.split(","):
                for seed in (int(v) for v in args.seeds.split(",")):
                    for r in _run(_settings_job, tree, task, behaviour, seed, cvae):
                        rows.append(r)
                        print(json.dumps(r), flush=True)
        out = HERE / "bench" / f"results_cvae_settings_{args.label}.json"
        out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))
        return
    if args.what == "kernel":
        for b, n in ((10_000, 30), (2_000, 120)):
            fast, naive = _run(_kernel_job, tree, "cdist", b, n, 10), _run(_kernel_job, tree, "naive", b, n, 10)
            rows += [fast, naive]
            print(f"B={b} N={n} D=10: cdist {fast['seconds']*1e3:.1f} ms, {fast['peak_extra_mb']:.0f} MB | "
                  f"naive {naive['seconds']*1e3:.1f} ms, {naive['peak_extra_mb']:.0f} MB | "
                  f"speed-up {naive['seconds']/fast['seconds']:.1f}x, memory ratio "
                  f"{naive['peak_extra_mb']/max(fast['peak_extra_mb'], 1.0):.1f}x")
    else:
        for n in (int(v) for v in args.agents.split(",")):
            r = _run(_scale_job, tree, (n // 3,) * 3, args.device)
            rows.append(r)
            print(f"{r['agents']:4d} agents: sampling {r['sampling_s']:.1f} s, quantify(meta) {r['quantify_s']:.1f} s "
                  f"({r['quantify_cpu_s']:.1f} s CPU), total {r['total_s']:.1f} s, peak +{r['peak_extra_mb']:.0f} MB, "
                  f"ARI {r['ari']:.2f}, between/within {r['ratio']:.1f}, load {r['load_1min']:.1f}")
    suffix = ("" if args.what == "kernel" else f"_{args.label}") + ("" if args.device == "cpu" else f"_{args.device}")
    (HERE / "bench" / f"results_{args.what}{suffix}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
