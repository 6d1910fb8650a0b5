"""`hetero quantify | envs | train | plot` — the command line.

The CLI is the only part of ``hetero`` that knows the backends: it builds envs and trainers
from ``marl_backends`` and hands them to the science in ``hetero`` through its protocols.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from hetero.cvae import CVAEConfig
from hetero.grouping import cluster, group_stats
from hetero.kinds import ENV_KINDS, KINDS
from hetero.quantify import QuantifyConfig, quantify


def _ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def format_matrix(m: np.ndarray, labels) -> str:
    """A readable matrix: agents ordered by group, '|' between groups."""
    order = np.argsort(np.asarray(labels), kind="stable")
    lab = np.asarray(labels)[order]
    w = max(5, len(f"{m.max():.2f}") + 1)
    head = " " * 5 + "".join(f"{i:>{w}d}" for i in order)
    lines = [head]
    for r in order:
        cells = []
        for k, c in enumerate(order):
            sep = "|" if k > 0 and lab[k] != lab[k - 1] else " "
            cells.append(sep + f"{m[r, c]:{w - 1}.2f}")
        lines.append(f"{r:>4d} " + "".join(cells))
    return "\n".join(lines)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def _kinds(arg: str, have_policy: bool) -> list[str]:
    if arg == "all":
        return list(ENV_KINDS) + (["policy"] if have_policy else []) + ["meta"]
    out = []
    for k in arg.split(","):
        if k not in KINDS:
            raise SystemExit(f"error: unknown kind {k!r}; choose from {', '.join(KINDS)} or 'all'.")
        out.append(k)
    return out


def _load_checkpoint(path: str):
    """The trainer saved in a `hetero train` run folder (on-policy or off-policy)."""
    from marl_backends.offpolicy.checkpoint import is_offpolicy_checkpoint, load_offpolicy_trainer
    from marl_backends.trainers.checkpoint import load_trainer

    try:
        return load_offpolicy_trainer(path) if is_offpolicy_checkpoint(path) else load_trainer(path)
    except FileNotFoundError as e:
        raise SystemExit(f"error: {e}")


def _behaviour(spec: str, trainer, seed: int):
    """The behaviour policy that fills the sample pool (paper: training trajectories)."""
    if spec in ("heuristic", "random"):
        return spec
    if spec.startswith("checkpoint:"):  # the trained policies, sampling their own actions
        gen = torch.Generator().manual_seed(seed)
        if hasattr(trainer, "act_behaviour"):  # off-policy: deterministic actor + exploration noise
            return lambda o: trainer.act_behaviour(o.obs, o.avail_actions, generator=gen)[0]
        return lambda o: trainer.actor.act(o.obs.to(trainer.device), o.avail_actions, generator=gen)[0]
    raise SystemExit(f"error: --behaviour {spec!r}; use heuristic, random or checkpoint:RUN_DIR.")


def cmd_quantify(args) -> int:
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run_dir = Path(args.out) if args.out else Path("runs") / "quantify" / f"{args.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    kinds = _kinds(args.kind, have_policy=True)
    trainer = None
    ckpt = args.checkpoint or (args.behaviour[len("checkpoint:"):] if args.behaviour.startswith("checkpoint:") else None)
    if ckpt:
        trainer = _load_checkpoint(ckpt)
        if trainer.cfg.env != args.env:
            raise SystemExit(f"error: checkpoint {ckpt} was trained on {trainer.cfg.env!r}, not --env {args.env!r}.")
    try:
        env = make_env(args.env, num_envs=max(1, -(-args.samples // 50)), device=args.device, seed=args.seed,
                       continuous=args.continuous)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    policy_fn = None
    if "policy" in kinds:
        if trainer is not None:
            policy_fn = trainer.policy_distributions
        else:
            from marl_backends.nets import make_policy

            policy_fn = make_policy(env.spec, sharing="nps", seed=args.seed).distribution_params
            print("note: --kind policy without --checkpoint measures random-init (NPS) policies.")
    behaviour = _behaviour(args.behaviour, trainer, args.seed)
    cfg = QuantifyConfig(
        mode=args.mode, train_samples=args.train_samples, eval_samples=args.eval_samples, seed=args.seed,
        device=args.device, cvae=replace(CVAEConfig(), epochs=args.epochs),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"command": " ".join(sys.argv), "env": args.env, "kinds": kinds, "samples": args.samples,
              "behaviour": args.behaviour, "noise": args.noise, "checkpoint": ckpt, "seed": args.seed,
              "device": args.device, "quantify": asdict(cfg), "env_spec": asdict(env.spec)}
    _write_json(run_dir / "config.json", config)

    t0 = time.perf_counter()
    steps = env.spec.max_steps
    pool = collect_pool(env, steps=steps, behaviour=behaviour, noise=args.noise, seed=args.seed, progress=not args.quiet)
    timings = {"sampling_s": round(time.perf_counter() - t0, 3)}
    truth = env.spec.groups
    from tqdm import tqdm

    summary = {"env": args.env, "behaviour": args.behaviour, "pool_rows": pool.rows, "kinds": {}}
    matrices: dict[str, np.ndarray] = {}
    model_kinds = env.model.kinds if env.model is not None else frozenset()
    free = [k for k in kinds if k == "meta" or (k != "policy" and (k not in model_kinds or cfg.mode == "model-free"))]
    n_fits = len(kinds) + (len(free) if cfg.split_half else 0)  # model-free kinds fit one CVAE per half
    bar = tqdm(total=n_fits * cfg.cvae.epochs, desc="training CVAEs", disable=args.quiet, leave=False)
    for kind in kinds:
        res = quantify(pool, kind, cfg, model=env.model, policy_fn=policy_fn if kind == "policy" else None,
                       progress=lambda k, e, l: (bar.set_postfix(kind=k, loss=f"{l:.3f}"), bar.update(1)))
        groups = cluster(res.matrix, res.noise_floor, seed=args.seed)
        stats = group_stats(res.matrix, groups.labels)
        res.save(run_dir / "matrices")
        matrices[kind] = res.matrix
        entry = {"mode": res.mode, "groups": list(groups.labels), "n_groups": groups.n_groups,
                 "grouping": groups.method, "note": groups.note, "noise_floor": res.noise_floor,
                 "between": stats["between"], "within": stats["within"], "ratio": stats["ratio"],
                 "seconds": res.timings["quantify_s"]}
        if truth is not None:
            entry["ari_vs_env_groups"] = _ari(truth, groups.labels)
        summary["kinds"][kind] = entry
        timings[f"{kind}_s"] = res.timings["quantify_s"]
        if not args.no_plots:
            from hetero.plotting import heatmap

            heatmap(res.matrix, groups.labels, f"{KINDS[kind].title} ({res.mode}) — {args.env}", run_dir / "figures" / kind)
        bar.clear()
        print(f"\n{KINDS[kind].title} [{res.mode}] on {args.env}: {groups.n_groups} group(s) "
              f"(noise floor {res.noise_floor:.3f}; between {stats['between']:.3f}, within {stats['within']:.3f})")
        print(format_matrix(res.matrix, groups.labels))
        print("groups:", _group_lists(groups.labels) + (f"   ARI vs env groups: {entry['ari_vs_env_groups']:.2f}" if truth else ""))
        if groups.note:
            print("note:", groups.note)
    bar.close()
    if len(kinds) > 1 and not args.no_plots:  # one figure with every kind side by side
        from hetero.plotting import matrix_panels

        panels = [(f"{KINDS[k].title} ({summary['kinds'][k]['mode']}): {summary['kinds'][k]['n_groups']} "
                   f"group{'s' if summary['kinds'][k]['n_groups'] != 1 else ''}", matrices[k],
                   summary["kinds"][k]["groups"]) for k in kinds]
        matrix_panels(panels, run_dir / "figures" / "all_kinds", suptitle=args.env)
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    summary["timings"] = timings
    _write_json(run_dir / "summary.json", summary)
    print(f"\nwrote {run_dir} (config.json, summary.json, matrices/, figures/) in {timings['total_s']:.1f} s")
    return 0


def _group_lists(labels) -> str:
    lab = np.asarray(labels)
    return "  ".join("{" + ",".join(str(i) for i in np.flatnonzero(lab == g)) + "}" for g in range(lab.max() + 1))


def cmd_envs(args) -> int:
    from marl_backends.envs import list_envs

    for name, desc in list_envs().items():
        print(f"{name:28s} {desc}")
    return 0


def _checkpoint_near(run: Path, update: int) -> Path:
    ckpts = sorted((run / "checkpoints").glob("iter_*.pt"))
    if not ckpts:
        raise SystemExit(f"error: {run} has no checkpoints/iter_*.pt; --at needs a run trained with checkpoints.")
    return min(ckpts, key=lambda p: abs(int(p.stem.split("_")[1]) - update))


def cmd_plot(args) -> int:
    """Figures of a training run: HetDPS matrices across rounds, the group timeline, reward curves
    against other runs, and (--kinds/--at) matrices quantified from checkpoints (paper Fig. 4)."""
    from hetero.plotting import matrix_panels
    from hetero.run_figures import hetdps_figures, reward_figure

    run = Path(args.run_dir)
    if not (run / "metrics.csv").exists():
        raise SystemExit(f"error: {run} has no metrics.csv; pass a run folder written by `hetero train`.")
    out = Path(args.out) if args.out else run / "figures"
    fmts = tuple(args.formats.split(","))
    written: list[Path] = hetdps_figures(run, out, fmts, args.panels)
    written += reward_figure(run, args.compare, out, fmts, smooth=args.smooth)
    if args.at:
        from marl_backends.trainers import load_trainer

        panels = []
        for u in [int(x) for x in args.at.split(",")]:
            ck = _checkpoint_near(run, u)
            tr = load_trainer(ck, progress=False)
            pool = tr.sample_pool()
            for kind in args.kinds.split(","):
                if kind not in KINDS:
                    raise SystemExit(f"error: unknown kind {kind!r} in --kinds; choose from {', '.join(KINDS)}.")
                res = quantify(pool, kind, QuantifyConfig(train_samples=args.train_samples, seed=args.seed),
                               model=getattr(tr.env, "model", None), policy_fn=tr.policy_distributions)
                g = cluster(res.matrix, res.noise_floor, seed=args.seed)
                panels.append((f"{KINDS[kind].title} @ update {tr.iteration}: {g.n_groups} "
                               f"group{'s' if g.n_groups != 1 else ''}", res.matrix, g.labels))
        written += matrix_panels(panels, out / "matrices_by_update", fmts, ncols=len(args.kinds.split(",")),
                                 suptitle=f"{tr.cfg.env}: matrices across training (one row per checkpoint)")
    for pth in written:
        print(pth)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetero", description="Quantify and use agent heterogeneity in MARL.")
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("quantify", help="distance matrices for the heterogeneity kinds and the groups they imply")
    q.add_argument("--env", required=True, help="env name (see `hetero envs`), e.g. pms_15a_3c")
    q.add_argument("--kind", default="meta", help="obs|response|effect|objective|policy|meta|all, or a comma list (default meta)")
    q.add_argument("--samples", type=int, default=3200, help="transitions per agent in the sample pool (default 3200 = 64 episodes)")
    q.add_argument("--train-samples", type=int, default=QuantifyConfig.train_samples, help="conditions x to train each CVAE on")
    q.add_argument("--eval-samples", type=int, default=QuantifyConfig.eval_samples, help="Monte-Carlo conditions x per distance")
    q.add_argument("--epochs", type=int, default=CVAEConfig.epochs, help="CVAE training epochs")
    q.add_argument("--mode", default="auto", choices=["auto", "model-based", "model-free"])
    q.add_argument("--behaviour", default="heuristic", help="heuristic | random | checkpoint:RUN_DIR (who fills the pool)")
    q.add_argument("--noise", type=float, default=0.3, help="exploration noise of the heuristic behaviour")
    q.add_argument("--checkpoint", default=None, help="RUN_DIR of `hetero train`: its policies for --kind policy")
    q.add_argument("--continuous", action="store_true", help="continuous actions (PMS / spread)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", default="cpu", help="cpu or cuda")
    q.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the CVAEs are small, and more threads only pay off "
                        "on an idle many-core machine; measured 10x slower with 2 threads on a busy 2-core one)")
    q.add_argument("--out", default=None, help="run folder (default runs/quantify/ENV-TIME)")
    q.add_argument("--no-plots", action="store_true")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_quantify)

    pl = sub.add_parser("plot", help="figures of a training run: HetDPS matrices, group timeline, reward curves")
    pl.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `hetero train`")
    pl.add_argument("--compare", nargs="*", default=[], metavar="RUN", help="other run folders for the reward curves")
    pl.add_argument("--out", default=None, help="figure folder (default RUN_DIR/figures)")
    pl.add_argument("--panels", type=int, default=4, help="HetDPS rounds shown (evenly spaced, first and last)")
    pl.add_argument("--at", default="", help="updates to quantify from checkpoints, e.g. 500,1500 (paper Fig. 4)")
    pl.add_argument("--kinds", default="policy,meta", help="kinds quantified with --at (default policy,meta)")
    pl.add_argument("--train-samples", type=int, default=2000, help="CVAE training conditions per --at matrix")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--smooth", type=int, default=5, help="trailing mean over this many iterations for training return")
    pl.add_argument("--formats", default="png,pdf", help="comma list of figure formats")
    pl.set_defaults(func=cmd_plot)

    from marl_backends.trainers.evaluate import add_evaluate_arguments, cmd_evaluate

    ev = sub.add_parser("evaluate", help="play a trained policy: returns, win rate, optional GIF (VMAS)")
    add_evaluate_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    e = sub.add_parser("envs", help="list the available environments")
    e.set_defaults(func=cmd_envs)

    try:
        from marl_backends.trainers.cli import add_train_arguments, run_train
    except ImportError:  # trainers not installed in this build
        pass
    else:
        t = sub.add_parser("train", help="train MARL agents with a parameter-sharing layout")
        add_train_arguments(t)
        t.set_defaults(func=lambda a: (run_train(a), 0)[1])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if str(getattr(args, "device", None) or "cpu").startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but CUDA is not available here; use --device cpu.")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
