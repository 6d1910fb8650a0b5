"""Off-policy checkpoints: exact resume and loading trained policies.

A run folder (``hetero train --algo matd3|omdpg|...``) holds ``config.json`` (``kind`` =
:data:`CHECKPOINT_KIND`), ``checkpoint.pt`` (latest, **with** the resume state: the filled replay
rows as float32, the running envs mid-episode, all RNGs) and ``checkpoints/iter_*.pt`` (networks,
optimisers and counters only, for evaluation; kept small). Every file is written to a temporary
file in the same folder, fsynced and ``os.replace``-d, so a crash leaves the previous file intact.
A ``--sharing hetdps`` run also stores its HetDPS state (``trainer.hetdps.state_dict()``: round
history and the sample pools gathered for the next round; the iter_*.pt files keep the history
only), as the on-policy checkpoints do, so ``--resume`` continues the same layout and rounds.

Checkpoints hold plain data only (``version`` 2) and load weights-only
(:mod:`marl_backends.trainers.safe_checkpoint`); ``identity`` (env, algo, sharing, seed from the
run's config.json) lets ``--resume`` refuse a checkpoint copied in from another run.

- :func:`save_checkpoint` / :func:`load_checkpoint` / :func:`apply_checkpoint`: used by ``offpolicy.cli`` (``--resume``).
- :func:`is_offpolicy_checkpoint` (cheap, reads config.json only) and
  :func:`load_offpolicy_trainer` (for ``hetero quantify --checkpoint RUN_DIR``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from marl_backends.trainers.run_io import atomic_torch_save
from marl_backends.trainers.safe_checkpoint import FORMAT, encode

CHECKPOINT_KIND = "offpolicy-v1"


def _run_dir(path: str | Path) -> Path:
    """The run folder of ``path`` (a run folder, its checkpoints/ folder, checkpoint.pt, or checkpoints/iter_*.pt)."""
    from marl_backends.trainers.recovery import run_folder_of

    return run_folder_of(path)


def _checkpoint_file(path: str | Path) -> Path:
    p = Path(path)
    f = p / "checkpoint.pt" if p.is_dir() else p
    if not f.exists():
        raise FileNotFoundError(f"{f} does not exist; pass an off-policy run folder (with checkpoint.pt, "
                                "written by `hetero train --algo matd3|omdpg`) or one of its checkpoints/iter_*.pt.")
    return f


def save_checkpoint(trainer, run_dir: str | Path, iteration: int, keep: bool = True) -> Path:  # noqa: ANN001
    """``checkpoint.pt`` with the resume state, and (``keep``) a small ``checkpoints/iter_*.pt``."""
    run_dir = Path(run_dir)
    base = {"kind": CHECKPOINT_KIND, "version": FORMAT, "iteration": iteration, "trainer": trainer.state_dict(),
            "rng": trainer.gen.get_state(), "identity": _identity(run_dir)}
    hetdps = getattr(trainer, "hetdps", None)
    full = dict(base)
    if hetdps is not None:
        full["hetdps"] = hetdps.state_dict()
        base["hetdps"] = {**full["hetdps"], "pools": []}  # the gathered pools belong to the resume state
    if keep:
        atomic_torch_save(encode(base), run_dir / "checkpoints" / f"iter_{iteration:06d}.pt")
    path = run_dir / "checkpoint.pt"
    atomic_torch_save(encode({**full, "resume": trainer.resume_state()}), path)
    return path


def _identity(run_dir: Path) -> dict | None:
    from marl_backends.trainers.recovery import run_identity

    try:
        return run_identity(json.loads((run_dir / "config.json").read_text()))
    except (OSError, ValueError):
        return None


def _load_hetdps(trainer, obj: dict) -> None:  # noqa: ANN001
    if getattr(trainer, "hetdps", None) is not None and "hetdps" in obj:
        trainer.hetdps.load_state_dict(obj["hetdps"])


def check_kind(obj: dict, path: Path) -> None:
    """ValueError unless ``obj`` (loaded from ``path``) is an off-policy checkpoint."""
    if obj.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path}: kind {obj.get('kind')!r} is not an off-policy checkpoint ({CHECKPOINT_KIND}); "
                         "on-policy runs load with marl_backends.trainers.checkpoint.load_trainer.")


def load_checkpoint(trainer, path: str | Path) -> int:  # noqa: ANN001
    """Restore ``trainer`` from a checkpoint file or a run folder (its newest intact checkpoint,
    :func:`marl_backends.trainers.recovery.read_checkpoint`); returns its iteration."""
    from marl_backends.trainers.recovery import read_checkpoint

    obj, _, note = read_checkpoint(path if Path(path).is_dir() else _checkpoint_file(path), check_kind)
    if obj is None:
        raise FileNotFoundError(note)
    return apply_checkpoint(trainer, obj)


def apply_checkpoint(trainer, obj: dict) -> int:  # noqa: ANN001
    """Restore ``trainer`` from a loaded checkpoint; returns its iteration. With the resume state
    (the run's checkpoint.pt) the continuation is exact; without it (iter_*.pt or an old
    checkpoint) networks, optimisers, counters and the sampling RNG are restored and the buffer
    refills."""
    trainer.load_state_dict(obj["trainer"])
    trainer.gen.set_state(obj["rng"])
    _load_hetdps(trainer, obj)
    if "resume" in obj:
        trainer.load_resume_state(obj["resume"])
    return int(obj["iteration"])


def is_offpolicy_checkpoint(run_dir: str | Path) -> bool:
    """True when ``run_dir`` (or the run folder of a checkpoint file) is an off-policy run.

    Cheap: reads ``config.json`` only; False when it is missing or unreadable."""
    cfg = _run_dir(run_dir) / "config.json"
    try:
        return json.loads(cfg.read_text()).get("kind") == CHECKPOINT_KIND
    except (OSError, ValueError):
        return False


def load_offpolicy_trainer(run_dir: str | Path, env_factory=None, resume: bool = False, **overrides):  # noqa: ANN001, ANN003, ANN201
    """Rebuild an :class:`OffPolicyTrainer` from a run folder (its checkpoint.pt) or an iter_*.pt.

    The env is the run's (``trainer.cfg.env``, the registry name), ``num_envs`` as trained.
    ``overrides`` replace OffPolicyConfig fields that do not change the model (e.g.
    ``device="cuda"``). ``resume=False`` (default) loads networks only (skips the replay buffer and
    env snapshot); then ``trainer.policy_distributions(obs)`` gives [mean, std] [B, N, 2A]
    (discrete: probabilities [B, N, A]) and ``trainer.act_behaviour(obs, avail, generator=g)[0]``
    samples behaviour actions for the env (env-scaled, or available action indices).
    """
    from marl_backends.offpolicy.build import build
    from marl_backends.trainers.recovery import read_checkpoint

    run_dir_ = _run_dir(run_dir)
    if not is_offpolicy_checkpoint(run_dir_):
        raise ValueError(f"{run_dir_} is not an off-policy run folder (config.json kind != {CHECKPOINT_KIND!r}); "
                         "on-policy runs load with marl_backends.trainers.checkpoint.load_trainer.")
    obj, path, note = read_checkpoint(_checkpoint_file(run_dir) if Path(run_dir).is_file() else run_dir_, check_kind)
    if obj is None:
        raise FileNotFoundError(f"{run_dir_} has no checkpoint yet (the run stopped before its first one).")
    if note:
        print(f"note: {note}", file=sys.stderr)
    saved = json.loads((run_dir_ / "config.json").read_text())
    own = {k: tuple(v) if k == "hidden" else v for k, v in saved["config"].items() if k != "algo"}
    own.update(overrides)
    run = {**saved["run"], "hidden": tuple(saved["run"]["hidden"])}
    trainer, _, _ = build(run, own, env_factory, with_eval=False)
    trainer.load_state_dict(obj["trainer"])
    trainer.gen.set_state(obj["rng"])
    _load_hetdps(trainer, obj)
    if resume and "resume" in obj:
        trainer.load_resume_state(obj["resume"])
    return trainer
