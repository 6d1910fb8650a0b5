"""The process of one sweep run: ``python -m marl_backends.sweep.child train|quantify FLAGS``.

It asks Linux to SIGKILL it when the worker thread that started it dies (``PR_SET_PDEATHSIG``),
so a retried run never has two writers, then runs ``hetero FLAGS`` in this process. Set here
rather than in a ``preexec_fn``: that would force a plain ``fork`` of a multi-threaded worker
(JAX, Ray), which can deadlock.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PARENT_ENV = "HETERO_SWEEP_PARENT"


def die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the engines still retry, a stray child may finish
        return
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if parent and os.getppid() != parent:  # the worker died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    die_with_parent()
    from hetero.cli import main as hetero_main

    sys.argv = ["hetero", *sys.argv[1:]]  # config.json records the command as `hetero train ...`
    return hetero_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
