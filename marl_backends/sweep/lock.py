"""One ``hetero sweep run`` per sweep folder: an exclusive ``fcntl.flock`` on ``OUT/sweep.lock``.

The holder writes its PID into the file; a second ``sweep run`` on the same folder is refused
with that PID. The kernel drops the lock when its process dies, so a killed sweep never blocks
the next one (the file stays, unlocked). Taking the lock removes what a killed driver left half
written (``OUT/.sweep.json.tmpPID``, ``OUT/state/.NAME.json.tmpPID`` of dead PIDs).
"""
from __future__ import annotations

from pathlib import Path

from marl_backends.trainers.run_lock import release_flock, remove_stale_temp_files, take_flock

LOCK_NAME = "sweep.lock"


class SweepLock:
    """``with SweepLock(out):`` holds the sweep folder (UsageError if another process has it)."""

    def __init__(self, out: str | Path) -> None:
        self.path, self.fd = Path(out) / LOCK_NAME, None

    def __enter__(self) -> SweepLock:
        self.fd = take_flock(self.path, lambda holder: (
            f"sweep folder {self.path.parent} is in use by another `hetero sweep run` (PID {holder}, see "
            f"{self.path}); two would train every run twice. Wait for it, or stop it and run this again (it resumes)."))
        remove_stale_temp_files(self.path.parent, subfolders=("state",))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            release_flock(self.fd)
            self.fd = None
