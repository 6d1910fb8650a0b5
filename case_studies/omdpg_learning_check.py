"""Learning check: OMDPG on MaMuJoCo HalfCheetah 2x3 rises clearly above a random policy.

Scaled to a 2-core CPU: batch 256 instead of HARL's 1000, 4 envs, one gradient update per
vectorised env step; everything else per HARL Tables 5, 15-16 (HalfCheetah 2x3: n-step 10,
policy delay 2) and OMDPG Tables 3-4 (C_k = 5, lambda_PU = 0.1). Groups: hind / fore leg
(the paper's ParPS layout; for 2x3 each leg is one agent). Falls back to VMAS spread_v4
(continuous) when the MaMuJoCo extra is absent.

Writes ``<out>/<env>_<algo><tag>_seed<k>/{config.json,metrics.csv,summary.json}`` and prints:
the random policy's return, the deterministic evaluation return every ``--eval-every`` steps, and
the wall time per 100k env steps. ``--pu-anchor target`` is Eq. 12 as printed (tag ``_eq12``),
``--omq-prefix buffer`` the replay-buffer prefix actions (tag ``_bufprefix``).

    python case_studies/omdpg_learning_check.py [--steps 40000] [--env mamujoco_halfcheetah_2x3] [--seed 0]
    python case_studies/omdpg_learning_check.py --plot OUT   # mean +/- sd eval curves of every run in OUT
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import torch

from marl_backends.envs import make_env
from marl_backends.envs.mamujoco import mamujoco_available
from marl_backends.offpolicy import ABLATION, OffPolicyTrainer


FIELDS = ["env_steps", "updates", "wall_s", "episode_return", "eval_return", "loss_true", "q", "loss_pu", "pu_std",
          "actor_loss"]


def random_return(name: str, episodes: int, seed: int, max_steps: int) -> float:
    env = make_env(name, num_envs=episodes, seed=seed, continuous=True, max_steps=max_steps)
    obs, g = env.reset(seed=seed), torch.Generator().manual_seed(seed)
    acc, done_ret = torch.zeros(episodes), []
    while len(done_ret) < episodes:
        res = env.step(env.heuristic_actions(obs, 1.0, g))
        acc += res.reward.mean(-1)
        done_ret.extend(acc[res.done].tolist())
        acc[res.done] = 0.0
        obs = res.obs
    return sum(done_ret[:episodes]) / episodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="mamujoco_halfcheetah_2x3" if mamujoco_available() else "spread_v4")
    ap.add_argument("--algo", default="omdpg", choices=sorted(ABLATION))
    ap.add_argument("--steps", type=int, default=40_000, help="env transitions (envs x steps)")
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--eval-every", type=int, default=10_000)
    ap.add_argument("--omq-min", default="terms", choices=["terms", "difference"],
                    help="where Eq. 15 takes the min over critics (see marl_backends/offpolicy/omq.py)")
    ap.add_argument("--pu-prefix-min", type=int, default=1, choices=[0, 1], help="see OffPolicyConfig.pu_prefix_min")
    ap.add_argument("--pu-anchor", default="online", choices=["online", "target"], help="see OffPolicyConfig.pu_anchor")
    ap.add_argument("--omq-prefix", default="policy", choices=["policy", "buffer"], help="see OffPolicyConfig.omq_prefix")
    ap.add_argument("--plot", default="", metavar="OUT", help="only plot the runs under OUT (mean +/- sd over seeds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/omdpg_learning_check")
    a = ap.parse_args()
    if a.plot:
        plot(Path(a.plot))
        return
    torch.set_num_threads(a.threads)
    mj = a.env.startswith("mamujoco")
    max_steps = 1000 if mj else 50
    cfg = ABLATION[a.algo](batch_size=a.batch, seed=a.seed, warmup_steps=5000 if mj else 2000,
                           n_step=10 if mj else 3, train_interval=50 if mj else 10, omq_min=a.omq_min,
                           pu_prefix_min=a.pu_prefix_min, pu_anchor=a.pu_anchor, omq_prefix=a.omq_prefix)
    env = make_env(a.env, num_envs=a.num_envs, seed=a.seed, continuous=True, max_steps=max_steps)
    eval_env = make_env(a.env, num_envs=5, seed=a.seed + 1000, continuous=True, max_steps=max_steps)
    layout = env.spec.groups or tuple(range(env.spec.n_agents))
    tr = OffPolicyTrainer(env, cfg, layout)
    omq = a.algo in ("omdpg", "matd3-omq")
    tag = "" if a.omq_min == "terms" or not omq else f"_omq-{a.omq_min}"
    tag += "_eq12" if a.pu_anchor == "target" and cfg.pu_coef > 0 else ""
    tag += "_bufprefix" if a.omq_prefix == "buffer" and omq else ""
    out = Path(a.out) / f"{a.env}_{a.algo}{tag}_seed{a.seed}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"args": vars(a), "config": dataclasses.asdict(cfg), "layout": layout}, indent=1))
    rnd = random_return(a.env, 5, a.seed + 2000, max_steps)
    print(f"random policy return on {a.env}: {rnd:.1f}")
    evals, next_eval, t0, train_wall = [], a.eval_every, time.perf_counter(), 0.0
    f = open(out / "metrics.csv", "w", newline="")
    w = None

    def log(trainer, row):
        nonlocal w, next_eval, train_wall
        if trainer.env_steps >= next_eval or trainer.env_steps >= a.steps:
            train_wall = time.perf_counter() - t0 - sum(e["eval_s"] for e in evals)
            te = time.perf_counter()
            ret = trainer.evaluate(eval_env, 5)
            evals.append({"env_steps": trainer.env_steps, "eval_return": ret, "train_wall_s": train_wall,
                          "eval_s": time.perf_counter() - te, "train_return": row["episode_return"]})
            print(f"  steps {trainer.env_steps:>7}  eval return {ret:8.1f}  train return {row['episode_return']:8.1f}  "
                  f"train wall {train_wall:7.1f}s", flush=True)
            next_eval += a.eval_every
            row = {**row, "eval_return": ret}
        if w is None:
            w = csv.DictWriter(f, fieldnames=FIELDS, restval="", extrasaction="ignore")
            w.writeheader()
        w.writerow(row)

    tr.train(a.steps, progress=False, on_iteration=log)
    f.close()
    per100k = evals[-1]["train_wall_s"] / tr.env_steps * 100_000
    summary = {"env": a.env, "algo": a.algo, "random_return": rnd, "evals": evals, "final_eval_return": evals[-1]["eval_return"],
               "env_steps": tr.env_steps, "updates": tr.n_updates, "train_wall_s_per_100k_steps": per100k,
               "threads": a.threads}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"final eval return {evals[-1]['eval_return']:.1f} vs random {rnd:.1f}; "
          f"{tr.n_updates} updates; train wall {per100k:.0f} s per 100k env steps -> {out}")


LABELS = {"matd3": "MATD3", "omdpg": "OMDPG (online PU anchor)", "omdpg_eq12": "OMDPG, Eq. 12 as printed"}


def plot(out: Path) -> None:
    """Mean +/- sd over seeds of the deterministic eval return, one panel per env (reward_bands),
    and a table of the final evals (``summary.md``)."""
    from hetero.plotting import reward_bands

    panels: dict[str, dict[str, list]] = {}
    for f in sorted(out.glob("*_seed*/summary.json")):
        d = json.loads(f.read_text())
        variant = f.parent.name[len(d["env"]) + 1:].rsplit("_seed", 1)[0]
        ev = d["evals"]
        panels.setdefault(d["env"], {v: [] for v in LABELS.values()}).setdefault(LABELS.get(variant, variant), []).append(
            ([e["env_steps"] for e in ev], [e["eval_return"] for e in ev]))
    reward_bands(panels, out / "eval_return_bands", smooth=1, ylabel="deterministic eval return (5 episodes)")
    def ms(xs: list[float]) -> str:
        mu = sum(xs) / len(xs)
        return f"{mu:.1f} +/- {(sum((x - mu) ** 2 for x in xs) / len(xs)) ** 0.5:.1f}"

    lines = ["| env | variant | seeds | final eval, mean +/- sd | per seed | mean of the last 4 evals, mean +/- sd |",
             "|---|---|---:|---:|---|---:|"]
    for env, by in panels.items():
        for label, runs in by.items():
            if not runs:
                continue
            fin, last4 = [r[-1] for _, r in runs], [sum(r[-4:]) / len(r[-4:]) for _, r in runs]
            lines.append(f"| {env} | {label} | {len(fin)} | {ms(fin)} | {', '.join(f'{x:.1f}' for x in fin)} | {ms(last4)} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
