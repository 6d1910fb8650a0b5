"""One ``hetero sweep run`` per sweep folder: an exclusive ``fcntl.flock`` on ``OUT/sweep.lock``.

The holder writes its PID into the file; a second ``sweep run`` on the same folder is refused
with that PID. The kernel drops the lock when its process dies, so a killed sweep never blocks
the next one (the file stays, unlocked). Taking the lock removes what a killed driver left half
written (``OUT/.sweep.json.tmpPID``, ``OUT/state/.NAME.json.tmpPID`` of dead PIDs).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from hetero.errors import UsageError
from marl_backends.trainers.run_lock import remove_stale_temp_files

LOCK_NAME = "sweep.lock"


class SweepLock:
    """``with SweepLock(out):`` holds the sweep folder (UsageError if another process has it)."""

    def __init__(self, out: str | Path) -> None:
        self.path, self.fd = Path(out) / LOCK_NAME, None

    def __enter__(self) -> SweepLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(f"sweep folder {self.path.parent} is in use by another `hetero sweep run` (PID {holder}, "
                             f"see {self.path}); two would train every run twice. Wait for it, or stop it and run "
                             "this again (it resumes).") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        remove_stale_temp_files(self.path.parent, subfolders=("state",))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
