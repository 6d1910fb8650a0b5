"""fpb vs group under full sharing on pms_15a_3c: actor Adam steps and clip fraction per iteration."""
import torch
from marl_backends.trainers import TrainConfig, make_trainer
torch.set_num_threads(1)
for mode in ("group", "fpb"):
    for algo in ("happo",):
        cfg = TrainConfig(env="pms_15a_3c", algo=algo, sharing="fps", happo_shared=mode, frames=3 * 4000, progress=False,
                          tensorboard=False, seed=0)
        tr = make_trainer(cfg)
        rows = [tr.iterate() for _ in range(3)]
        print(mode, [(r["actor_steps"], round(r["clip_frac"], 4), round(r["approx_kl"], 5), round(r["train_return"], 2)) for r in rows], flush=True)
cfg = TrainConfig(env="pms_15a_3c", algo="mappo", sharing="fps", frames=3 * 4000, progress=False, tensorboard=False, seed=0)
tr = make_trainer(cfg)
rows = [tr.iterate() for _ in range(3)]
print("mappo", [(r["actor_steps"], round(r["clip_frac"], 4), round(r["approx_kl"], 5), round(r["train_return"], 2)) for r in rows])
