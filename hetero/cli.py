"""`hetero quantify | envs | train | plot` — the command line, and the one place that dispatches it.

The CLI is the only part of ``hetero`` that knows the backends: it builds envs and trainers
from ``marl_backends`` and hands them to the science in ``hetero`` through its protocols.

Subcommands are registered (:func:`register`): a name, a help line, a function that adds the
flags to its parser and a handler ``handler(args) -> exit code``, either as callables or as
``"module:function"`` strings imported only when that subcommand runs. :func:`main` parses,
dispatches and turns exceptions into ``error: <message>`` lines and exit codes (no traceback
unless ``--debug``): 2 when the command cannot start as given (:class:`~hetero.errors.UsageError`,
argparse errors), 1 when a run fails, 128 + signal after SIGINT / SIGTERM saved a run.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hetero.cvae import CVAEConfig
from hetero.errors import RunInterrupted, UsageError, check_number, usage_errors
from hetero.grouping import group, group_stats
from hetero.kinds import ENV_KINDS, KINDS, META_CONDITIONS, META_PARTS, obs_het_undefined
from hetero.quantify import QuantifyConfig, quantify
from hetero.runinfo import json_safe, versions


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
    """Standard JSON (non-finite numbers become null), written to a temporary file and renamed."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(json_safe(obj), indent=1, default=str, allow_nan=False))
    tmp.replace(path)


def _kinds(arg: str, have_policy: bool) -> list[str]:
    """``all`` = obs, response, effect, objective, meta (+ policy when a trained checkpoint is given:
    Policy-Het of untrained networks measures their random initialisation, not the agents)."""
    if arg == "all":
        return list(ENV_KINDS) + (["policy"] if have_policy else []) + ["meta"]
    out = []
    for k in arg.split(","):
        if k not in KINDS:
            raise UsageError(f"unknown kind {k!r}; choose from {', '.join(KINDS)} or 'all'.")
        out.append(k)
    return out


MIN_STREAMS, STREAM_STEPS = 8, 50


def pool_shape(samples: int) -> tuple[int, int]:
    """(parallel env streams, steps per stream) for ``--samples`` transitions per agent: at least
    ``MIN_STREAMS`` streams (the split-half noise floor needs independent halves) and at most
    ``STREAM_STEPS`` steps each, so the pool holds between ``samples`` and ``samples + streams - 1``
    rows whatever the env's episode length (a stream that outlives an episode continues after the
    env's reset; a long episode is sampled over its first steps in many streams)."""
    if samples < 2 * MIN_STREAMS:
        raise UsageError(f"--samples {samples}: need at least {2 * MIN_STREAMS} transitions per agent "
                         f"({MIN_STREAMS} independent env streams of 2 steps); the default is 3200.")
    envs = max(MIN_STREAMS, -(-samples // STREAM_STEPS))
    return envs, -(-samples // envs)


def _out_dir(args) -> Path:
    """The quantify run folder; a folder holding an earlier run is refused unless --overwrite,
    which removes that run's files (only those) first."""
    if not args.out:
        return Path("runs") / "quantify" / f"{args.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(args.out)
    ours = [out / n for n in ("config.json", "summary.json", "matrices", "figures")]
    old = [p for p in ours if p.exists()]
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder.")
    if old and not args.overwrite:
        raise UsageError(f"--out {out} already holds a quantify run ({', '.join(p.name for p in old)}); pass "
                         "--overwrite to replace it, or another --out.")
    for p in old:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return out


AUTO_EARLY_STOP = 0.125  # --early-stop auto: the fraction held out once --epochs exceeds the calibrated default


def early_stop_fraction(value: str, epochs: int) -> float:
    """``--early-stop``: a fraction, or ``auto``: off at the calibrated ``CVAEConfig.epochs`` and below,
    1/8 of each half's episodes above it. Long fits memorise the pool's episodes (on PMS its 64
    landmark layouts) and lose the id effects they learned, so a fit asked to run longer than the
    calibrated default keeps its best held-out epoch instead (README, "early stopping")."""
    if value == "auto":
        return AUTO_EARLY_STOP if epochs > CVAEConfig.epochs else 0.0
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"--early-stop {value!r}: give a fraction in [0, 0.5) (e.g. 0.125; 0 = off) or auto.") from None


def _check_quantify_args(args) -> None:
    check_number(args.noise, "--noise", ge=0, le=10, hint="it is the std of the heuristic's action noise in action "
                 "units; 1 is already mostly random")
    check_number(args.threads, "--threads", ge=0)
    check_number(args.seed, "--seed", ge=0)
    from marl_backends.envs.registry import parse_env_args

    try:
        parse_env_args(args.env_args)
    except ValueError as e:
        raise UsageError(f"--env-args: {e}") from None


def _check_pool_memory(args) -> None:
    """Refuse a --samples pool this machine cannot hold (``marl_backends.memory``), before any env is built."""
    from marl_backends import memory
    from marl_backends.trainers.preflight import probe

    shapes, spec = probe(args.env, args.env_args, args.continuous, args.seed)
    memory.check(lambda s: memory.quantify_bytes(shapes, *pool_shape(max(s, 2 * MIN_STREAMS))), args.samples,
                 "--samples", f"a pool of {args.samples:,} transitions x {spec.n_agents} agents and its copies",
                 args.device)


def _load_checkpoint(path: str):
    """The trainer saved in a `hetero train` run folder (on-policy or off-policy)."""
    from marl_backends.offpolicy.checkpoint import is_offpolicy_checkpoint, load_offpolicy_trainer
    from marl_backends.trainers.checkpoint import load_trainer

    with usage_errors():
        return load_offpolicy_trainer(path) if is_offpolicy_checkpoint(path) else load_trainer(path)


def _behaviour(spec: str, trainer, seed: int):
    """The behaviour policy that fills the sample pool (paper: training trajectories)."""
    if spec in ("heuristic", "random"):
        return spec
    if spec.startswith("checkpoint:"):  # the trained policies, sampling their own actions
        gen = torch.Generator().manual_seed(seed)
        if hasattr(trainer, "act_behaviour"):  # off-policy: deterministic actor + exploration noise
            return lambda o: trainer.act_behaviour(o.obs, o.avail_actions, generator=gen)[0]
        return lambda o: trainer.actor.act(o.obs.to(trainer.device), o.avail_actions, generator=gen)[0]
    raise UsageError(f"--behaviour {spec!r}; use heuristic, random or checkpoint:RUN_DIR.")


def check_quantify_flags(args):
    """Every check ``hetero quantify`` makes on its flags before any work (env name, kinds, sizes,
    the memory of the pool unless --ignore-memory-check); returns (pool shape, kinds, SND wanted,
    config). ``hetero sweep`` runs it on every quantify run before the first one starts."""
    with usage_errors():
        _check_quantify_args(args)
        shape = pool_shape(args.samples)
        if args.ignore_memory_check:
            from marl_backends.envs.registry import check_env_name

            check_env_name(args.env)
        else:
            _check_pool_memory(args)
        want_snd = "snd" in args.kind.split(",")  # SND (hetero.metrics) is computed beside the kinds
        rest = ",".join(k for k in args.kind.split(",") if k != "snd")
        kinds = _kinds(rest, have_policy=bool(args.checkpoint)) if rest else []
        if args.checkpoint and "policy" not in kinds and not want_snd:
            raise UsageError(f"--checkpoint gives trained policies to --kind policy, but --kind is {args.kind}; add "
                             "policy (e.g. --kind policy,meta), or use --behaviour checkpoint:RUN_DIR to fill the "
                             "sample pool with the trained policies.")
        cfg = QuantifyConfig(
            mode=args.mode, train_samples=args.train_samples, eval_samples=args.eval_samples, seed=args.seed,
            device=args.device, cvae=replace(CVAEConfig(), epochs=args.epochs), alpha=args.alpha,
            validation=early_stop_fraction(args.early_stop, args.epochs),
            reweight=args.reweight, meta_condition=args.meta_condition,
        )
    return shape, kinds, want_snd, cfg


def cmd_quantify(args) -> int:
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    with usage_errors():  # everything the command line decides, before any work is done
        (n_envs, steps), kinds, want_snd, cfg = check_quantify_flags(args)
        run_dir = _out_dir(args)
        torch.set_num_threads(args.threads) if args.threads else None
        torch.manual_seed(args.seed)
        trainer = None
        ckpt = args.checkpoint or (args.behaviour[len("checkpoint:"):] if args.behaviour.startswith("checkpoint:") else None)
        if ckpt:
            trainer = _load_checkpoint(ckpt)
            if trainer.cfg.env != args.env:
                raise UsageError(f"checkpoint {ckpt} was trained on {trainer.cfg.env!r}, not --env {args.env!r}.")
        from marl_backends.envs.registry import parse_env_args

        env = make_env(args.env, num_envs=n_envs, device=args.device, seed=args.seed, continuous=args.continuous,
                       **parse_env_args(args.env_args))
        policy_fn = None
        if "policy" in kinds or want_snd:
            if trainer is not None:
                policy_fn = trainer.policy_distributions
            else:
                from marl_backends.nets import make_policy

                policy_fn = make_policy(env.spec, sharing="nps", seed=args.seed).distribution_params
                print("note: --kind policy/snd without --checkpoint measures random-init (NPS) policies.")
        behaviour = _behaviour(args.behaviour, trainer, args.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    behaviour_used = args.behaviour
    if args.behaviour == "heuristic" and getattr(env, "heuristic_is_random", False):
        behaviour_used = "random"  # what filled the pool; "behaviour_requested" keeps the flag
        print(f"note: {args.env} has no scripted policy: the pool is filled with uniformly random actions.")
    config = {"command": " ".join(sys.argv), "env": args.env, "env_args": args.env_args, "kinds": kinds,
              "samples": args.samples, "pool": {"envs": n_envs, "steps": steps}, "behaviour": behaviour_used,
              "behaviour_requested": args.behaviour, "noise": args.noise,
              "checkpoint": ckpt, "seed": args.seed, "device": args.device, "threads": args.threads,
              "quantify": asdict(cfg), "env_spec": asdict(env.spec), "versions": versions()}
    _write_json(run_dir / "config.json", config)

    t0 = time.perf_counter()
    bars = not args.quiet and sys.stderr.isatty()  # no \r frames in a log file
    pool = collect_pool(env, steps=steps, behaviour=behaviour, noise=args.noise, seed=args.seed, progress=bars)
    _check_finite_pool(pool)
    timings = {"sampling_s": round(time.perf_counter() - t0, 3)}
    truth = env.spec.groups
    from tqdm import tqdm

    summary = {"env": args.env, "env_args": args.env_args, "behaviour": behaviour_used,
               "behaviour_requested": args.behaviour, "pool_rows": pool.rows, "kinds": {}}
    matrices: dict[str, np.ndarray] = {}
    model_kinds = env.model.kinds if env.model is not None else frozenset()
    meta_based = set(META_PARTS) <= set(model_kinds)
    free = [k for k in kinds if k != "policy" and (cfg.mode == "model-free" or k not in model_kinds)
            and not (k == "meta" and meta_based and cfg.mode != "model-free")]
    n_fits = len(kinds) + (len(free) if cfg.split_half else 0)  # model-free kinds fit one CVAE per half
    bar = tqdm(total=n_fits * cfg.cvae.epochs, desc="training CVAEs", disable=not bars, leave=False)
    for kind in kinds:
        if kind == "obs" and kind in free and (why := obs_het_undefined(pool)) is not None:
            summary["kinds"]["obs"] = {"undefined": why}
            bar.clear()
            print(f"\nnote: {why}; Obs-Het skipped.")
            if kinds == ["obs"]:
                raise UsageError(f"{why}. Use another kind (e.g. --kind response,objective,meta).")
            continue
        res = quantify(pool, kind, cfg, model=env.model, policy_fn=policy_fn if kind == "policy" else None,
                       progress=lambda k, e, l: (bar.set_postfix(kind=k, loss=f"{l:.3f}"), bar.update(1)))
        if not np.isfinite(res.matrix).all():
            raise RuntimeError(f"the {kind} matrix has non-finite entries: the CVAE diverged on this pool; lower "
                               "--noise or check the env's observations for huge values.")
        groups = group(res, seed=args.seed)
        stats = group_stats(res.matrix, groups.labels)
        res.save(run_dir / "matrices")
        matrices[kind] = res.matrix
        entry = {"mode": res.mode, "groups": list(groups.labels), "n_groups": groups.n_groups,
                 "grouping": groups.method, "note": groups.note, "noise_floor": res.noise_floor,
                 "p_value": res.p_value, "alpha": None if res.test is None else res.test.alpha,
                 "between": stats["between"], "within": stats["within"], "ratio": stats["ratio"],
                 "seconds": res.timings["quantify_s"]}
        if "epochs_kept" in res.settings:
            entry["epochs_kept"] = res.settings["epochs_kept"]
        if truth is not None:
            entry["ari_vs_env_groups"] = _ari(truth, groups.labels)
        summary["kinds"][kind] = entry
        timings[f"{kind}_s"] = res.timings["quantify_s"]
        if not args.no_plots:
            from hetero.plotting import heatmap

            heatmap(res.matrix, groups.labels, f"{KINDS[kind].title} ({res.mode}) — {args.env}", run_dir / "figures" / kind)
        bar.clear()
        test = "" if res.test is None else f"structure test p = {res.p_value:.2g}; "
        print(f"\n{KINDS[kind].title} [{res.mode}] on {args.env}: {groups.n_groups} group(s) "
              f"({test}between {stats['between']:.3f}, within {stats['within']:.3f})")
        print(format_matrix(res.matrix, groups.labels))
        print("groups:", _group_lists(groups.labels) + (f"   ARI vs env groups: {entry['ari_vs_env_groups']:.2f}" if truth else ""))
        if groups.note:
            print("note:", groups.note)
        if "epochs_kept" in entry:
            print(f"early stopping (--early-stop {cfg.validation:g}): the halves' CVAEs kept epochs "
                  f"{', '.join(map(str, entry['epochs_kept']))} of at most {cfg.cvae.epochs}")
    bar.close()
    if args.kind == DEFAULT_KIND:
        print(f"\nnote: {DEFAULT_KIND_NOTE}")
    if want_snd:
        from hetero.metrics import snd

        discrete = bool(getattr(trainer, "discrete", getattr(getattr(trainer, "spec", env.spec), "discrete", True)))
        res = snd(policy_fn, pool, discrete=discrete, samples=args.eval_samples, seed=args.seed)
        summary["snd"] = res.to_dict()
        print(f"\nSND [{res.metric} on action distributions, {res.n_obs} observations] on {args.env}: {res.value:.4f}")
        print(format_matrix(res.matrix, [0] * len(res.matrix)))
    kinds = [k for k in kinds if k in matrices]  # an undefined kind has no matrix
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


DEFAULT_KIND = "meta"
DEFAULT_KIND_NOTE = ("Meta-Het (the default kind) compares each agent's own transition (s_i, a_i) -> "
                     "(s_i', o_i', r_i): model-based (every agent evaluated at the same input) where the env "
                     "evaluates it, else learned from the pool conditioned on (s_i, a_i) and the env's own state "
                     "S^E where the pool carries it (--meta-condition own: (s_i, a_i) only, as App. G prints it). "
                     "It does not see how an agent moves the others (Effect-Het). "
                     "Run --kind all to compare obs, response, effect, objective and meta side by side.")


def _check_finite_pool(pool) -> None:
    """A pool with inf / NaN or values beyond float32 scaling gives a NaN matrix: say so instead."""
    for name in ("obs", "local_state", "next_obs", "next_local_state", "reward", "action", "state"):
        v = getattr(pool, name, None)
        if v is None or v.numel() == 0:
            continue
        big = float(v.abs().max()) if torch.isfinite(v).all() else float("inf")
        if not big < 1e15:
            raise RuntimeError(f"the sample pool's {name} holds values up to {big:.3g} (non-finite or too large to "
                               "standardise in float32); lower --noise or check the env.")


def _group_lists(labels) -> str:
    lab = np.asarray(labels)
    return "  ".join("{" + ",".join(str(i) for i in np.flatnonzero(lab == g)) + "}" for g in range(lab.max() + 1))


def _installed(*modules: str) -> Callable[[], bool]:
    """An availability check: every module can be found (without importing it)."""
    return lambda: all(importlib.util.find_spec(m) is not None for m in modules)


EXTRAS = {  # extra -> (env name prefix, "module:availability check" or a callable, what to install)
    "mamujoco": ("mamujoco_", "marl_backends.envs.mamujoco:mamujoco_available",
                 "pip install -c constraints.txt -e '.[mamujoco]'"),
    "smax": ("smax_", "marl_backends.envs.smax:smax_available", "pip install -c constraints.txt -e '.[smax]'"),
    "smacv2": ("smacv2_", "marl_backends.envs.smacv2:smacv2_available",
               "smacv2 from its git repository + StarCraft II (SC2PATH), see README"),
    "pettingzoo": ("pettingzoo:", _installed("pettingzoo", "mpe2"), "pip install -c constraints.txt -e '.[pettingzoo]'"),
    "benchmarl": ("", _installed("benchmarl", "torchrl"), "pip install -c constraints.txt -e '.[benchmarl]'"),
    "ray": ("", _installed("ray"), "pip install -c constraints.txt -e '.[ray]' (hetero sweep run --engine ray)"),
    "tensorboard": ("", _installed("tensorboard"), "pip install -c constraints.txt -e '.[tensorboard]'"),
    "wandb": ("", _installed("wandb"), "pip install -c constraints.txt -e '.[wandb]' (hetero train --wandb)"),
}


def extras_status() -> dict[str, bool]:
    """Which optional extras this installation can use."""
    return {name: bool(_resolve(check)()) for name, (_, check, _) in EXTRAS.items()}


def cmd_envs(args) -> int:
    from marl_backends.envs import list_envs

    have = extras_status()
    print("optional extras: " + ", ".join(f"{k} {'installed' if v else 'missing'}" for k, v in have.items()))
    for name, ok in have.items():
        if not ok:
            print(f"  {name}: {EXTRAS[name][2]}")
    print()
    for name, desc in list_envs().items():
        extra = next((k for k, (pre, _, _) in EXTRAS.items() if pre and name.startswith(pre)), None)
        mark = " (not installed)" if extra and not have[extra] else ""
        print(f"{name:28s} {desc}{mark}")
    return 0


def _checkpoint_near(run: Path, update: int) -> Path:
    ckpts = sorted((run / "checkpoints").glob("iter_*.pt"))
    if not ckpts:
        raise UsageError(f"{run} has no checkpoints/iter_*.pt; --at needs a run trained with checkpoints.")
    return min(ckpts, key=lambda p: abs(int(p.stem.split("_")[1]) - update))


def cmd_plot(args) -> int:
    """Figures of a training run: HetDPS matrices across rounds, the group timeline, reward curves
    against other runs, and (--kinds/--at) matrices quantified from checkpoints (paper Fig. 4)."""
    from hetero.plotting import matrix_panels
    from hetero.run_figures import hetdps_figures, reward_figure

    run = Path(args.run_dir)
    for r, flag in [(run, "RUN_DIR"), *((Path(c), "--compare") for c in args.compare)]:
        if not (r / "metrics.csv").exists():
            raise UsageError(f"{flag} {r} has no metrics.csv; pass a run folder written by `hetero train`.")
    check_number(args.panels, "--panels", ge=1)
    if args.at:
        try:
            at = [int(x) for x in args.at.split(",")]
        except ValueError:
            raise UsageError(f"--at takes comma-separated update numbers, e.g. 500,1500 (got {args.at!r}).") from None
        bad = [k for k in args.kinds.split(",") if k not in KINDS]
        if bad:
            raise UsageError(f"unknown kind {bad[0]!r} in --kinds; choose from {', '.join(KINDS)}.")
    out = Path(args.out) if args.out else run / "figures"
    fmts = tuple(args.formats.split(","))
    written: list[Path] = hetdps_figures(run, out, fmts, args.panels)
    written += reward_figure(run, args.compare, out, fmts, smooth=args.smooth)
    if args.at:
        from marl_backends.trainers import load_trainer

        panels = []
        for u in at:
            ck = _checkpoint_near(run, u)
            tr = load_trainer(ck, progress=False)
            if tr.iteration != u:
                print(f"note: --at {u}: no checkpoint at update {u}; using the nearest, update {tr.iteration} "
                      f"({ck.name}; checkpoints are written every --checkpoint-interval updates).", file=sys.stderr)
            pool = tr.sample_pool()
            for kind in args.kinds.split(","):
                res = quantify(pool, kind, QuantifyConfig(train_samples=args.train_samples, seed=args.seed),
                               model=getattr(tr.env, "model", None), policy_fn=tr.policy_distributions)
                g = group(res, seed=args.seed)
                panels.append((f"{KINDS[kind].title} @ update {tr.iteration}: {g.n_groups} "
                               f"group{'s' if g.n_groups != 1 else ''}", res.matrix, g.labels))
        written += matrix_panels(panels, out / "matrices_by_update", fmts, ncols=len(args.kinds.split(",")),
                                 suptitle=f"{tr.cfg.env}: matrices across training (one row per checkpoint)")
    for pth in written:
        print(pth)
    return 0


# --- the parser and its subcommands ------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one ``error:`` line, exit 2) instead of printing
    the whole usage (``hetero train``'s runs to ~100 flags)."""

    def error(self, message: str):  # noqa: ANN201
        raise UsageError(f"{message} (see `{self.prog} --help`)")


@dataclass(frozen=True)
class Subcommand:
    """``add_arguments(parser)`` adds the flags; ``handler(args)`` runs and returns the exit code.
    Either may be a ``"module:function"`` string, imported when the subcommand is used."""

    name: str
    help: str
    add_arguments: Callable | str
    handler: Callable | str
    description: str = ""


SUBCOMMANDS: dict[str, Subcommand] = {}


def register(name: str, help: str, add_arguments: Callable | str, handler: Callable | str,  # noqa: A002
             description: str = "") -> None:
    """Add (or replace) a subcommand of ``hetero``; see :class:`Subcommand`."""
    SUBCOMMANDS[name] = Subcommand(name, help, add_arguments, handler, description or help)


def _resolve(ref: Callable | str) -> Callable:
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def add_quantify_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--env", required=True, help="env name (see `hetero envs`), e.g. pms_15a_3c")
    q.add_argument("--kind", default=DEFAULT_KIND,
                   help="obs|response|effect|objective|policy|meta, a comma list, or all (= obs, response, effect, "
                        "objective, meta, and policy when --checkpoint is given) (default meta); snd adds System Neural Diversity of the --checkpoint policies")
    q.add_argument("--samples", type=int, default=3200,
                   help=f"transitions per agent in the sample pool: at least {MIN_STREAMS} env streams of at most "
                        f"{STREAM_STEPS} steps (default 3200 = 64 streams x 50 steps)")
    q.add_argument("--train-samples", type=int, default=QuantifyConfig.train_samples, help="conditions x to train each CVAE on")
    q.add_argument("--eval-samples", type=int, default=QuantifyConfig.eval_samples, help="Monte-Carlo conditions x per distance")
    q.add_argument("--alpha", type=float, default=QuantifyConfig.alpha,
                   help="family-wise error rate of the structure test: the chance of reporting more than one "
                        f"group when all agents are alike (default {QuantifyConfig.alpha})")
    q.add_argument("--epochs", type=int, default=CVAEConfig.epochs, help="CVAE training epochs")
    q.add_argument("--early-stop", default="auto", metavar="FRACTION|auto",
                   help="model-free: hold out FRACTION of each half's episodes and keep each CVAE's best epoch on "
                        f"them, so --epochs becomes a cap; 0 = off; auto (default) = {AUTO_EARLY_STOP} when --epochs "
                        f"exceeds the calibrated {CVAEConfig.epochs}, else off")
    q.add_argument("--reweight", action=argparse.BooleanOptionalAction, default=QuantifyConfig.reweight,
                   help="behaviour-invariant structure test: weight each pair's held-out transitions to the overlap "
                        "of the two agents' conditions, so agents that only act differently are not told apart "
                        "(hetero/overlap.py)")
    q.add_argument("--mode", default="auto", choices=["auto", "model-based", "model-free"])
    q.add_argument("--meta-condition", default=QuantifyConfig.meta_condition, choices=list(META_CONDITIONS),
                   help="model-free Meta-Het's condition: env = (s_i, a_i, S^E) where the pool carries the env's "
                        "own state S^E (default), own = (s_i, a_i) as App. G prints it")
    q.add_argument("--behaviour", default="heuristic", help="heuristic | random | checkpoint:RUN_DIR (who fills the pool)")
    q.add_argument("--noise", type=float, default=0.3, help="exploration noise of the heuristic behaviour (0..10)")
    q.add_argument("--checkpoint", default=None, help="RUN_DIR of `hetero train`: its policies for --kind policy")
    q.add_argument("--continuous", action="store_true", help="continuous actions (PMS / spread)")
    q.add_argument("--env-args", default="", metavar="K=V,...",
                   help="extra scenario arguments, as `hetero train --env-args`, e.g. n_agents=4 for a VMAS "
                        "built-in or num_adversaries=4,num_good_agents=2 for vmas_simple_tag")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", default="cpu", help="cpu or cuda")
    q.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads, as `hetero train` (default 1: the CVAEs are small, and more threads only "
                        "pay off on an idle many-core machine; measured 10x slower with 2 threads on a busy 2-core "
                        "one; 0 = torch's default, all cores)")
    q.add_argument("--out", default=None, help="run folder (default runs/quantify/ENV-TIME)")
    q.add_argument("--overwrite", action="store_true", help="replace the quantify run already in --out")
    q.add_argument("--ignore-memory-check", action="store_true",
                   help="start even when the up-front memory estimate of the --samples pool exceeds the memory "
                        "available here")
    q.add_argument("--no-plots", action="store_true")
    q.add_argument("--quiet", action="store_true", help="no progress bars (they only show on a terminal anyway)")


def add_plot_arguments(pl: argparse.ArgumentParser) -> None:
    pl.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `hetero train`")
    pl.add_argument("--compare", nargs="*", default=[], metavar="RUN", help="other run folders for the reward curves")
    pl.add_argument("--out", default=None, help="figure folder (default RUN_DIR/figures)")
    pl.add_argument("--panels", type=int, default=4, help="HetDPS rounds shown (evenly spaced, first and last)")
    pl.add_argument("--at", default="", help="updates to quantify from checkpoints, e.g. 500,1500 (paper Fig. 4); "
                                             "the nearest checkpoint is used, with a note when it differs")
    pl.add_argument("--kinds", default="policy,meta", help="kinds quantified with --at (default policy,meta)")
    pl.add_argument("--train-samples", type=int, default=2000, help="CVAE training conditions per --at matrix")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--smooth", type=int, default=5, help="trailing mean over this many iterations for training return")
    pl.add_argument("--formats", default="png,pdf", help="comma list of figure formats")


def _train(args) -> int:
    from marl_backends.trainers.cli import run_train

    run_train(args)
    return 0


register("quantify", "distance matrices for the heterogeneity kinds and the groups they imply",
         add_quantify_arguments, cmd_quantify)
register("train", "train MARL agents with a parameter-sharing layout (on- and off-policy algos, HetDPS)",
         "marl_backends.trainers.cli:add_train_arguments", _train)
register("plot", "figures of a training run: HetDPS matrices, group timeline, reward curves", add_plot_arguments, cmd_plot)
register("envs", "list the available environments and which optional extras are installed", lambda p: None, cmd_envs)
register("evaluate", "play a trained policy: returns, win rate, optional GIF (VMAS)",
         "marl_backends.trainers.evaluate:add_evaluate_arguments", "marl_backends.trainers.evaluate:cmd_evaluate")
register("sweep", "run, follow and report grids of runs declared in a sweep file (local processes or Ray)",
         "marl_backends.sweep.cli:add_arguments", "marl_backends.sweep.cli:run")
register("convert-checkpoint", "rewrite the checkpoints of a run of hetero 0.2 or earlier in the weights-only "
         "format of 0.3 (a full pickle load: --trust-pickle)",
         "marl_backends.trainers.safe_checkpoint:add_convert_arguments", "marl_backends.trainers.safe_checkpoint:cmd_convert")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    p = _Parser(prog="hetero", description="Quantify and use agent heterogeneity in MARL.", parents=[common],
                epilog="Exit codes: 0 done, 1 a run failed, 2 bad command line (usage), 130 / 143 stopped by "
                       "SIGINT / SIGTERM after saving (resume with the printed command).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in SUBCOMMANDS.values():
        sp = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description, parents=[common])
        _resolve(cmd.add_arguments)(sp)
        sp.set_defaults(func=cmd.handler)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``hetero ARGS``; returns the exit code (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if str(getattr(args, "device", None) or "cpu").startswith("cuda") and not torch.cuda.is_available():
            raise UsageError("--device cuda but CUDA is not available here; use --device cpu.")
        return int(_resolve(args.func)(args) or 0)
    except RunInterrupted as e:
        print(str(e), file=sys.stderr)
        print(f"resume with: {e.resume_command}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        _error("interrupted", debug)
        return 130
    except UsageError as e:
        _error(str(e), debug)
        return 2
    except Exception as e:  # noqa: BLE001 - a failed run: one line, the traceback with --debug
        _error(f"{type(e).__name__}: {e}", debug, hint=" (run again with --debug for the traceback)")
        return 1


def _error(message: str, debug: bool, hint: str = "") -> None:
    if debug:
        traceback.print_exc()
    text = " ".join(message.split("\n")).strip()
    print(f"error: {text}{'' if debug else hint}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
