"""Run folders, metrics and atomic files, reusable by every trainer (on- and off-policy).

A run folder holds ``config.json`` (self-describing), ``metrics.csv`` (one row per iteration,
columns grow as new metrics appear), ``summary.json`` (end of run), optional TensorBoard events
under ``tb/`` and W&B files under ``wandb/`` (:mod:`marl_backends.trainers.loggers`), and
``checkpoint.pt`` plus ``checkpoints/iter_*.pt``.
Every file that a crash could tear is written to a temporary name and ``os.replace``d.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch


class DiskFull(OSError):
    """A write failed for lack of space; the message names the file and the space it needed."""

    def __init__(self, path: Path, need: int, detail: str = "") -> None:
        path = Path(path)
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = 0
        run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        kept = f"the previous {path.name} is intact; " if path.exists() else ""
        if (run / "config.json").exists():
            then = f"continue with `hetero train --resume {run}`"
        elif path.name == "config.json":  # a run folder that holds no run yet
            then = "run the same command again (nothing was trained yet)"
        else:  # not a run folder's file (a sweep's state, a report)
            then = "run the same command again"
        self.message = (f"no space left on the device writing {path} (about {_size(need)} needed, {_size(free)} "
                        f"free{'; ' + detail if detail else ''}); {kept}free some space, then {then}.")
        super().__init__(errno.ENOSPC, self.message, str(path))

    def __str__(self) -> str:
        return self.message


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _full(e: BaseException) -> bool:
    """An OSError for lack of space, or torch.save's RuntimeError for a failed write."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(e)
    return isinstance(e, RuntimeError) and ("inline_container.cc" in text or "file write failed" in text)


def _nbytes(obj: Any) -> int:
    """Bytes of the tensors in ``obj`` (the size of its checkpoint, roughly)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 64


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if _full(e):
            raise DiskFull(path, len(data)) from e
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` streamed to a temporary file next to ``path``, fsync, ``os.replace``: never a
    half-written file, and no in-memory copy of a large checkpoint (e.g. a replay buffer). A full
    disk raises :class:`DiskFull` with ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        if _full(e):
            raise DiskFull(path, _nbytes(obj), "" if isinstance(e, OSError) else f"torch: {_first(e)}") from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _first(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:100]


def write_json(path: Path, obj: Any) -> None:
    """Standard JSON (non-finite numbers become null: no ``Infinity`` tokens), written atomically."""
    from hetero.runinfo import json_safe

    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, default=str, allow_nan=False) + "\n")


def check_out_dir(out_dir: str | Path) -> Path:
    """``--out-dir`` as a Path; UsageError naming the flag when it (or a folder above it) is a file."""
    from hetero.errors import UsageError

    out = Path(out_dir)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise UsageError(f"--out-dir {out}: {p} is a file, not a folder; pass a folder for the run folders.")
    return out


def make_run_dir(out_dir: str | Path, name: str, exact: bool = False) -> Path:
    """Create ``out_dir/name`` atomically (``os.mkdir``). ``exact`` (``--run-name``): UsageError if it
    exists, unless it holds no run (:func:`~marl_backends.trainers.run_lock.holds_no_run`: a start
    killed before its config.json), which is taken again; else ``name_2``, ``name_3``, ... (two runs
    started in the same second)."""
    from hetero.errors import UsageError

    out = check_out_dir(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out-dir {out}: cannot create it ({e.strerror or e}).") from e
    base, k = out / name, 1
    while True:
        path = base if k == 1 else base.with_name(f"{base.name}_{k}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            if exact:
                from marl_backends.trainers.run_lock import holds_no_run

                if holds_no_run(path):  # a start killed before its config.json: the caller locks it
                    return path
                raise UsageError(f"--run-name {name}: {path} already exists; continue it with `hetero train --resume "
                                 f"{path}`, or pick another --run-name (without one the folder name gets a time "
                                 "stamp).") from None
            k += 1


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
        # a resumed run: TensorBoard drops the events after the last kept row (no duplicate points)
        purge = None
        if keep_until is not None and (self.path.parent / "tb").is_dir():
            purge = int(float(self.rows[-1].get("frames") or 0)) + 1 if self.rows else 0
        self.sinks = open_sinks(self.path.parent, tensorboard, wandb_project, config, purge_step=purge)

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
            self._append(row)
        for sink in self.sinks:
            sink.log(row)

    def _append(self, row: dict[str, Any]) -> None:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        data = buf.getvalue().encode()
        with open(self.path, "ab") as f:
            end = f.tell()
            try:
                f.write(data)
                f.flush()
            except OSError as e:  # no half row: the file ends where it did
                f.truncate(end)
                if _full(e):
                    raise DiskFull(self.path, len(data)) from e
                raise

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
