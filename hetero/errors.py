"""Errors the command line reports without a traceback, and the checks that raise them.

``hetero.cli.main`` turns them into exit codes (argparse convention, documented in the README):

- :class:`UsageError` (a ``ValueError``): the command cannot start as given (a bad flag value,
  an unknown name, a missing file or optional extra) -> ``error: <message>``, exit 2.
- :class:`RunInterrupted`: SIGINT / SIGTERM stopped a run at a safe point after saving it ->
  the resume command, exit 128 + signal number (130 for Ctrl-C, 143 for SIGTERM).
- any other exception while a run works -> ``error: <message>``, exit 1.

``--debug`` adds the traceback. Library code keeps raising plain ``ValueError`` /
``FileNotFoundError`` / ``ImportError``; a command wraps its set-up in :func:`usage_errors`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path


class UsageError(ValueError):
    """The command cannot start as given; the message names the input and the fix (exit 2)."""

    exit_code = 2


class RunInterrupted(Exception):
    """A signal stopped a run at a safe point; ``saved`` says whether a checkpoint was written."""

    def __init__(self, signame: str, signum: int, run_dir: Path, iteration: int, frames: int, saved: bool,
                 resume_command: str) -> None:
        self.signame, self.run_dir, self.iteration, self.frames, self.saved = signame, run_dir, iteration, frames, saved
        self.resume_command = resume_command
        self.exit_code = 128 + signum
        what = (f"checkpoint saved to {Path(run_dir) / 'checkpoint.pt'}" if saved else
                "no checkpoint written for the last iteration(s); the run folder keeps its last checkpoint")
        super().__init__(f"interrupted by {signame} at iteration {iteration} ({frames:,} frames); {what}")


@contextmanager
def usage_errors(*types: type[BaseException]):
    """Re-raise ``types`` (default ValueError, FileNotFoundError, ImportError) as :class:`UsageError`.

    Wrap the set-up of a command (parsing, validation, building envs / trainers) in it: what
    fails there is the user's input or installation, not the run."""
    types = types or (ValueError, FileNotFoundError, NotADirectoryError, ImportError)
    try:
        yield
    except UsageError:
        raise
    except types as e:
        raise UsageError(_message(e)) from e


def _message(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError) and not e.args[1:] and e.args:
        return str(e.args[0])
    if isinstance(e, OSError) and e.filename:
        return f"{e.strerror or e}: {e.filename}"
    return str(e) or type(e).__name__


def check_number(value: float, flag: str, *, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None, le: float | None = None, hint: str = "") -> None:
    """Raise ValueError naming ``flag`` unless ``value`` is finite and within the given bounds."""
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    bounds = []
    for op, b, test in (("> ", gt, lambda v, b: v > b), (">= ", ge, lambda v, b: v >= b),
                        ("< ", lt, lambda v, b: v < b), ("<= ", le, lambda v, b: v <= b)):
        if b is not None:
            bounds.append(op + f"{b:g}")
            ok = ok and test(value, b)
    if not ok:
        want = " and ".join(bounds) if bounds else "finite"
        raise ValueError(f"{flag} must be {want} (got {value!r}){'; ' + hint if hint else ''}.")
