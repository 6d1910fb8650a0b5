"""The training loop: progress bar, metrics, periodic evaluation and atomic checkpoints."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from marl_backends.trainers.checkpoint import save_checkpoint
from marl_backends.trainers.onpolicy import OnPolicyTrainer
from marl_backends.trainers.run_io import MetricsLog

Callback = Callable[[OnPolicyTrainer, dict], None]


def train(trainer: OnPolicyTrainer, run_dir: str | Path, callback: Callback | None = None) -> Path:
    """Train until ``cfg.frames`` (continuing from ``trainer.iteration`` when resumed).

    ``callback(trainer, metrics)`` runs after every iteration; it may add entries to
    ``metrics`` before they are logged. A trainer built with ``--sharing hetdps`` carries its
    HetDPS controller (``trainer.hetdps``): it runs after every update, before evaluation, and
    logs its rounds into ``run_dir`` (hetdps_rounds.jsonl, hetdps_round_*.npz).
    """
    cfg, run_dir = trainer.cfg, Path(run_dir)
    log = MetricsLog(run_dir / "metrics.csv", cfg.tensorboard, keep_until=trainer.iteration,
                     wandb_project=cfg.wandb_project if cfg.wandb else None, config=cfg.to_dict())
    total = cfg.iterations
    t0, f0 = time.perf_counter(), trainer.frames
    bar = tqdm(total=total * cfg.batch_frames, initial=trainer.frames, unit="frame", unit_scale=True,
               disable=not cfg.progress, desc=f"{cfg.algo} {cfg.sharing_resolved} {cfg.env}", dynamic_ncols=True)
    last_ret = float("nan")
    hetdps = getattr(trainer, "hetdps", None)
    if hetdps is not None:
        hetdps.attach_log(run_dir)
    try:
        while trainer.iteration < total:
            m = trainer.iterate()
            it = trainer.iteration
            if hetdps is not None:
                hetdps.after_update(it)
                m.update(hetdps.metrics())
            if (cfg.eval_interval and it % cfg.eval_interval == 0) or it == total:
                m.update(trainer.evaluate())
            if callback is not None:
                callback(trainer, m)
            m["wall_s"] = time.perf_counter() - t0
            m["layout"] = "-".join(map(str, trainer.layout))
            log.log(m)
            if not math.isnan(m["train_return"]):
                last_ret = m["train_return"]
            bar.update(cfg.batch_frames)
            post = {"ret": f"{last_ret:.3g}", "fps": f"{(trainer.frames - f0) / (time.perf_counter() - t0):.0f}"}
            if "eval_return" in m:
                post["eval"] = f"{m['eval_return']:.3g}"
            bar.set_postfix(post)
            if (cfg.checkpoint_interval and it % cfg.checkpoint_interval == 0) or it == total:
                save_checkpoint(trainer, run_dir)
        bar.close()
        log.summary()  # summary.json + a few lines: final / best eval return, frames, fps, layout
    finally:
        bar.close()
        log.close()
    return run_dir
