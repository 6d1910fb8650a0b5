"""Sweep files: a grid of ``hetero train`` / ``hetero quantify`` runs, declared in TOML (or YAML).

A sweep file has these tables (every key below ``[options]``, ``[grid]``, ``[methods.*]`` and
``[[override]]`` is a flag of the sweep's command, written with underscores, e.g. ``eval_interval``)::

    [sweep]
    name = "hetdps_pms_small"        # folder name under runs/sweeps/ unless `out` is given
    command = "train"                # or "quantify"
    out = "runs/sweeps/hetdps_pms_small"
    retries = 3                      # attempts after a worker dies (SIGKILL, node loss)

    [options]                        # the same for every run
    algo = "mappo"
    frames = 160000                  # the budget
    threads = 1

    [grid]                           # one run per combination, in this order
    env = ["pms_15a_3c", "pms_30a_5c"]
    method = ["fps", "nps", "hetdps"] # names of [methods.*] tables
    seed = [0, 1, 2]

    [methods.hetdps]                 # options of one method
    sharing = "hetdps"
    hetdps_init = "nps"

    [[override]]                     # options for the runs that match `when` (applied last)
    when = { method = "seps", env = ["pms_15a_5c", "pms_30a_5c"] }
    seps_k = 5

    [report]                         # `hetero sweep report`
    threshold = -60.0                # frames until the eval return first reaches it
    smooth = 3

A run is named from its grid point: the values of the grid axes in grid order, ``env``,
``method`` and ``algo`` bare, ``seed`` as ``s0``, any other axis as ``KEYvalue`` (``hetdps_interval20``), joined
by ``_``: ``pms_15a_3c_hetdps_s0``. Its folder is ``OUT/runs/NAME``, an ordinary run folder; a name
that is not one plain folder name there (``.``, ``..``) is refused. Unknown keys at any level and
``when`` clauses on missing axes are refused with a did-you-mean (:mod:`marl_backends.sweep.checks`).
"""
from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMMANDS = ("train", "quantify")
TABLES = ("sweep", "options", "grid", "methods", "override", "report")
BARE = ("env", "method", "algo")  # grid axes named by their value alone in run names
RESERVED = {"train": ("out_dir", "run_name", "resume"), "quantify": ("out",)}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its name, grid point and the full option dict of its command."""

    name: str
    point: tuple[tuple[str, Any], ...]
    options: tuple[tuple[str, Any], ...]

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def group(self) -> tuple[tuple[str, Any], ...]:
        """The grid point without its seed: the runs that a report averages over."""
        return tuple((k, v) for k, v in self.point if k != "seed")


@dataclass(frozen=True)
class ReportSpec:
    """Settings of ``hetero sweep report``."""

    threshold: float | None = None  # frames to reach this eval return (None: column omitted)
    smooth: int = 3                 # trailing mean over this many points in the reward bands
    metric: str = "eval_return"     # the return the tables use (train_return for runs without eval)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    command: str
    out: Path
    retries: int
    runs: tuple[RunSpec, ...]
    report: ReportSpec = field(default_factory=ReportSpec)
    source: str = ""

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(value)).strip("-")


def run_name(point: dict[str, Any]) -> str:
    """``env``, ``method`` and ``algo`` bare, ``seed`` as ``sK`` (last), other axes as ``KEYvalue``."""
    parts = [_slug(v) if k in BARE else f"{k}{_slug(v)}" for k, v in point.items() if k != "seed"]
    if "seed" in point:
        parts.append(f"s{point['seed']}")
    return "_".join(parts) or "run"


def _matches(when: dict[str, Any], point: dict[str, Any], opts: dict[str, Any]) -> bool:
    for k, want in when.items():
        have = point.get(k, opts.get(k))
        if have not in (want if isinstance(want, list) else [want]):
            return False
    return True


def _load_raw(path: Path) -> dict:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{path} is YAML but PyYAML is not installed; `pip install pyyaml` or use TOML.") from None
        return yaml.safe_load(text) or {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e}).") from None


def load_spec(path: str | Path, out: str | Path | None = None) -> SweepSpec:
    """Read a sweep file and expand its grid into runs (errors name the table and key to fix;
    unknown keys, ``when`` clauses and run names are checked by :mod:`marl_backends.sweep.checks`)."""
    from marl_backends.sweep.checks import check_file, check_run_name, check_when_values, did_you_mean

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep file {path} does not exist.")
    raw = _load_raw(path)
    unknown = sorted(set(raw) - set(TABLES))
    if unknown:
        raise ValueError(f"{path}: unknown table [{unknown[0]}]{did_you_mean(unknown[0], TABLES)}; a sweep file has "
                         f"{', '.join(TABLES)}.")
    head = raw.get("sweep", {})
    name = str(head.get("name") or path.stem)
    command = head.get("command", "train")
    if command not in COMMANDS:
        raise ValueError(f"{path}: [sweep] command = {command!r}; expected one of {', '.join(COMMANDS)}.")
    options, grid, methods = raw.get("options", {}), raw.get("grid", {}), raw.get("methods", {})
    overrides = raw.get("override", [])
    for table, keys in (("options", options), ("grid", grid), *((f"methods.{m}", t) for m, t in methods.items()),
                        *(("override", o) for o in overrides)):
        bad = [k for k in keys if k in RESERVED[command]]
        if bad:
            raise ValueError(f"{path}: [{table}] sets {bad[0]!r}, which the sweep sets itself (each run is "
                             f"OUT/runs/NAME); remove it.")
    axes = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items()}
    for k, v in axes.items():
        if not v:
            raise ValueError(f"{path}: [grid] {k} is an empty list; give at least one value.")
    if "method" in axes:
        missing = [m for m in axes["method"] if m not in methods]
        if missing:
            raise ValueError(f"{path}: [grid] method lists {missing[0]!r} but there is no [methods.{missing[0]}] table"
                             f"{did_you_mean(missing[0], methods)}.")
    check_file(path, raw, command, axes)
    check_when_values(path, overrides, methods)
    out = Path(out or head.get("out") or Path("runs") / "sweeps" / name)
    runs: list[RunSpec] = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        opts = dict(options)
        opts.update(methods.get(point.get("method"), {}) if "method" in point else {})
        opts.update({k: v for k, v in point.items() if k != "method"})
        for o in overrides:
            when = o.get("when", {})
            if _matches(when, point, opts):
                opts.update({k: v for k, v in o.items() if k != "when"})
        check_run_name(path, run_name(point), point, out / "runs")
        runs.append(RunSpec(run_name(point), tuple(point.items()), tuple(opts.items())))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{path}: two grid points are both named {dup!r}; give the axes distinct values.")
    rep = raw.get("report", {})
    report = ReportSpec(threshold=rep.get("threshold"), smooth=int(rep.get("smooth", 3)),
                        metric=str(rep.get("metric", "eval_return")))
    return SweepSpec(name=name, command=command, out=out, retries=int(head.get("retries", 3)), runs=tuple(runs),
                     report=report, source=str(path))


def command_argv(command: str, opts: dict[str, Any]) -> list[str]:
    """``hetero COMMAND`` flags for an option dict: ``--key-name value``; booleans as
    ``--flag`` / ``--no-flag`` (train) or ``--flag`` when true (quantify's switches); lists and
    tuples comma-joined (``hidden = [64, 64]`` -> ``--hidden 64,64``)."""
    argv: list[str] = []
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            if v:
                argv.append(flag)
            elif command == "train":
                argv.append("--no-" + k.replace("_", "-"))
        elif isinstance(v, (list, tuple)):
            argv += [flag, ",".join(map(str, v))]
        else:
            argv += [flag, str(v)]
    return argv


def check_argv(spec: SweepSpec) -> None:
    """Every run's flags through ``hetero``'s parser and up-front checks (``sweep.checks.check_runs``),
    so a typo, an unknown env or layout, or a run too big for this machine fails before any run starts."""
    from marl_backends.sweep.checks import check_runs

    check_runs(spec)
