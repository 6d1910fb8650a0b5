"""Calibration of the structure test: false-positive rate, power, and environments nobody tuned on.

    python -m case_studies.calibration                  # everything (about an hour on 2 cores)
    python -m case_studies.calibration --part fp --seeds 50
    python -m case_studies.calibration --part power --seeds 20
    python -m case_studies.calibration --part envs
    python -m case_studies.calibration --reweight off --out DIR   # the plain (not reweighted) swap test

Every run is ``quantify`` with the default ``QuantifyConfig`` (Meta-Het unless said otherwise)
followed by ``group``; "more than one group" is the claim whose error rates are measured.

- fp: homogeneous agents -- planted pools with effect 0 (N = 2 and N = 6; and again with every
  agent acting on its own action preferences, ``planted_pool(behaviour=BEHAVIOUR)``: one transition
  function, different visitation -- the null of the behaviour-invariant test), VMAS ``balance``
  with each episode's agent slots shuffled, and VMAS ``balance`` and ``transport`` as they are
  (with S^E in Meta-Het's condition the agents' functions are one: what differs by slot is where
  they are, which the condition holds) --
  the fraction of seeds that report more than one group (the test's family-wise level is
  ``QuantifyConfig.alpha`` = 0.01). Under the condition as printed, (s_i, a_i), plain ``balance``
  is not homogeneous: VMAS spawns agent i at slot i under the line, so agent i sees the line and
  package at its own offset (``--meta-condition own``, reported under envs before 0.3.0). VMAS
  ``navigation`` was a homogeneous case until 0.2.0; with S^E in the condition its agents, each
  with its own goal landmark, are different functions, and it is reported under envs.
- power: planted structures with the agent order shuffled (2 different agents; 3 and 6
  all-different agents; 4 + a singleton; 7/4/1) over a grid of effect sizes: the fraction of
  seeds that report structure and that recover the planted groups (ARI >= 0.9).
- envs: VMAS ``simple_tag`` roles (Meta-Het and Response-Het), MaMuJoCo HalfCheetah-Het 2x3
  (Response-Het), the PMS tasks (Meta-Het, model-based as the CLI runs it; and model-free on
  (s_i, a_i, S^E) under random behaviour, what an early HetDPS round sees), ten seeds each. Env pools are shaped as `hetero
  quantify` shapes its default `--samples 3200` (64 env streams x 50 steps).

Results go to ``case_studies/results/calibration/`` (JSON per part, a Markdown table, the
detection-rate vs effect-size figure).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from case_studies.planted import planted_pool
from hetero.grouping import group
from hetero.quantify import QuantifyConfig, quantify

OUT = Path(__file__).parent / "results" / "calibration"
STRUCTURES = {  # name -> types of the agents
    "2 different": (0, 1),
    "3 all-different": (0, 1, 2),
    "6 all-different": (0, 1, 2, 3, 4, 5),
    "4 + singleton": (0, 0, 0, 0, 1),
    "7/4/1": (0,) * 7 + (1,) * 4 + (2,),
}
EFFECTS = (0.05, 0.1, 0.2, 0.4, 0.8)
BEHAVIOUR = 3.0  # per-agent action preferences of the behaviour-shift nulls (planted_pool(behaviour=...))
SAMPLES = 3200  # transitions per agent: `hetero quantify`'s default --samples (64 env streams x 50 steps)


def ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def one_run(pool, kind: str, seed: int, cfg: QuantifyConfig, model=None) -> dict:
    t0 = time.perf_counter()
    res = quantify(pool, kind, QuantifyConfig(**{**cfg.__dict__, "seed": seed}), model=model)
    g = group(res, seed=seed)
    return {"labels": list(g.labels), "n_groups": g.n_groups, "p_value": res.p_value,
            "seconds": round(time.perf_counter() - t0, 2)}


def planted_runs(types, effect: float, seeds: int, cfg: QuantifyConfig, episodes: int = 32,
                 behaviour: float = 0.0) -> list[dict]:
    out = []
    for seed in range(seeds):
        pool, truth = planted_pool(types, effect, episodes=episodes, seed=seed, behaviour=behaviour)
        r = one_run(pool, "meta", seed, cfg)
        r["ari"] = ari(truth, r["labels"])
        out.append(r)
    return out


def shuffle_agents_per_episode(pool, seed: int):
    """The pool with the agent axis permuted independently in every episode: agents that differ
    only by a fixed slot (VMAS balance spawns agent i at slot i under the line) become
    exchangeable, while the env's own dynamics, noise and time correlation stay real."""
    from hetero.samples import PER_AGENT_FIELDS

    g = torch.Generator().manual_seed(seed)
    ids, dense = torch.unique(pool.episode, return_inverse=True)
    perms = torch.stack([torch.randperm(pool.n_agents, generator=g) for _ in range(ids.numel())])
    idx = perms[dense]  # [T, N]: which agent's data sits in slot k at row t
    take = lambda v: v.gather(1, idx.view(*idx.shape, *[1] * (v.dim() - 2)).expand_as(v))  # noqa: E731
    return dataclasses.replace(pool, **{f: take(getattr(pool, f)) for f in PER_AGENT_FIELDS}, valid=take(pool.valid))


def env_runs(env_name: str, kind: str, seeds: int, cfg: QuantifyConfig, samples: int = SAMPLES,
             shuffle_slots: bool = False, behaviour: str = "heuristic", model_free: bool = False,
             **env_kw) -> list[dict]:
    """Pools shaped as ``hetero quantify --samples SAMPLES`` shapes them (env streams x steps), quantified
    as the CLI does (model-based where the env evaluates the kind, Meta-Het included) unless
    ``model_free``."""
    from hetero.cli import pool_shape
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    num_envs, steps = pool_shape(samples)
    out = []
    for seed in range(seeds):
        env = make_env(env_name, num_envs=num_envs, seed=seed, **env_kw)
        pool = collect_pool(env, steps=steps, behaviour=behaviour, seed=seed, progress=False)
        if shuffle_slots:
            pool = shuffle_agents_per_episode(pool, seed)
        r = one_run(pool, kind, seed, cfg, model=None if model_free else env.model)
        if env.spec.groups is not None:
            r["ari"] = ari(env.spec.groups, r["labels"])
        out.append(r)
    return out


def rate(runs: list[dict], key: str, cond) -> float:
    return float(np.mean([cond(r[key]) for r in runs])) if runs else float("nan")


def _save(path: Path | None, key: str, value: dict) -> None:
    """Add one finished case to the part's JSON (cases finish one by one; a crash keeps them)."""
    if path is None:
        return
    done = json.loads(path.read_text()) if path.exists() else {}
    done[key] = value
    path.write_text(json.dumps(done, indent=1))


def _wanted(name: str, only: str | None) -> bool:
    return only is None or any(part in name for part in only.split(","))


def part_fp(seeds: int, cfg: QuantifyConfig, envs: bool = True, path: Path | None = None,
            only: str | None = None) -> dict:
    cases = {"planted N=2, effect 0": lambda: planted_runs((0, 1), 0.0, seeds, cfg),
             "planted N=6, effect 0": lambda: planted_runs((0,) * 6, 0.0, seeds, cfg),
             f"planted N=2, effect 0, own behaviours ({BEHAVIOUR})": lambda: planted_runs((0, 1), 0.0, seeds, cfg,
                                                                                            behaviour=BEHAVIOUR),
             f"planted N=6, effect 0, own behaviours ({BEHAVIOUR})": lambda: planted_runs((0,) * 6, 0.0, seeds, cfg,
                                                                                            behaviour=BEHAVIOUR)}
    if envs:
        cases |= {"vmas_balance, slots shuffled per episode":
                      lambda: env_runs("vmas_balance", "meta", seeds, cfg, shuffle_slots=True),
                  "vmas_balance (S^E in the condition)": lambda: env_runs("vmas_balance", "meta", seeds, cfg),
                  "vmas_transport": lambda: env_runs("vmas_transport", "meta", seeds, cfg)}
    out = {}
    for name, run in cases.items():
        if not _wanted(name, only):
            continue
        runs = run()
        out[name] = {"runs": runs, "false_positive_rate": rate(runs, "n_groups", lambda v: v > 1), "seeds": seeds}
        _save(path, name, out[name])
        print(f"fp  {name:28s} more than one group in {out[name]['false_positive_rate']:.0%} of {seeds} seeds", flush=True)
    return out


def part_power(seeds: int, cfg: QuantifyConfig, effects=EFFECTS, structures=STRUCTURES, path: Path | None = None,
               only: str | None = None) -> dict:
    out = {}
    for name, types in structures.items():
        if not _wanted(name, only):
            continue
        out[name] = {}
        for eff in effects:
            runs = planted_runs(types, eff, seeds, cfg)
            out[name][str(eff)] = {"runs": runs, "detected": rate(runs, "n_groups", lambda v: v > 1),
                                   "recovered": rate(runs, "ari", lambda v: v >= 0.9)}
            print(f"pow {name:18s} effect {eff:<5} detected {out[name][str(eff)]['detected']:.0%} "
                  f"recovered {out[name][str(eff)]['recovered']:.0%}", flush=True)
        _save(path, name, out[name])
    return out


def part_envs(seeds: int, cfg: QuantifyConfig, path: Path | None = None, only: str | None = None) -> dict:
    cases = [("vmas_simple_tag", "response", {}), ("vmas_simple_tag", "meta", {}),
             ("vmas_navigation", "meta", {}),  # each agent its own goal: with S^E, all-different functions
             ("mamujoco_halfcheetah_2x3_het", "response", {}), ("mamujoco_halfcheetah_2x3", "response", {}),
             ("pms_15a_3c", "meta", {}), ("pms_15a_5c", "meta", {}), ("pms_30a_3c", "meta", {}),
             ("pms_30a_5c", "meta", {})]
    # the model-free Meta-Het on (s_i, a_i, S^E), under random behaviour (what an early HetDPS round sees)
    cases += [(t, "meta", {"behaviour": "random", "model_free": True})
              for t in ("pms_15a_3c", "pms_15a_5c", "pms_30a_3c", "pms_30a_5c")]
    out = {}
    for env_name, kind, kw in cases:
        if not _wanted(f"{env_name} {kind}" + (" model-free" if kw.get("model_free") else ""), only):
            continue
        try:
            runs = env_runs(env_name, kind, seeds, cfg, **kw)
        except ImportError as e:  # an optional extra is missing
            print(f"env {env_name} {kind}: skipped ({e})")
            continue
        key = f"{env_name} {kind}" + (" model-free, random behaviour" if kw.get("model_free") else "")
        out[key] = {"runs": runs, "groups": [r["n_groups"] for r in runs],
                    "ari": [r.get("ari") for r in runs], "p_values": [r["p_value"] for r in runs]}
        print(f"env {key:36s} groups {out[key]['groups']} ARI {out[key]['ari']}", flush=True)
        _save(path, key, out[key])
    return out


def figure(power: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for name, by_eff in power.items():
        eff = sorted(by_eff, key=float)
        x = [float(e) for e in eff]
        axes[0].plot(x, [by_eff[e]["detected"] for e in eff], marker="o", label=name)
        axes[1].plot(x, [by_eff[e]["recovered"] for e in eff], marker="o", label=name)
    for ax, title in zip(axes, ("detected (more than one group)", "recovered (ARI >= 0.9)")):
        ax.set_xscale("log")
        ax.set_xlabel("planted effect size")
        ax.set_title(title)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of seeds")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path.with_suffix(".png"), dpi=130)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def table(out: Path) -> str:
    """The Markdown tables of the README from the saved JSON files."""
    lines = []
    fp = out / "false_positives.json"
    if fp.exists():
        lines += ["| homogeneous agents | seeds | more than one group | p < 0.01 | p < 0.05 |", "|---|---|---|---|---|"]
        for name, v in json.loads(fp.read_text()).items():
            ps = [r["p_value"] for r in v["runs"]]
            lines.append(f"| {name} | {len(ps)} | {v['false_positive_rate']:.0%} | {np.mean([p < 0.01 for p in ps]):.0%} "
                         f"| {np.mean([p < 0.05 for p in ps]):.0%} |")
        lines.append("")
    pw = out / "power.json"
    if pw.exists():
        power = json.loads(pw.read_text())
        effs = sorted({e for by in power.values() for e in by}, key=float)
        lines += ["| planted structure (recovered, ARI >= 0.9 / detected) | " + " | ".join(f"effect {e}" for e in effs) + " |",
                  "|---|" + "---|" * len(effs)]
        for name, by in power.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{by[e]['recovered']:.0%} / {by[e]['detected']:.0%}" if e in by else "" for e in effs) + " |")
        lines.append("")
    ev = out / "environments.json"
    if ev.exists():
        lines += ["| environment, kind | seeds | env's groups found (ARI >= 0.9) | groups per seed | largest p |",
                  "|---|---|---|---|---|"]
        for name, v in json.loads(ev.read_text()).items():
            found = "-" if v["ari"][0] is None else f"{sum(a >= 0.9 for a in v['ari'])} of {len(v['ari'])}"
            lines.append(f"| {name} | {len(v['groups'])} | {found} | {', '.join(map(str, v['groups']))} | "
                         f"{max(v['p_values']):.2g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["all", "fp", "power", "envs", "table"])
    ap.add_argument("--seeds", type=int, default=None, help="seeds per case (default: fp 50, power 20, envs 10)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--only", default=None, help="comma list of substrings: run only the cases whose name has one")
    ap.add_argument("--kl-weight", type=float, default=None, help="CVAE KL weight (default: CVAEConfig's)")
    ap.add_argument("--reweight", choices=["default", "on", "off"], default="default",
                    help="behaviour-invariant swap test (QuantifyConfig.reweight; default: QuantifyConfig's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = QuantifyConfig()
    if args.reweight != "default":
        cfg = dataclasses.replace(cfg, reweight=args.reweight == "on")
    if args.kl_weight is not None:
        cfg = dataclasses.replace(cfg, cvae=dataclasses.replace(cfg.cvae, kl_weight=args.kl_weight))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.part == "table":
        print(table(out))
        return
    if args.part in ("all", "fp"):
        part_fp(args.seeds or 50, cfg, path=out / "false_positives.json", only=args.only)
    if args.part in ("all", "power"):
        part_power(args.seeds or 20, cfg, path=out / "power.json", only=args.only)
        figure(json.loads((out / "power.json").read_text()), out / "power_curve")
    if args.part in ("all", "envs"):
        part_envs(args.seeds or 10, cfg, path=out / "environments.json", only=args.only)
    print(f"done in {time.perf_counter() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
