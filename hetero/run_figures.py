"""Figures of a training run folder (``hetero plot RUN``): HetDPS matrices across rounds, the
group timeline and training / evaluation return curves, read from the files a run writes
(``metrics.csv``, ``config.json``, ``hetdps_rounds.jsonl``, ``hetdps_round_*.npz``).

Runs given together that differ only in their seed (and in run-level settings such as the run
name, device or intervals) are drawn as one curve, mean +/- 1 std over the seeds.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from hetero.plotting import evenly, group_timeline, matrix_panels, train_eval_curves

# config.json entries that do not change the experiment: runs differing only here are seeds of one setting
_RUN_LEVEL = {"seed", "run_name", "out_dir", "command", "versions", "frames", "eval_interval", "eval_episodes",
              "checkpoint_interval", "progress", "threads", "device", "tensorboard", "wandb", "wandb_project",
              "log_interval", "hetero", "git", "iterations"}


def read_rounds(run: Path) -> list[dict]:
    log = Path(run) / "hetdps_rounds.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []


def read_config(run: Path) -> dict:
    p = Path(run) / "config.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _number(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_returns(run: Path) -> dict[str, np.ndarray]:
    """frames / train return per iteration, and the evaluation points, from ``metrics.csv``."""
    with open(Path(run) / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    frames = np.array([_number(r.get("frames")) for r in rows])
    train = np.array([_number(r.get("train_return")) for r in rows])
    ev = np.array([_number(r.get("eval_return")) for r in rows])
    has = ~np.isnan(ev)
    return {"frames": frames, "train": train, "eval_frames": frames[has], "eval": ev[has]}


def round_outcome(rnd: dict) -> str:
    """What a logged round did, in words: regrouped into k groups, kept k groups (no structure
    beyond noise), or k groups unchanged."""
    k = len(set(rnd["labels"]))
    plural = "group" if k == 1 else "groups"
    note = str(rnd.get("info", {}).get("note", "")) + str(rnd.get("info", {}).get("error", ""))
    if "kept" in note or "error" in rnd.get("info", {}):
        return f"layout kept ({k} {plural}): no structure" if "kept" in note else f"layout kept ({k} {plural}): error"
    old = rnd.get("plan", {}).get("old_layout")
    if old is not None and list(old) == list(rnd["labels"]):
        return f"{k} {plural}, unchanged"
    return f"regrouped into {k} {plural}"


def hetdps_figures(run: Path, out: Path, formats: Sequence[str], n_panels: int = 4) -> list[Path]:
    """``hetdps_matrices`` (matrices of up to ``n_panels`` rounds, first and last included) and
    ``group_timeline`` (the starting layout, then the layout after every round)."""
    run, written = Path(run), []
    rounds = {r["update"]: r for r in read_rounds(run)}
    npz = {int(p.stem.split("_")[-1]): p for p in run.glob("hetdps_round_*.npz")}
    conf = read_config(run)
    kind = conf.get("hetdps_kind") or conf.get("run", {}).get("hetdps_kind", "")  # on-policy | off-policy layout
    if npz:
        panels = []
        for u in evenly(sorted(npz), n_panels):
            z = np.load(npz[u])
            what = round_outcome(rounds[u]) if u in rounds else f"{len(set(z['labels'].tolist()))} groups"
            panels.append((f"update {u}: {what}", z["matrix"], z["labels"]))
        title = f"HetDPS rounds: {kind or 'heterogeneity'} distance matrix each round saw"
        written += matrix_panels(panels, out / "hetdps_matrices", formats, suptitle=title)
    if rounds:
        rs = [rounds[u] for u in sorted(rounds)]
        start = rs[0].get("plan", {}).get("old_layout")
        marks = ["kept" if "kept" in str(r.get("info", {}).get("note", "")) else "" for r in rs]
        written += group_timeline([r["update"] for r in rs], [r["labels"] for r in rs], out / "group_timeline",
                                  formats, start=start, marks=marks,
                                  title=f"network of each agent across HetDPS rounds ({kind})" if kind else "")
    return written


def _setting(conf: dict) -> str:
    """A run's experiment settings without its seed and run-level entries (JSON, sorted)."""
    def strip(d):  # noqa: ANN001, ANN202
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items() if k not in _RUN_LEVEL}
    return json.dumps(strip({k: v for k, v in conf.items() if k != "config"} | conf.get("config", {})),
                      sort_keys=True, default=str)


def _label(conf: dict, fallback: str) -> str:
    run = conf.get("run", conf)
    sharing = conf.get("resolved", {}).get("sharing") or run.get("sharing", "")
    parts = [run.get("env", ""), run.get("algo", ""), sharing]
    return " ".join(p for p in parts if p) or fallback


def group_runs(run: Path, compare: Sequence[Path]) -> dict[str, list[Path]]:
    """Legend label -> run folders: runs that are seeds of one setting share a label; ``run``'s
    label ends in "(this run)"; labels that would collide fall back to folder names."""
    groups: dict[str, list[Path]] = {}
    for r in [Path(run), *map(Path, compare)]:
        groups.setdefault(_setting(read_config(r)), []).append(r)
    out: dict[str, list[Path]] = {}
    for members in groups.values():
        conf = read_config(members[0])
        label = _label(conf, members[0].name)
        if len(members) == 1:
            seed = conf.get("seed", conf.get("config", {}).get("seed"))
            label += f" seed {seed}" if seed is not None else ""
        if label in out or f"{label} (this run)" in out:
            label = members[0].name  # same label, different settings: the folder names tell them apart
        if Path(run) in members:
            label += " (this run)"
        out[label] = members
    return out


def reward_figure(run: Path, compare: Sequence[Path], out: Path, formats: Sequence[str], smooth: int = 5) -> list[Path]:
    """``rewards``: training and evaluation return of ``run`` and the ``compare`` runs; runs that
    are seeds of one setting share a curve (mean +/- std)."""
    series = {label: [read_returns(m) for m in members] for label, members in group_runs(run, compare).items()}
    return train_eval_curves(series, out / "rewards", smooth=smooth, formats=formats)
