"""HAPPO ``--happo-shared fpb`` vs ``group`` (and MAPPO) under full sharing: actor Adam steps,
clip fraction and approximate KL per iteration (first 3 iterations, pms_15a_3c, defaults).

    python -m case_studies.fpb_steps > case_studies/results/fpb_steps.txt
"""
import torch

from marl_backends.trainers import TrainConfig, make_trainer


def run(algo: str, mode: str = "group", iterations: int = 3) -> list[tuple]:
    cfg = TrainConfig(env="pms_15a_3c", algo=algo, sharing="fps", happo_shared=mode, frames=iterations * 4000,
                      progress=False, tensorboard=False, seed=0)
    tr = make_trainer(cfg)
    rows = [tr.iterate() for _ in range(iterations)]
    return [(r["actor_steps"], round(r["clip_frac"], 4), round(r["approx_kl"], 5), round(r["train_return"], 2)) for r in rows]


if __name__ == "__main__":
    torch.set_num_threads(1)
    print("per iteration: (actor Adam steps, clip fraction, approx KL, train return)")
    for mode in ("group", "fpb"):
        print(f"happo {mode}", run("happo", mode), flush=True)
    print("mappo", run("mappo"))
