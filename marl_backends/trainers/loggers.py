"""Metric sinks beside ``metrics.csv``: TensorBoard, Weights & Biases, and the end-of-run summary.

Both external loggers get the same grouped tags, indexed by env frames (the x axis of every
MARL paper), not by iteration: ``train/return``, ``eval/return``, ``eval/win_rate``,
``loss/actor``, ``policy/entropy``, ``hetdps/groups``, ``perf/fps``, ... (:func:`tag`).

- :class:`TensorBoardSink` needs the ``tensorboard`` package (extra ``tensorboard``); when it is
  missing, :func:`open_sinks` prints one warning line and the run goes on with metrics.csv.
- :class:`WandbSink` needs ``wandb`` (extra ``wandb``), is off by default (``--wandb``,
  ``--wandb-project``) and honours ``WANDB_MODE`` (``offline`` in the tests: no account, no
  network; ``wandb sync RUN/wandb/offline-run-*`` uploads later). A resumed run continues the
  same W&B run (its id is kept in ``RUN/wandb_id``).
- :func:`write_summary`: final / best evaluation return, frames, wall time, frames/s and the
  final layout, printed and written to ``RUN/summary.json`` (strict JSON: no NaN / Infinity).
"""
from __future__ import annotations

import json
import math
import secrets
import sys
from pathlib import Path
from typing import Any

# metric name -> tag; names not listed go to <prefix>/<rest> by their prefix, else train/<name>
_TAGS = {
    "train_return": "train/return", "train_win_rate": "train/win_rate", "episodes": "train/episodes",
    "step_reward": "train/step_reward", "eval_return": "eval/return", "eval_return_std": "eval/return_std",
    "eval_win_rate": "eval/win_rate", "actor_loss": "loss/actor", "critic_loss": "loss/critic",
    "grad_norm": "loss/grad_norm", "entropy": "policy/entropy", "approx_kl": "policy/approx_kl",
    "clip_frac": "policy/clip_frac", "fps": "perf/fps", "rollout_s": "perf/rollout_s", "update_s": "perf/update_s",
    "wall_s": "perf/wall_s", "updates": "train/updates",
}
_PREFIXES = {"hetdps_": "hetdps/", "eval_": "eval/", "train_": "train/", "loss_": "loss/"}
_NOT_LOGGED = {"iteration", "frames", "layout"}


def tag(name: str) -> str:
    """The grouped tag of a metrics.csv column (``hetdps_groups`` -> ``hetdps/groups``)."""
    if name in _TAGS:
        return _TAGS[name]
    for prefix, group in _PREFIXES.items():
        if name.startswith(prefix):
            return group + name[len(prefix):]
    return "train/" + name


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a metrics row under their grouped tags."""
    out = {}
    for k, v in row.items():
        if k in _NOT_LOGGED:
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x):
            out[tag(k)] = x
    return out


def _frames(row: dict[str, Any]) -> int:
    return int(float(row.get("frames") or 0))


class TensorBoardSink:
    """TensorBoard events under ``RUN/tb``, grouped tags, step = env frames."""

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # ImportError without the tensorboard package

        # purge_step (a resumed run): readers drop the earlier events at steps >= it, logged after the checkpoint
        self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=purge_step)

    def log(self, row: dict[str, Any]) -> None:
        step = _frames(row)
        for k, x in scalars(row).items():
            self.writer.add_scalar(k, x, step)

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """A Weights & Biases run named after the run folder, files under ``RUN/wandb``."""

    def __init__(self, run_dir: Path, project: str, config: dict | None = None) -> None:
        import wandb  # ImportError without the wandb package

        run_dir = Path(run_dir)
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)  # W&B style: 8 of [0-9a-z]
        id_file.write_text(run_id + "\n")
        self.run = wandb.init(project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir),
                              config=config or {}, reinit="create_new")
        self.run.define_metric("frames")
        self.run.define_metric("*", step_metric="frames")

    def log(self, row: dict[str, Any]) -> None:
        data = scalars(row)
        data["frames"] = _frames(row)
        self.run.log(data)

    def close(self) -> None:
        self.run.finish()


def open_sinks(run_dir: Path, tensorboard: bool, wandb_project: str | None, config: dict | None = None,
               purge_step: int | None = None) -> list:
    """The requested sinks that can run here; a missing package costs one warning line, not the run.
    ``purge_step``: the first env frame of a resumed run not covered by its checkpoint (TensorBoard)."""
    sinks: list = []
    if tensorboard:
        try:
            sinks.append(TensorBoardSink(run_dir, purge_step))
        except ImportError:
            print("warning: --tensorboard is on but the tensorboard package is not installed; no TensorBoard "
                  "events are written (pip install -c constraints.txt 'hetero[tensorboard]', or pass "
                  "--no-tensorboard to silence this).", file=sys.stderr)
    if wandb_project:
        try:
            sinks.append(WandbSink(run_dir, wandb_project, config))
        except ImportError:
            print("warning: --wandb is on but the wandb package is not installed; nothing is sent to Weights & "
                  "Biases (pip install -c constraints.txt 'hetero[wandb]').", file=sys.stderr)
    return sinks


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def run_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Final / best evaluation return, frames, wall time and frames/s, final layout, from the
    rows of metrics.csv. Wall time adds up the sessions of a resumed run (``wall_s`` restarts)."""
    if not rows:
        return {"iterations": 0}
    last = rows[-1]
    evals = [(_num(r.get("frames")), _num(r.get("eval_return"))) for r in rows]
    evals = [(f, e) for f, e in evals if math.isfinite(e)]
    wall, prev = 0.0, 0.0
    for r in rows:
        w = _num(r.get("wall_s"))
        if not math.isfinite(w):
            continue
        if w < prev:  # a new session (resume) restarted the clock
            wall += prev
        prev = w
    wall += prev
    frames = _num(last.get("frames"))
    train = [_num(r.get("train_return")) for r in rows[-10:]]
    train = [x for x in train if math.isfinite(x)]
    out: dict[str, Any] = {
        "iterations": int(_num(last.get("iteration"))) if math.isfinite(_num(last.get("iteration"))) else len(rows),
        "frames": int(frames) if math.isfinite(frames) else None,
        "wall_s": round(wall, 1), "fps": round(frames / wall, 1) if wall > 0 and math.isfinite(frames) else None,
        "final_train_return": _finite(sum(train) / len(train)) if train else None,
        "final_eval_return": _finite(evals[-1][1]) if evals else None,
        "best_eval_return": _finite(max(e for _, e in evals)) if evals else None,
        "best_eval_frames": int(max(evals, key=lambda p: p[1])[0]) if evals else None,
        "final_layout": str(last.get("layout", "")),
    }
    out["final_groups"] = len(set(out["final_layout"].split("-"))) if out["final_layout"] else None
    for k in ("eval_win_rate", "train_win_rate", "hetdps_rounds"):
        x = _num(last.get(k))
        if math.isfinite(x):
            out["final_" + k if not k.startswith("hetdps") else k] = int(x) if k == "hetdps_rounds" else x
    return out


def format_summary(s: dict[str, Any]) -> str:
    """The summary as a few readable lines."""
    def f(x, fmt="{:.4g}"):  # noqa: ANN001, ANN202
        return "n/a" if x is None else fmt.format(x)
    lines = [f"done: {s.get('iterations')} iterations, {f(s.get('frames'), '{:,}')} frames in "
             f"{f(s.get('wall_s'), '{:.0f}')} s ({f(s.get('fps'), '{:.0f}')} frames/s)",
             f"return: final eval {f(s.get('final_eval_return'))}, best eval {f(s.get('best_eval_return'))} "
             f"(at {f(s.get('best_eval_frames'), '{:,}')} frames), final train {f(s.get('final_train_return'))} "
             "(mean of the last 10 iterations)"]
    if "final_eval_win_rate" in s:
        lines.append(f"win rate: final eval {s['final_eval_win_rate']:.2f}")
    lines.append(f"layout: {s.get('final_layout')} ({s.get('final_groups')} group(s))"
                 + (f", {int(s['hetdps_rounds'])} HetDPS round(s)" if "hetdps_rounds" in s else ""))
    return "\n".join(lines)


def write_summary(run_dir: Path, rows: list[dict[str, Any]], quiet: bool = False) -> dict[str, Any]:
    """Write ``RUN/summary.json`` (strict JSON) and print the summary to stdout (so it lands in a
    batch job's log) unless ``quiet``."""
    from marl_backends.trainers.run_io import atomic_write_text

    s = run_summary(rows)
    atomic_write_text(Path(run_dir) / "summary.json", json.dumps(s, indent=2, allow_nan=False) + "\n")
    if not quiet:
        print(format_summary(s), flush=True)
    return s
