"""Finding the checkpoint a run resumes from, and surviving a corrupt one (on- and off-policy).

``--resume`` takes a run folder or one of its checkpoint files (``checkpoint.pt``,
``checkpoints/iter_*.pt``): :func:`resume_target` returns the run folder and the file (None = the
newest intact one). :func:`read_checkpoint` loads that file, or tries ``checkpoint.pt`` and then
``checkpoints/iter_*.pt`` newest first, skipping files that do not load (a truncated write, a full
disk) and saying which it skipped; a run folder without any checkpoint (killed before its first
one) gives ``None`` so the caller can restart it from iteration 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from hetero.errors import UsageError


def run_folder_of(path: str | Path) -> Path:
    """The run folder of ``path``: the folder itself, or the folder holding a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent


def resume_target(path: str | Path) -> tuple[Path, Path | None]:
    """(run folder, checkpoint file or None) for ``--resume PATH``; UsageError when it is neither a
    run folder nor a checkpoint file in one."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"--resume {path}: no such run folder or checkpoint file; pass the folder that "
                         "`hetero train` printed as 'run folder:' (or one of its checkpoints/iter_*.pt).")
    run = run_folder_of(p)
    if not (run / "config.json").is_file():
        raise UsageError(f"--resume {path}: {run} is not a run folder of `hetero train` (no config.json).")
    return run, (None if p.is_dir() else p)


def candidates(run_dir: Path) -> list[Path]:
    """checkpoint.pt, then checkpoints/iter_*.pt from the newest, of the files that exist."""
    files = [run_dir / "checkpoint.pt"] if (run_dir / "checkpoint.pt").is_file() else []
    return files + sorted((run_dir / "checkpoints").glob("iter_*.pt"), reverse=True)


def read_checkpoint(path: str | Path, check: Callable[[dict, Path], None] | None = None,
                    ) -> tuple[dict | None, Path | None, str | None]:
    """(checkpoint dict, its file, note) from a run folder or a checkpoint file.

    A file given explicitly must load. For a run folder the newest intact candidate wins and
    ``note`` says which files were unreadable; ``(None, None, note)`` when the folder has no
    checkpoint at all. ``check(obj, file)`` raises ValueError for a file of the wrong kind (that
    error is not skipped: a checkpoint of another trainer is the user's mistake, not damage)."""
    p = Path(path)
    if p.is_file():
        try:
            return _load(p, check), p, None
        except _Unreadable as e:
            others = [str(f) for f in candidates(run_folder_of(p)) if f != p]
            hint = f"; pass the run folder to use the newest intact one ({', '.join(others[:3])})" if others else ""
            raise UsageError(f"{p}: {e}{hint}.") from e
    files = candidates(p)
    if not files:
        return None, None, f"{p} has no checkpoint yet (the run stopped before its first one)"
    bad = []
    for f in files:
        try:
            obj = _load(f, check)
        except _Unreadable as e:
            bad.append(f"{f.relative_to(p)} ({e})")
            continue
        note = None
        if bad:
            note = (f"{'; '.join(bad)} could not be read; using {f.relative_to(p)} instead, the newest intact "
                    "checkpoint")
        return obj, f, note
    raise UsageError(f"no intact checkpoint in {p}: {'; '.join(bad)}. Start the run again "
                     f"(`hetero train --resume {p}` cannot continue it).")


class _Unreadable(UsageError):
    pass


def _load(f: Path, check) -> dict:  # noqa: ANN001
    try:
        obj = torch.load(f, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - truncated zip, bad pickle, EOF, ...: all mean "damaged"
        first = (str(e).splitlines() or [""])[0][:120]
        raise _Unreadable(f"unreadable: {type(e).__name__}: {first}") from e
    if not isinstance(obj, dict):
        raise _Unreadable(f"not a checkpoint of `hetero train` (holds a {type(obj).__name__})")
    if check is not None:
        check(obj, f)
    return obj
