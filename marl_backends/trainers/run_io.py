"""Run folders, metrics and atomic files, reusable by every trainer (on- and off-policy).

A run folder holds ``config.json`` (self-describing), ``metrics.csv`` (one row per iteration,
columns grow as new metrics appear), ``summary.json`` (end of run), optional TensorBoard events
under ``tb/`` and W&B files under ``wandb/`` (:mod:`marl_backends.trainers.loggers`), and
``checkpoint.pt`` plus ``checkpoints/iter_*.pt``.
Every file that a crash could tear is written to a temporary name and ``os.replace``d.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import torch


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` streamed to a temporary file next to ``path``, fsync, ``os.replace``: never a
    half-written file, and no in-memory copy of a large checkpoint (e.g. a replay buffer)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, obj: Any) -> None:
    """Standard JSON (non-finite numbers become null: no ``Infinity`` tokens), written atomically."""
    from hetero.runinfo import json_safe

    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, default=str, allow_nan=False) + "\n")


def make_run_dir(out_dir: str | Path, name: str) -> Path:
    """Create ``out_dir/name`` (``name_2``, ``name_3``, ... if it already exists)."""
    base = Path(out_dir) / name
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}_{k}")
    path.mkdir(parents=True)
    return path


def default_run_name(env: str, algo: str, sharing: str, seed: int) -> str:
    safe = sharing.replace(":", "-").replace(",", "")
    return f"{env}_{algo}_{safe}_s{seed}_{time.strftime('%Y%m%d-%H%M%S')}"


class MetricsLog:
    """Append-only CSV of metric rows, mirrored to TensorBoard / W&B when asked
    (:mod:`marl_backends.trainers.loggers`: grouped tags, step = env frames).

    ``keep_until`` (resume): rows whose ``step_key`` exceeds it were written after the last
    checkpoint and are dropped, so a resumed run does not duplicate them. ``wandb_project``: also
    log to that Weights & Biases project (``config`` becomes the W&B run config).
    """

    def __init__(self, path: Path, tensorboard: bool = False, keep_until: int | None = None,
                 step_key: str = "iteration", wandb_project: str | None = None, config: dict | None = None) -> None:
        from marl_backends.trainers.loggers import open_sinks

        self.path, self.step_key = Path(path), step_key
        self.rows: list[dict] = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f)]
            if keep_until is not None:
                self.rows = [r for r in self.rows if int(float(r.get(step_key) or 0)) <= keep_until]
        self.columns: list[str] = list(self.rows[0].keys()) if self.rows else []
        self._rewrite()
        self.sinks = open_sinks(self.path.parent, tensorboard, wandb_project, config)

    def _rewrite(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
        if self.columns:
            w.writeheader()
            w.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())

    def log(self, row: dict[str, Any]) -> None:
        row = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        for sink in self.sinks:
            sink.log(row)

    def summary(self, quiet: bool = False) -> dict:
        """End of run: ``summary.json`` in the run folder (final / best eval return, frames, wall
        time, frames/s, final layout), printed unless ``quiet``."""
        from marl_backends.trainers.loggers import write_summary

        return write_summary(self.path.parent, self.rows, quiet)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def _value(v: str | None) -> float | str:
    if v in ("", None):
        return float("nan")
    try:
        return float(v)
    except ValueError:
        return v


def read_metrics(run_dir: str | Path) -> list[dict[str, float | str]]:
    """metrics.csv as a list of dicts: numbers as floats (empty cells -> nan), text kept (layout)."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [{k: _value(v) for k, v in r.items()} for r in csv.DictReader(f)]
