"""Finding the checkpoint a run resumes from, and surviving a corrupt one (on- and off-policy).

``--resume`` takes a run folder or one of its checkpoint files (``checkpoint.pt``,
``checkpoints/iter_*.pt``): :func:`resume_target` returns the run folder and the file (None = the
newest intact one). :func:`read_checkpoint` loads that file, or tries ``checkpoint.pt`` and then
``checkpoints/iter_*.pt`` newest first, skipping files that do not load (a truncated write, a full
disk) and saying which it skipped; a run folder without any checkpoint (killed before its first
one) gives ``None`` so the caller can restart it from iteration 0. Every file is read
weights-only (:mod:`marl_backends.trainers.safe_checkpoint`): a file that is not plain data is
refused, not skipped, and nothing in it runs. :func:`check_same_run` refuses a checkpoint whose
run identity (env, algo, sharing layout, seed) differs from the run folder's config.json.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from hetero.errors import UsageError
from marl_backends.trainers.safe_checkpoint import Unreadable as _Unreadable
from marl_backends.trainers.safe_checkpoint import load as _load_plain


def run_folder_of(path: str | Path) -> Path:
    """The run folder of ``path``: the folder itself (or, given its ``checkpoints`` subfolder, the
    run folder above it), or the folder holding a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        return p.parent if p.name == "checkpoints" and (p.parent / "config.json").is_file() else p
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
        from marl_backends.trainers.run_lock import holds_no_run

        if holds_no_run(run):
            raise UsageError(f"--resume {path}: {run} holds no run yet (the `hetero train` that made it stopped "
                             f"before writing its config.json); run that command again: with --run-name {run.name} "
                             "it takes this folder again.")
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
    p = run_folder_of(p)
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


def _load(f: Path, check) -> dict:  # noqa: ANN001
    obj = _load_plain(f)
    if check is not None:
        check(obj, f)
    return obj


IDENTITY = ("env", "algo", "sharing", "seed")


def run_identity(config: dict) -> dict:
    """env, algo, sharing layout and seed of a run, from its config.json (on- or off-policy) or
    from an on-policy checkpoint's config."""
    if "run" in config:  # off-policy config.json: run flags under "run", the trainer's under "config"
        run = config["run"]
        return {"env": run.get("env"), "algo": run.get("algo"), "sharing": run.get("sharing"),
                "seed": config.get("config", {}).get("seed")}
    sharing = config.get("resolved", {}).get("sharing")
    if sharing is None:
        from marl_backends.trainers.config import TrainConfig

        sharing = TrainConfig.from_dict(config).sharing_resolved
    return {"env": config.get("env"), "algo": config.get("algo"), "sharing": sharing, "seed": config.get("seed")}


def checkpoint_identity(obj: dict) -> dict | None:
    """The run identity a checkpoint records (None for a converted off-policy checkpoint of 0.2)."""
    if obj.get("identity") is not None:
        return dict(obj["identity"])
    return run_identity(obj["config"]) if "config" in obj else None


def check_same_run(obj: dict, file: Path, run_dir: Path) -> None:
    """UsageError unless checkpoint ``obj`` (read from ``file``) belongs to the run in ``run_dir``."""
    ours = checkpoint_identity(obj)
    try:
        theirs = run_identity(json.loads((run_dir / "config.json").read_text()))
    except (OSError, ValueError):
        return
    if ours is None or all(str(ours.get(k)) == str(theirs.get(k)) for k in IDENTITY):
        return
    fmt = lambda d: ", ".join(f"{k} {d.get(k)}" for k in IDENTITY)  # noqa: E731
    raise UsageError(f"--resume {run_dir}: {file} is a checkpoint of another run ({fmt(ours)}) than "
                     f"{run_dir / 'config.json'} ({fmt(theirs)}); nothing was changed. Resume the run that wrote "
                     "it, or start a new run.")
