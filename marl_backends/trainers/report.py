"""What a training run shows while it runs: a progress bar on a terminal, text lines in a log.

:class:`RunReport` is used by both training loops. The tqdm bar appears when ``progress`` is on
and stderr is a terminal. The line logger prints one line every ``log_interval`` iterations (and
at the first and last) to stdout whenever stdout is not a terminal or the bar is off, so
``hetero train ... > log.txt`` gives a readable log with no ``\\r`` frames::

    iter 25/250  frames 100.0k  return -41.27  eval -38.90  fps 2210  groups 3 [0-0-1-1-2]  45s

HetDPS rounds and notes get a line of their own in both modes (above the bar on a terminal).
``log_interval`` 0 turns the lines off.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np


def _num(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.4g}"


def _frames(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def describe_round(rnd, old_layout: tuple[int, ...]) -> str:  # noqa: ANN001
    """One line for a HetDPS round: when, what it decided (split / merge / kept), why."""
    new = tuple(rnd.labels)
    n_old, n_new = len(set(old_layout)), len(set(new))
    actions = set(rnd.plan.get("actions", ())) if isinstance(rnd.plan, dict) else set()
    info = rnd.info or {}
    if "error" in info:
        what = f"failed ({info['error']}); layout kept, {n_old} group(s)"
    elif new == tuple(old_layout):
        what = f"kept the layout, {n_new} group(s)"
    else:
        verb = ("split" if n_new > n_old else "merged" if n_new < n_old else "regrouped")
        if {"split", "merge"} <= actions:
            verb = "split and merged"
        what = f"{verb} {n_old} -> {n_new} group(s)"
    lab = np.asarray(new)
    groups = " ".join("{" + ",".join(map(str, np.flatnonzero(lab == g))) + "}" for g in sorted(set(new)))
    p = info.get("p_value")
    test = f", p {p:.2g}" if isinstance(p, (int, float)) else ""
    line = f"hetdps round at iteration {rnd.update} ({rnd.seconds:.1f} s{test}): {what}"
    if len(new) <= 20:
        line += f": {groups}"
    note = info.get("note")
    return line + (f" ({note})" if note else "")


class RunReport:
    """Progress bar and/or line logger for one training run (see the module docstring)."""

    def __init__(self, desc: str, total_iters: int, frames_per_iter: int, start_iter: int, start_frames: int,
                 progress: bool = True, log_interval: int = 10, stream=None) -> None:  # noqa: ANN001
        from tqdm.auto import tqdm

        self.out = stream or sys.stdout
        self.total, self.interval = total_iters, max(0, int(log_interval))
        self.bar_on = bool(progress) and sys.stderr.isatty()
        self.lines_on = self.interval > 0 and (not self.bar_on or not _isatty(self.out))
        self.bar = tqdm(total=total_iters * frames_per_iter, initial=start_frames, unit="frame", unit_scale=True,
                        disable=not self.bar_on, desc=desc, dynamic_ncols=True)
        self.t0, self.f0, self.first = time.perf_counter(), start_frames, start_iter + 1
        self.last_eval = math.nan
        self.last_ret = math.nan

    def note(self, text: str) -> None:
        """A line of its own: above the bar on a terminal, else on the log stream."""
        if self.bar_on:
            self.bar.write(text, file=sys.stderr)
        if self.lines_on or not self.bar_on:
            print(text, file=self.out, flush=True)

    def round(self, rnd, old_layout) -> None:  # noqa: ANN001
        self.note(describe_round(rnd, tuple(old_layout)))

    def update(self, it: int, frames: int, m: dict, frames_per_iter: int) -> None:
        """After iteration ``it`` with metrics ``m`` (train_return, eval_return, layout, ...)."""
        if math.isfinite(m.get("train_return", math.nan)):
            self.last_ret = m["train_return"]
        if "eval_return" in m:
            self.last_eval = m["eval_return"]
        elapsed = time.perf_counter() - self.t0
        fps = (frames - self.f0) / max(elapsed, 1e-9)
        self.bar.update(frames_per_iter)
        post = {"ret": _num(self.last_ret), "fps": f"{fps:.0f}"}
        if "eval_return" in m:
            post["eval"] = _num(m["eval_return"])
        if math.isfinite(m.get("train_win_rate", math.nan)):
            post["win"] = f"{m['train_win_rate']:.2f}"
        self.bar.set_postfix(post)
        if self.lines_on and (it % self.interval == 0 or it == self.first or it == self.total):
            self.note(self.line(it, frames, m, fps, elapsed))

    def line(self, it: int, frames: int, m: dict, fps: float, elapsed: float) -> str:
        parts = [f"iter {it}/{self.total}", f"frames {_frames(frames)}", f"return {_num(self.last_ret)}"]
        if math.isfinite(self.last_eval):
            parts.append(f"eval {_num(self.last_eval)}")
        for k, name in (("train_win_rate", "win"), ("eval_win_rate", "eval_win")):
            if math.isfinite(m.get(k, math.nan)):
                parts.append(f"{name} {m[k]:.2f}")
        parts.append(f"fps {fps:.0f}")
        layout = str(m.get("layout", ""))
        if layout:
            n = len(set(layout.split("-")))
            parts.append(f"groups {n}" + (f" [{layout}]" if layout.count("-") < 20 else ""))
        if "hetdps_rounds" in m:
            parts.append(f"rounds {m['hetdps_rounds']}")
        parts.append(f"{elapsed:.0f}s")
        return "  ".join(parts)

    def close(self) -> None:
        self.bar.close()


def _isatty(stream) -> bool:  # noqa: ANN001
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
