"""Learning check: MAPPO / HAPPO on MaMuJoCo HalfCheetah 2x3 with envs that run on across iterations.

1000-step episodes, 200-step rollouts: before the envs ran on, every iteration restarted the
episodes, so training saw only their first 200 steps and ``train_return`` was NaN throughout.
Runs (HARL App. K defaults otherwise, 1 torch thread; SEED = 0, 1, ...)::

    hetero train --env mamujoco_halfcheetah_2x3 --algo mappo|happo --num-envs 10 --rollout-steps 200 \\
        --frames 1000000 --eval-interval 25 --eval-episodes 5 --checkpoint-interval 50 --threads 1 \\
        --seed SEED --out-dir OUT --run-name halfcheetah_2x3_ALGO_sSEED --no-progress --no-tensorboard
    python -m case_studies.onpolicy_mamujoco_check OUT

``case_studies/results/onpolicy_mamujoco_1m/`` holds seeds 0-2 of both at 1M frames (the run
folders' config.json and metrics.csv; ~4-7 min per run at 2500-4200 frames/s on one thread);
``case_studies/results/onpolicy_mamujoco/`` the first 60k-frame check (``--frames 60000
--eval-interval 5 --checkpoint-interval 30``, seeds 0-1).

The second line plots ``train_return`` (last 10 finished episodes) and the deterministic
``eval_return`` as mean +/- sd over seeds (``hetero.plotting.reward_bands``) into OUT and writes
``OUT/summary.md``: per run, the first iteration with a finite train_return, whether it stays
finite after that, and the returns at the first and last finished episodes.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from hetero.plotting import reward_bands
from marl_backends.trainers.run_io import read_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder holding the run folders halfcheetah_2x3_ALGO_sSEED")
    out = ap.parse_args().out
    train: dict[str, list] = {}
    evals: dict[str, list] = {}
    lines = ["| run | iterations | frames | first finite train_return (iteration) | finite after | "
             "train_return first -> last | eval_return first -> last |", "|---|---:|---:|---:|---|---|---|"]
    for run in sorted(p for p in out.iterdir() if (p / "metrics.csv").exists()):
        rows = read_metrics(run)
        algo = run.name.split("_")[-2].upper()
        fr = [r["frames"] for r in rows]
        tr = [r["train_return"] for r in rows]
        first = next((i for i, x in enumerate(tr) if math.isfinite(x)), None)
        train.setdefault(algo, []).append((fr[first:], tr[first:]) if first is not None else ([], []))
        ev = [(r["frames"], r["eval_return"]) for r in rows if isinstance(r.get("eval_return"), float)
              and math.isfinite(r["eval_return"])]
        evals.setdefault(algo, []).append(([f for f, _ in ev], [e for _, e in ev]))
        stays = first is not None and all(math.isfinite(x) for x in tr[first:])
        lines.append(f"| {run.name} | {len(rows)} | {int(fr[-1])} | {int(rows[first]['iteration']) if first is not None else '-'} | "
                     f"{'yes' if stays else 'no'} | {tr[first]:.1f} -> {tr[-1]:.1f} | {ev[0][1]:.1f} -> {ev[-1][1]:.1f} |")
    reward_bands({"HalfCheetah 2x3: train_return": train}, out / "train_return_bands", smooth=1)
    reward_bands({"HalfCheetah 2x3: eval_return": evals}, out / "eval_return_bands", smooth=1,
                 ylabel="deterministic eval return (5 episodes)")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
