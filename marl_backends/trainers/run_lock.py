"""One writer per run folder: an exclusive ``fcntl.flock`` on ``RUN/.lock`` while a run is written.

A second writer (two ``hetero train --resume RUN`` at once) is refused with the holder's PID,
which the holder writes into the lock file. The kernel drops a lock when its process dies, so a
killed run never blocks the next one. On taking the lock, temporary files that a dead writer
left (``.checkpoint.pt.tmp<PID>``, ``.metrics.csv.tmp<PID>``, see ``run_io``) are removed.
"""
from __future__ import annotations

import fcntl
import os
import re
import sys
from pathlib import Path
from typing import Callable

from hetero.errors import UsageError

LOCK_NAME = ".lock"
_TMP = re.compile(r"\..+\.tmp(\d+)")


def pid_alive(pid: int | None) -> bool:
    """A process with this PID runs on this host. A zombie (exited, not yet reaped: e.g. a killed
    sweep's worker whose new parent does not reap, as in containers whose PID 1 is not an init)
    counts as dead: it writes nothing more."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is the answer
    return state not in ("Z", "X")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process holds the lock now: its own leftovers are stale too
    return pid_alive(pid)


def remove_stale_temp_files(run_dir: Path, subfolders: tuple[str, ...] = ("checkpoints",)) -> list[Path]:
    """Remove the temporary files (``.NAME.tmpPID``) of writers that are no longer alive from
    ``run_dir`` and its ``subfolders``; returns them."""
    removed = []
    for folder in (run_dir, *(run_dir / sub for sub in subfolders)):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            m = _TMP.fullmatch(f.name)
            if m and f.is_file() and not _alive(int(m.group(1))):
                f.unlink(missing_ok=True)
                removed.append(f)
    return removed


def holds_no_run(run_dir: str | Path) -> bool:
    """``run_dir`` is a folder that a `hetero train` made and left before writing its config.json
    (killed, or a full disk, in that window): the writer lock file and temporary files of dead
    writers, nothing else. The same ``--run-name`` takes it again (under the lock); it holds nothing
    to resume."""
    try:
        entries = list(Path(run_dir).iterdir())
    except OSError:
        return False
    if not any(f.name == LOCK_NAME for f in entries):
        return False  # an empty folder may be another process's, just made: not taken
    for f in entries:
        m = _TMP.fullmatch(f.name)
        if f.name != LOCK_NAME and not (m and f.is_file() and not _alive(int(m.group(1)))):
            return False
    return True


def take_flock(path: Path, refusal: Callable[[str], str]) -> int:
    """Open ``path``, hold an exclusive ``flock`` on it and write this PID into it; returns the fd.
    Held by another process: UsageError(``refusal(holder_pid)``). The kernel drops the lock when the
    holder dies, so a killed holder never blocks."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise UsageError(refusal(holder)) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def release_flock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class RunLock:
    """``with RunLock(run_dir):`` holds the folder's writer lock (UsageError if another process has it)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir, self.fd = Path(run_dir), None

    def acquire(self) -> RunLock:
        path = self.run_dir / LOCK_NAME
        self.fd = take_flock(path, lambda holder: (
            f"{self.run_dir} is being written by another process (PID {holder}, see {path}); two writers would "
            "interleave its metrics and checkpoints. Wait for it to finish or stop it, then run this again."))
        removed = remove_stale_temp_files(self.run_dir)
        if removed:
            print(f"note: removed {len(removed)} temporary file(s) left by a writer that died: "
                  f"{', '.join(f.name for f in removed)}", file=sys.stderr)
        return self

    def release(self) -> None:
        if self.fd is not None:
            release_flock(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
