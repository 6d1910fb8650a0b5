"""Checks of a sweep file before any run starts: its keys, ``when`` clauses and run names
(:func:`check_file`, from ``load_spec``), and every run's flags with ``hetero``'s own validators
(:func:`check_runs`: the parser, ``hetero train``'s checks with its env, layout and memory probe,
``hetero quantify``'s). Errors are ValueErrors naming the file, the table and the key or run.
"""
from __future__ import annotations

import contextlib
import difflib
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

SWEEP_KEYS = ("name", "command", "out", "retries")
REPORT_KEYS = ("threshold", "smooth", "metric")


def did_you_mean(word: str, choices) -> str:  # noqa: ANN001
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@lru_cache(maxsize=4)
def command_keys(command: str) -> frozenset[str]:
    """The keys a sweep file may give ``hetero COMMAND``: its ``--flag`` names with underscores."""
    from hetero.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")  # noqa: SLF001
    return frozenset(o[2:].replace("-", "_") for a in sub.choices[command]._actions  # noqa: SLF001
                     for o in a.option_strings if o.startswith("--") and o != "--help")


def _known(path: Path, table: str, keys, allowed, what: str) -> None:  # noqa: ANN001
    for k in keys:
        if k not in allowed:
            raise ValueError(f"{path}: {table} has an unknown key {k!r}{did_you_mean(k, allowed)}; {what}.")


def check_file(path: Path, raw: dict, command: str, axes: dict[str, list]) -> None:
    """Every key of every table known; ``[sweep]`` and ``[report]`` values of the right type;
    each ``[[override]] when`` on existing axes or options."""
    _known(path, "[sweep]", raw.get("sweep", {}), SWEEP_KEYS, f"[sweep] takes {', '.join(SWEEP_KEYS)}")
    _known(path, "[report]", raw.get("report", {}), REPORT_KEYS, f"[report] takes {', '.join(REPORT_KEYS)}")
    retries = raw.get("sweep", {}).get("retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"{path}: [sweep] retries = {retries!r}; give a whole number >= 0.")
    rep = raw.get("report", {})
    if not isinstance(rep.get("threshold", 0.0), (int, float)) or isinstance(rep.get("threshold"), bool):
        raise ValueError(f"{path}: [report] threshold = {rep['threshold']!r}; give a number (an eval return).")
    if not isinstance(rep.get("smooth", 3), int) or rep.get("smooth", 3) < 1:
        raise ValueError(f"{path}: [report] smooth = {rep['smooth']!r}; give a whole number >= 1.")
    flags = command_keys(command)
    what = f"every key there is a flag of `hetero {command}` with underscores (see `hetero {command} --help`)"
    tables = [("[options]", raw.get("options", {})), ("[grid]", raw.get("grid", {}))]
    tables += [(f"[methods.{m}]", t) for m, t in raw.get("methods", {}).items()]
    tables += [(f"[[override]] #{i + 1}", o) for i, o in enumerate(raw.get("override", []))]
    for table, keys in tables:
        if not isinstance(keys, dict):
            raise ValueError(f"{path}: {table} must be a table of key = value.")
        _known(path, table, [k for k in keys if k != "when" or not table.startswith("[[override]]")],
               flags | {"method"} if table == "[grid]" else flags, what)
    option_keys = {k for _, t in tables for k in t if k != "when"}
    for i, o in enumerate(raw.get("override", [])):
        when = o.get("when", {})
        if not isinstance(when, dict):
            raise ValueError(f"{path}: [[override]] #{i + 1} when = {when!r}; write when = {{ AXIS = VALUE, ... }}.")
        for k in when:
            if k not in axes and k not in option_keys:
                raise ValueError(f"{path}: [[override]] #{i + 1} when names {k!r}, which is neither a [grid] axis "
                                 f"({', '.join(axes) or 'none'}) nor an option{did_you_mean(k, axes)}.")


def check_when_values(path: Path, overrides: list[dict], methods: dict) -> None:
    """``when`` values that can never match: a method without a ``[methods.*]`` table, an unknown env
    (values off this grid's axes are fine: a file may narrow its grid and keep its overrides)."""
    from marl_backends.envs.registry import check_env_name

    for i, o in enumerate(overrides):
        when = o.get("when", {})
        for k in ("method", "env"):
            for v in (when[k] if isinstance(when[k], list) else [when[k]]) if k in when else []:
                if k == "method" and v not in methods:
                    raise ValueError(f"{path}: [[override]] #{i + 1} when method = {v!r}, but there is no "
                                     f"[methods.{v}] table{did_you_mean(v, methods)}.")
                try:
                    if k == "env":
                        check_env_name(str(v))
                except ValueError as e:
                    raise ValueError(f"{path}: [[override]] #{i + 1} when env: {e}") from None


def check_run_name(path: Path, name: str, point: dict[str, Any], runs_dir: Path) -> None:
    """A run name is one plain folder name inside ``OUT/runs`` (dots inside a name are fine)."""
    bad = (not name or name in (".", "..") or any(c in name for c in ("/", "\\", "\0"))
           or len(name.encode()) > 255)
    if not bad:
        root = runs_dir.resolve()
        bad = (root / name).resolve().parent != root
    if bad:
        raise ValueError(f"{path}: the grid point {point} gives the run name {name!r}, which is not a plain folder "
                         f"name inside {runs_dir}; give the axes values other than '.' and '..' (and no path "
                         "separators).")


def check_runs(spec) -> None:  # noqa: ANN001
    """Parse every run's flags with the real ``hetero`` parser and make ``hetero train`` /
    ``hetero quantify``'s up-front checks (env, layout, memory), so nothing starts that would fail."""
    from hetero.cli import build_parser, check_quantify_flags
    from hetero.errors import UsageError
    from marl_backends.sweep.spec import command_argv
    from marl_backends.trainers.cli import check_train_flags

    parser = build_parser()
    for run in spec.runs:
        argv = [spec.command, *command_argv(spec.command, run.opts)]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                args = parser.parse_args(argv)
            if spec.command == "train":
                check_train_flags(args, probe=True)
            else:
                check_quantify_flags(args)
        except SystemExit:
            msg = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "invalid flags"
            raise ValueError(f"{spec.source}: run {run.name}: `hetero {' '.join(argv)}` is refused: {msg}") from None
        except (UsageError, ValueError, FileNotFoundError, ImportError) as e:
            raise ValueError(f"{spec.source}: run {run.name}: `hetero {' '.join(argv)}` is refused: {e}") from None
