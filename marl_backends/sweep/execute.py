"""One attempt of one sweep run: ``hetero train|quantify`` as a child process of the worker.

The run is an ordinary run folder ``OUT/runs/NAME``; the sweep's bookkeeping stays outside it:
``OUT/state/NAME.json`` (status, attempts, pid, host, error; written atomically by the worker
that holds the run) and ``OUT/logs/NAME.log`` (the child's output, all attempts appended).

Resume: a train run whose folder holds ``checkpoint.pt`` continues with ``hetero train --resume``
(exact: the same metrics.csv as an uninterrupted run); a folder without one holds nothing worth
keeping and starts afresh. A quantify run has no checkpoints and restarts. A child killed by a
signal (SIGKILL, OOM killer, node loss) raises :class:`RunDied`, which the engines retry; a child
that exits with an error raises :class:`RunFailed`, which they record and do not retry (the same
flags would fail the same way). The child gets SIGKILL when its worker dies
(:mod:`marl_backends.sweep.child`), so a retried run never has two writers.

Clean-up removes only what the sweep made: a folder directly inside ``OUT/runs`` (resolved, not a
link) that the state file says an attempt of this sweep created (:func:`made_by_sweep`). Any
other folder in a run's place fails that run, untouched.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marl_backends.sweep.child import PARENT_ENV
from marl_backends.sweep.spec import command_argv
from marl_backends.trainers.run_io import write_json

class RunDied(RuntimeError):
    """The run's process was killed (a worker death): retry, resuming from the checkpoint."""


class RunFailed(RuntimeError):
    """The run's process exited with an error: record it, do not retry."""


@dataclass(frozen=True)
class RunTask:
    """Everything a worker (local thread or Ray task, any node) needs to execute one run."""

    name: str
    command: str
    options: tuple[tuple[str, Any], ...]
    out: str            # the sweep folder (shared by every node)
    pythonpath: str     # where the driver imports hetero from (the child imports the same code)
    device: str = ""    # overrides the run's --device when set (e.g. cuda with --gpus-per-run)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / "runs" / self.name


def state_path(out: str | Path, name: str) -> Path:
    return Path(out) / "state" / f"{name}.json"


def read_state(out: str | Path, name: str) -> dict:
    p = state_path(out, name)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {"status": "pending", "attempts": 0}


def write_state(out: str | Path, name: str, **fields) -> dict:  # noqa: ANN003
    st = {**read_state(out, name), **fields, "updated": time.time()}
    write_json(state_path(out, name), st)
    return st


def is_done(task: RunTask) -> bool:
    """Finished: the state says done and the run folder still holds the run's final file."""
    final = "metrics.csv" if task.command == "train" else "summary.json"
    return read_state(task.out, task.name).get("status") == "done" and (task.run_dir / final).exists()


def child_argv(task: RunTask) -> list[str]:
    """The ``hetero`` command line of this attempt (a fresh run, or ``--resume`` of its checkpoint)."""
    opts = dict(task.options)
    if task.device:
        opts["device"] = task.device
    run = task.run_dir
    if task.command == "quantify":  # a retry replaces the files of the attempt that died (only those)
        again = ["--overwrite"] if run.exists() and made_by_sweep(task) else []
        return [task.command, *command_argv("quantify", opts), "--out", str(run), *again]
    if (run / "checkpoint.pt").exists():
        argv = [task.command, "--resume", str(run)]
        saved = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
        saved = saved.get("run", saved)  # off-policy config.json keeps the run's flags under "run"
        for k in ("frames", "device"):  # the budget may grow; a retry may land on another device
            if k in opts and str(saved.get(k)) != str(opts[k]):
                argv += ["--" + k, str(opts[k])]
        return argv
    return [task.command, *command_argv("train", opts), "--out-dir", str(run.parent), "--run-name", run.name]


def made_by_sweep(task: RunTask) -> bool:
    """The run folder is this sweep's: an attempt recorded creating it (``made_run_dir``, written
    before the child starts), or (states of earlier versions) its config.json holds the command of
    the attempt the state records."""
    st = read_state(task.out, task.name)
    if st.get("made_run_dir"):
        return True
    try:
        command = json.loads((task.run_dir / "config.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return False
    return bool(st.get("argv")) and command == "hetero " + " ".join(st["argv"])


def _refuse(task: RunTask, why: str) -> RunFailed:
    write_state(task.out, task.name, status="failed", pid=None, error=why)
    return RunFailed(f"{task.name}: {why}")


def _own_folder(task: RunTask) -> Path:
    """``OUT/runs/NAME`` if it is a plain folder directly inside ``OUT/runs``; RunFailed otherwise."""
    run, runs = task.run_dir, Path(task.out) / "runs"
    if run.is_symlink() or run.resolve().parent != runs.resolve() or run.name in ("", ".", ".."):
        raise _refuse(task, f"{run} is not a folder inside {runs} (a link, or a name that leaves it); the sweep "
                            "neither writes nor removes it.")
    return run


def _remove_unfinished(task: RunTask) -> None:
    """Remove a run folder that holds no checkpoint, only if this sweep made it."""
    run = _own_folder(task)
    if not made_by_sweep(task):
        raise _refuse(task, f"{run} exists but no attempt of this sweep created it; move it away, then run the "
                            "sweep again.")
    shutil.rmtree(run)


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def execute_run(task: RunTask, node: str = "") -> dict:
    """Run one attempt; returns the final state. Raises RunDied / RunFailed (see module doc)."""
    if is_done(task):
        return read_state(task.out, task.name)
    run = _own_folder(task)
    if run.exists() and task.command == "train" and not (run / "checkpoint.pt").exists():
        _remove_unfinished(task)  # started but never checkpointed: nothing to resume
    if not run.exists():
        write_state(task.out, task.name, made_run_dir=True)  # before the child creates it
    run.parent.mkdir(parents=True, exist_ok=True)
    log = Path(task.out) / "logs" / f"{task.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = child_argv(task)
    attempt = read_state(task.out, task.name).get("attempts", 0) + 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (task.pythonpath, os.environ.get("PYTHONPATH")) if p),
           PARENT_ENV: str(os.getpid())}
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"\n=== attempt {attempt} on {socket.gethostname()} {node}: hetero {' '.join(argv)}\n")
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "marl_backends.sweep.child", *argv], stdout=f,
                                stderr=subprocess.STDOUT, env=env)
        write_state(task.out, task.name, status="running", attempts=attempt, pid=proc.pid, host=socket.gethostname(),
                    node=node, started=t0, argv=argv, error=None)
        rc = proc.wait()
    if rc == 0:
        return write_state(task.out, task.name, status="done", pid=None, finished=time.time(),
                           seconds=round(time.time() - t0, 2))
    if rc < 0 or rc in (128 + signal.SIGKILL, 128 + signal.SIGTERM):
        sig = -rc if rc < 0 else rc - 128
        write_state(task.out, task.name, status="interrupted", pid=None,
                    error=f"attempt {attempt} killed by signal {signal.Signals(sig).name}")
        raise RunDied(f"{task.name}: attempt {attempt} killed by {signal.Signals(sig).name}")
    err = _tail(log)
    write_state(task.out, task.name, status="failed", pid=None, error=f"exit code {rc}:\n{err}")
    raise RunFailed(f"{task.name}: exit code {rc} (see {log}):\n{err}")
