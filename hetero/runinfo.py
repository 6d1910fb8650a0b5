"""What a run folder records about where it came from, and JSON that stays valid JSON."""
from __future__ import annotations

import math
import platform
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def git_commit() -> dict:
    """The commit of the source tree ``hetero`` was imported from (None outside a git checkout),
    and whether tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=5)  # noqa: E731
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return {"git_commit": head.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def versions() -> dict:
    """hetero version, git commit (and dirty flag), torch and python versions for config.json."""
    import torch

    import hetero

    return {"hetero": hetero.__version__, **git_commit(), "torch": torch.__version__,
            "python": platform.python_version()}


def json_safe(obj):  # noqa: ANN001, ANN201
    """``obj`` with every non-finite float replaced by None, so ``json.dumps(allow_nan=False)``
    writes standard JSON (no ``Infinity`` / ``NaN`` tokens that strict parsers reject)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return json_safe(obj.item())
    return obj
