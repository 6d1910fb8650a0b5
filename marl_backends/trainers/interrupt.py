"""SIGINT / SIGTERM during training: finish the iteration, write a checkpoint, say how to resume.

``with GracefulStop() as stop:`` replaces the two handlers (main thread only) by one that records
the signal; the training loops check ``stop.requested`` after every iteration (a safe point: the
networks, optimisers, buffer and RNGs are consistent), save and raise
:class:`hetero.errors.RunInterrupted`. A second signal while waiting raises ``KeyboardInterrupt`` at
once (the run folder then keeps its previous checkpoint). The previous handlers come back on exit.
"""
from __future__ import annotations

import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Records SIGINT / SIGTERM while a run trains (see the module docstring)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stopped_at: int | None = None  # the iteration a loop stopped after (set by the loop)
        self._old: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame) -> None:  # noqa: ANN001
        if self.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum
        # os.write, not print: a handler may run while the main thread is inside a print or tqdm
        os.write(2, (f"\n{signal.Signals(signum).name}: stopping after this iteration and saving a checkpoint "
                     "(send it again to stop at once without saving)\n").encode())

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()


def checkpoint_and_stop(stop: GracefulStop | None, it: int, total: int, periodic: bool, save) -> bool:
    """The end of a training iteration, shared by the on- and off-policy loops: write the periodic
    (or final) checkpoint, or, when a signal came, one that only replaces ``checkpoint.pt``;
    ``save(keep)`` writes it. True when the loop must stop (``stop.stopped_at`` = ``it``)."""
    if periodic or it == total:
        save(True)
    elif stop is not None and stop.requested:
        save(False)
    if stop is not None and stop.requested and it < total:
        stop.stopped_at = it
        return True
    return False


def finished(stop: GracefulStop | None) -> bool:
    """True when the loop ran to its end (no signal stopped it)."""
    return stop is None or stop.stopped_at is None

