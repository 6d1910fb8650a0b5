"""``hetero sweep status``: each run's state, frames done, and an ETA from measured frames/s.

States: ``done``; ``running`` (a worker holds it); ``interrupted`` (killed, or its worker on this
host is gone: the next ``sweep run`` resumes it from its checkpoint); ``failed`` (with the
error); ``pending`` (not started). The ETA divides the frames still to train by the measured
frames/s of one run (wall-clock deltas between metrics rows, over all runs) times the runs that
execute at once (the ``--jobs`` of the last ``sweep run``, or the runs running now on Ray).
"""
from __future__ import annotations

import json
import math
import socket
from pathlib import Path

from marl_backends.sweep.execute import read_state
from marl_backends.sweep.spec import SweepSpec
from marl_backends.trainers.config import TrainConfig
from marl_backends.trainers.run_lock import pid_alive

DEFAULT_FRAMES = TrainConfig.frames


def _metrics(run_dir: Path) -> list[dict]:
    from marl_backends.trainers.run_io import read_metrics

    try:
        return read_metrics(run_dir)
    except (OSError, ValueError):
        return []


def frame_rate(rows: list[dict]) -> tuple[float, float]:
    """(frames, seconds) summed over consecutive metrics rows of one attempt (wall_s restarts on resume)."""
    frames = secs = 0.0
    for a, b in zip(rows, rows[1:]):
        try:
            dw, df = float(b["wall_s"]) - float(a["wall_s"]), float(b["frames"]) - float(a["frames"])
        except (KeyError, TypeError, ValueError):
            continue
        if dw > 0 and df > 0 and math.isfinite(dw):
            frames, secs = frames + df, secs + dw
    return frames, secs


def sweep_status(spec: SweepSpec) -> dict:
    """Per-run rows and totals (frames done / to do, measured frames/s per run, ETA in seconds)."""
    host = socket.gethostname()
    rows, f_sum, s_sum = [], 0.0, 0.0
    for run in spec.runs:
        st = read_state(spec.out, run.name)
        status = st.get("status", "pending")
        if status == "running" and st.get("host") == host and not pid_alive(st.get("pid")):
            status = "interrupted"
        target = int(run.opts.get("frames", DEFAULT_FRAMES)) if spec.command == "train" else 0
        m = _metrics(spec.runs_dir / run.name) if spec.command == "train" else []
        done_frames = int(float(m[-1]["frames"])) if m else 0
        if status == "done":
            done_frames = max(done_frames, target)
        df, ds = frame_rate(m)
        f_sum, s_sum = f_sum + df, s_sum + ds
        rows.append({"run": run.name, "status": status, "attempts": st.get("attempts", 0), "frames": done_frames,
                     "target": target, "error": st.get("error") if status in ("failed", "interrupted") else None,
                     "node": st.get("node", "")})
    rate = f_sum / s_sum if s_sum > 0 else float("nan")
    try:
        slots = json.loads((spec.out / "sweep.json").read_text()).get("slots")
    except (OSError, ValueError):
        slots = None
    running = sum(r["status"] == "running" for r in rows)
    left = [r for r in rows if r["status"] != "done"]
    slots = max(1, min(len(left) or 1, slots or running or 1))
    remaining = sum(max(0, r["target"] - r["frames"]) for r in left)
    eta = remaining / (rate * slots) if rate == rate and rate > 0 else float("nan")
    counts = {k: sum(r["status"] == k for r in rows) for k in ("done", "running", "interrupted", "failed", "pending")}
    return {"runs": rows, "counts": counts, "frames_per_s_per_run": rate, "slots": slots,
            "frames_remaining": remaining, "eta_s": eta}


def _hms(s: float) -> str:
    if s != s:
        return "unknown (no frames/s measured yet)"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def format_status(spec: SweepSpec, st: dict) -> str:
    w = max([len(r["run"]) for r in st["runs"]] + [3])
    lines = [f"sweep {spec.name} ({spec.out}): " + ", ".join(f"{v} {k}" for k, v in st["counts"].items() if v)]
    for r in st["runs"]:
        frames = f"{r['frames']:>10,d} / {r['target']:,d}" if r["target"] else ""
        extra = f"  attempts {r['attempts']}" if r["attempts"] > 1 else ""
        lines.append(f"  {r['run']:<{w}s}  {r['status']:<11s} {frames}{extra}")
        if r["error"]:
            lines += ["      " + x for x in str(r["error"]).splitlines()[-6:]]
    if spec.command == "train":
        lines.append(f"frames left {st['frames_remaining']:,d}; {st['frames_per_s_per_run']:.0f} frames/s per run "
                     f"x {st['slots']} at once; ETA {_hms(st['eta_s'])}")
    return "\n".join(lines)
