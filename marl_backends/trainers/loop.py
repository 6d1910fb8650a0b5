"""The training loop: progress bar / log lines, metrics, periodic evaluation, atomic checkpoints,
and a checkpoint at the next safe point when SIGINT / SIGTERM arrive (``stop``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from marl_backends.trainers.checkpoint import save_checkpoint
from marl_backends.trainers.interrupt import GracefulStop, checkpoint_and_stop, finished
from marl_backends.trainers.onpolicy import OnPolicyTrainer
from marl_backends.trainers.report import RunReport
from marl_backends.trainers.run_io import MetricsLog

Callback = Callable[[OnPolicyTrainer, dict], None]


def train(trainer: OnPolicyTrainer, run_dir: str | Path, callback: Callback | None = None,
          stop: GracefulStop | None = None) -> Path:
    """Train until ``cfg.frames`` (continuing from ``trainer.iteration`` when resumed).

    ``callback(trainer, metrics)`` runs after every iteration; it may add entries to
    ``metrics`` before they are logged. A trainer built with ``--sharing hetdps`` carries its
    HetDPS controller (``trainer.hetdps``): it runs after every update, before evaluation, and
    logs its rounds into ``run_dir`` (hetdps_rounds.jsonl, hetdps_round_*.npz) and as a text line.
    With ``stop`` (a :class:`GracefulStop` the caller entered), a signal ends the loop after the
    iteration in progress, with its checkpoint written (``stop.stopped_at`` = that iteration).
    """
    cfg, run_dir = trainer.cfg, Path(run_dir)
    log = MetricsLog(run_dir / "metrics.csv", cfg.tensorboard, keep_until=trainer.iteration,
                     wandb_project=cfg.wandb_project if cfg.wandb else None, config=cfg.to_dict())
    total = cfg.iterations
    t0 = time.perf_counter()
    report = RunReport(f"{cfg.algo} {cfg.sharing_resolved} {cfg.env}", total, cfg.batch_frames, trainer.iteration,
                       trainer.frames, cfg.progress, cfg.log_interval)
    hetdps = getattr(trainer, "hetdps", None)
    if hetdps is not None:
        hetdps.attach_log(run_dir)
    try:
        while trainer.iteration < total:
            m = trainer.iterate()
            it = trainer.iteration
            if hetdps is not None:
                old = tuple(trainer.layout)
                rnd = hetdps.after_update(it, last=total)
                m.update(hetdps.metrics())
                if rnd is not None:
                    report.round(rnd, old)
            if (cfg.eval_interval and it % cfg.eval_interval == 0) or it == total:
                m.update(trainer.evaluate())
            if callback is not None:
                callback(trainer, m)
            m["wall_s"] = time.perf_counter() - t0
            m["layout"] = "-".join(map(str, trainer.layout))
            log.log(m)
            report.update(it, trainer.frames, m, cfg.batch_frames)
            periodic = bool(cfg.checkpoint_interval and it % cfg.checkpoint_interval == 0)
            if checkpoint_and_stop(stop, it, total, periodic, lambda keep: save_checkpoint(trainer, run_dir, keep=keep)):
                break
        report.close()
        if finished(stop):  # summary.json + a few lines
            log.summary()
    finally:
        report.close()
        log.close()
    return run_dir
