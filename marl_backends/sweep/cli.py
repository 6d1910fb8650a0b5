"""``hetero sweep run | status | report SPEC``: grids of runs from a sweep file (see ``sweep.spec``).

    hetero sweep run case_studies/sweeps/hetdps_pms_small.toml --jobs 2
    hetero sweep run SPEC --engine ray --address auto --cpus-per-run 1 --gpus-per-run 0.25
    hetero sweep status SPEC
    hetero sweep report SPEC --out case_studies/results/hetdps_pms_sweep

``run`` skips finished runs and resumes unfinished ones from their checkpoints, so rerunning a
sweep (after a crash, or with a larger ``frames`` budget) continues it. Every command first checks
the whole file, and ``run`` every run's flags (``sweep.checks``; ``--dry-run`` too): a bad file or flag is
one ``error:`` line and exit 2 before any run starts, as is a second ``run`` on a sweep in use.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``hetero sweep`` with its ``run``, ``status`` and ``report`` subcommands."""
    p.description, p.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="sweep_command", required=True, metavar="run|status|report")
    r = sub.add_parser("run", help="execute the sweep's unfinished runs (skip done, resume interrupted)")
    r.add_argument("spec", metavar="SPEC", help="sweep file (.toml, or .yaml with PyYAML)")
    r.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: a pool of --jobs runs on this machine (default); ray: Ray tasks (extra `ray`)")
    r.add_argument("--jobs", type=int, default=1, help="local engine: runs at a time (default 1)")
    r.add_argument("--address", default="", help="ray: auto | HOST:PORT of a running cluster (default: start a local one)")
    r.add_argument("--cpus-per-run", type=float, default=1.0, help="ray: CPUs each run requests (default 1)")
    r.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="ray: GPUs each run requests; > 0 also sets --device cuda (0.25 packs four runs on one GPU)")
    r.add_argument("--retries", type=int, default=None, help="attempts after a worker death (default: the sweep file's, 3)")
    r.add_argument("--out", default=None, help="sweep folder (default: the file's [sweep] out, else runs/sweeps/NAME)")
    r.add_argument("--dry-run", action="store_true", help="list the runs and their commands, run nothing")
    r.set_defaults(sweep_func=cmd_run)
    for name, fn, help_ in (("status", cmd_status, "done / running / failed / pending, frames, ETA"),
                            ("report", cmd_report, "tables (Markdown, CSV) and figures of the finished runs")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("spec", metavar="SPEC")
        s.add_argument("--out", default=None, help="sweep folder (as given to `sweep run --out`)")
        if name == "report":
            s.add_argument("--report-dir", default=None, help="where to write the report (default OUT/report)")
            s.add_argument("--no-figures", action="store_true")
        s.set_defaults(sweep_func=fn)


def run(args: argparse.Namespace) -> int:
    """The handler of ``hetero sweep``: dispatch to run / status / report."""
    return args.sweep_func(args)


def _spec(args, runs: bool = False):  # noqa: ANN001, ANN202
    """The sweep file, checked (keys, ``when``, run names); ``runs``: also every run's flags, env,
    layout and memory (``sweep run``; status and report only read the folder)."""
    from hetero.errors import UsageError
    from marl_backends.sweep.spec import check_argv, load_spec

    try:
        spec = load_spec(args.spec, args.out)
        if runs:
            check_argv(spec)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise UsageError(str(e)) from None
    return spec


def _check_engine_flags(args) -> None:  # noqa: ANN001
    from hetero.errors import check_number, usage_errors

    with usage_errors():
        check_number(args.jobs, "--jobs", ge=1)
        check_number(args.cpus_per_run, "--cpus-per-run", gt=0)
        check_number(args.gpus_per_run, "--gpus-per-run", ge=0)
        if args.retries is not None:
            check_number(args.retries, "--retries", ge=0)


def cmd_run(args) -> int:  # noqa: ANN001
    from marl_backends.sweep.engines import EngineConfig, run_sweep, tasks_of
    from marl_backends.sweep.execute import child_argv

    _check_engine_flags(args)
    spec = _spec(args, runs=True)
    if args.dry_run:
        for t in tasks_of(spec):
            print(f"{t.name}: hetero {' '.join(child_argv(t))}")
        return 0
    cfg = EngineConfig(engine=args.engine, jobs=args.jobs, address=args.address, cpus_per_run=args.cpus_per_run,
                       gpus_per_run=args.gpus_per_run, retries=args.retries)
    print(f"sweep {spec.name}: {len(spec.runs)} runs in {spec.out} ({args.engine} engine)", file=sys.stderr)
    outcome = run_sweep(spec, cfg, report=lambda n, what, msg: print(f"  {what:6s} {n} {msg}", file=sys.stderr))
    counts = {k: sum(v == k for v in outcome.values()) for k in ("done", "skipped", "failed")}
    print(f"sweep {spec.name}: {counts['done']} done, {counts['skipped']} already done, {counts['failed']} failed "
          f"(`hetero sweep status {args.spec}` shows the errors)", file=sys.stderr)
    return 1 if counts["failed"] else 0


def cmd_status(args) -> int:  # noqa: ANN001
    from marl_backends.sweep.status import format_status, sweep_status

    spec = _spec(args)
    print(format_status(spec, sweep_status(spec)))
    return 0


def cmd_report(args) -> int:  # noqa: ANN001
    from marl_backends.sweep.report import write_report

    spec = _spec(args)
    for p in write_report(spec, args.report_dir, figures=not args.no_figures):
        print(p)
    return 0
