"""HetDPS overhead: training speed with HetDPS at its default interval vs the same trainer with FPS.

Paper Table 5 reports 0.712x of FPS speed for HetDPS; the target here is >= 0.95x on pms_15a_3c.
Two MAPPO trainers (same seed, default batch 20 envs x 200 steps) run in one process, one update
each in turn, so load from other jobs on the machine hits both alike: FPS, and HetDPS (Meta-Het,
default interval / pool / round size, starting from FPS). Each side's time is its ``iterate()``
plus, for HetDPS, gathering its sample pool and its regrouping rounds. Prints the ratio
(FPS time / HetDPS time = HetDPS speed relative to FPS), the mean round cost and the rounds'
group counts, and writes bench/results_hetdps.json. ``--peer`` (default ``groups:env``, the layout
HetDPS reaches on PMS) is timed in the same loop, so the rounds' cost and the cost of training
several networks instead of one are told apart.

Reproduce (CPU, ~4 min on a quiet 2-core machine):
    .venv/bin/python bench/bench_hetdps.py --updates 40 --interval 10 --init nps   # the PMS sweep's setting:
                                                     # 160k frames, rounds at updates 1, 11, 21, 31
    .venv/bin/python bench/bench_hetdps.py                     # 100 updates at the default interval
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from marl_backends.trainers import TrainConfig, make_trainer


def main() -> None:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="pms_15a_3c")
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--interval", type=int, default=defaults.hetdps_interval)
    p.add_argument("--kind", default=defaults.hetdps_kind)
    p.add_argument("--init", default="fps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/results_hetdps.json")
    p.add_argument("--peer", default="groups:env",
                   help="a static layout timed alongside (HetDPS's layout without rounds; '' for none)")
    p.add_argument("--load", default="", help="what else ran on the machine (recorded in the results)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    common = dict(env=a.env, algo="mappo", seed=a.seed, frames=a.updates * defaults.batch_frames, progress=False,
                  tensorboard=False, eval_interval=0, checkpoint_interval=0, threads=a.threads)
    fps = make_trainer(TrainConfig(sharing="fps", **common))
    het = make_trainer(TrainConfig(sharing="hetdps", hetdps_init=a.init, hetdps_kind=a.kind,
                                   hetdps_interval=a.interval, **common))
    peer = make_trainer(TrainConfig(sharing=a.peer, **common)) if a.peer else None
    t_fps = t_het = t_peer = 0.0
    for u in range(1, a.updates + 1):
        t0 = time.perf_counter()
        fps.iterate()
        t1 = time.perf_counter()
        het.iterate()
        het.hetdps.after_update(u, last=a.updates)
        t2 = time.perf_counter()
        if peer is not None:
            peer.iterate()
        t_fps, t_het, t_peer = t_fps + t1 - t0, t_het + t2 - t1, t_peer + time.perf_counter() - t2
        print(f"update {u}: fps {t1 - t0:.2f}s hetdps {t2 - t1:.2f}s layout groups {len(set(het.layout))}", flush=True)
    rounds = het.hetdps.history
    round_s = [r.seconds for r in rounds]
    res = {
        "env": a.env, "updates": a.updates, "interval": a.interval, "kind": a.kind, "init": a.init,
        "batch_frames": defaults.batch_frames, "fps_s": round(t_fps, 2), "hetdps_s": round(t_het, 2),
        "speed_ratio": round(t_fps / t_het, 4), "fps_update_s": round(t_fps / a.updates, 3),
        "peer": a.peer, "peer_s": round(t_peer, 2) if peer is not None else None,
        "speed_vs_peer": round(t_peer / t_het, 4) if peer is not None else None,
        "peer_vs_fps": round(t_fps / t_peer, 4) if peer is not None else None,
        "rounds": len(rounds), "round_s": [round(s, 2) for s in round_s],
        "groups_per_round": [r.n_groups for r in rounds],
        "p_value_per_round": [r.info.get("p_value") for r in rounds],
        "measure": rounds[0].info.get("measure") if rounds else None,
        "predicted_ratio_from_round_cost": round(1 / (1 + (sum(round_s) / max(len(round_s), 1)) /
                                                     (a.interval * t_fps / a.updates)), 4),
        "meta": {"torch": torch.__version__, "threads": a.threads, "python": platform.python_version(),
                 "load": a.load, "loadavg_at_end": list(__import__("os").getloadavg())},
    }
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    print(f"HetDPS speed / FPS speed = {res['speed_ratio']:.3f}x (target >= 0.95x; paper Table 5: 0.712x)")
    if peer is not None:
        print(f"HetDPS speed / {a.peer} speed = {res['speed_vs_peer']:.3f}x (the rounds' cost); "
              f"{a.peer} / FPS = {res['peer_vs_fps']:.3f}x (the layout's cost)")


if __name__ == "__main__":
    main()
