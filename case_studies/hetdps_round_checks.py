"""What HetDPS rounds decide beyond PMS, with the default round settings (no per-task tuning).

    python -m case_studies.hetdps_round_checks --part beyond      # spread v0/v2/v4 + VMAS built-ins
    python -m case_studies.hetdps_round_checks --part identical   # identical agents sharing one network
    python -m case_studies.hetdps_round_checks --part table       # tables from the saved JSON

- beyond: MAPPO with ``--sharing hetdps:nps`` (a round every 10 updates from update 1, 40 updates
  of 4000 frames) on tasks whose groups differ in one function only: spread_v2 (max speed),
  spread_v4 (reward), spread_v0 (nothing), and VMAS built-ins with physically identical agents
  (no model access: the model-free measure). Every round's grouping is compared with the env's
  groups (ARI) where the env has them; the round logs say which measure each round used.
- identical: agents of one type sharing one network (FPS), a round after every update, in our
  MAPPO trainer and in the BenchMARL callback: the fraction of rounds whose structure test
  proposes more than one group (before confirmation), i.e. the rounds' false-positive rate at
  their own pool sizes.

Results: ``case_studies/results/hetdps_round_checks/`` (``beyond.json``, ``identical.json``,
``tables.md``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from case_studies.calibration import ari
from hetero.quantify import QuantifyConfig

OUT = Path(__file__).parent / "results" / "hetdps_round_checks"
BEYOND = ("spread_v2", "spread_v4", "spread_v0", "vmas_balance", "vmas_transport")
IDENTICAL = ("vmas_balance", "vmas_transport")  # our trainer: model-free Meta-Het on (s_i, a_i, S^E)
# BenchMARL: PMS with one colour of 6 agents (S^E from the scenario's info) and VMAS navigation (no S^E:
# the fallback condition, under which its agents are exchangeable)
IDENTICAL_BENCHMARL = ("pms_6a_1c", "navigation")


def _save(path: Path, key: str, value) -> None:  # noqa: ANN001
    done = json.loads(path.read_text()) if path.exists() else {}
    done[key] = value
    path.write_text(json.dumps(done, indent=1))


def _rounds(history, truth) -> list[dict]:  # noqa: ANN001
    out = []
    for r in history:
        proposed = r.info.get("found", r.info.get("proposed", list(r.labels)))  # the round's own grouping
        out.append({"update": r.update, "labels": list(r.labels), "proposed": proposed,
                    "groups_proposed": len(set(proposed)), "p_value": r.info.get("p_value"),
                    "measure": r.info.get("measure"), "seconds": r.seconds, "error": r.info.get("error"),
                    "ari": None if truth is None else ari(truth, proposed)})
    return out


def train_rounds(env: str, seed: int, sharing: str, interval: int, updates: int, num_envs: int = 20) -> dict:
    """One MAPPO run with HetDPS at the default round settings; its rounds."""
    import torch

    from marl_backends.trainers.checkpoint import make_trainer
    from marl_backends.trainers.config import TrainConfig
    from marl_backends.trainers.loop import train

    torch.set_num_threads(1)
    cfg = TrainConfig(env=env, algo="mappo", sharing=sharing, hetdps_interval=interval, seed=seed,
                      frames=updates * num_envs * 200, num_envs=num_envs, eval_interval=0, checkpoint_interval=0,
                      progress=False)
    trainer = make_trainer(cfg)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        train(trainer, d)
    truth = trainer.env.spec.groups
    return {"env": env, "seed": seed, "sharing": sharing, "interval": interval, "updates": updates,
            "wall_s": time.perf_counter() - t0, "truth": None if truth is None else list(truth),
            "final_layout": list(trainer.layout), "rounds": _rounds(trainer.hetdps.history, truth)}


def benchmarl_rounds(task: str, seed: int, iterations: int, frames_per_batch: int = 2000) -> dict:
    """BenchMARL MAPPO, one shared network (GroupedMlp FPS), a round every iteration, on ``task``: a
    VMAS built-in's name, or ``pms_<N>a_1c`` (our PMS with one colour of N agents)."""
    import torch
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import VmasTask
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    from marl_backends.benchmarl import GroupedMlpConfig
    from marl_backends.benchmarl.callbacks import HetDPSCallback
    from marl_backends.benchmarl.tasks import pms_task

    torch.set_num_threads(1)
    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch = iterations * frames_per_batch, frames_per_batch
    cfg.on_policy_n_envs_per_worker, cfg.on_policy_n_minibatch_iters, cfg.on_policy_minibatch_size = 20, 2, 1000
    cfg.evaluation, cfg.render, cfg.loggers, cfg.create_json, cfg.checkpoint_at_end = False, False, [], False, False
    het = HetDPSCallback(interval=1, pool_rollouts=1, local_state_dims=4, plots=False, seed=seed)
    mlp = MlpConfig(num_cells=[64, 64], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        cfg.save_folder = d
        bm_task = (pms_task((int(task[4:].split("a")[0]),)) if task.startswith("pms_")
                   else getattr(VmasTask, task.upper()).get_from_yaml())
        exp = Experiment(task=bm_task, algorithm_config=MappoConfig.get_from_yaml(),
                         model_config=GroupedMlpConfig(num_cells=[64, 64], activation="tanh", init_layout="fps", seed=seed),
                         critic_model_config=mlp, seed=seed, config=cfg, callbacks=[het])
        exp.run()
    return {"env": f"benchmarl {task}", "seed": seed, "wall_s": time.perf_counter() - t0,
            "final_layout": list(het.trainer.layout), "rounds": _rounds(het.hetdps.history, None)}


def part_beyond(seeds: int, path: Path) -> None:
    for env in BEYOND:
        for seed in range(seeds):
            r = train_rounds(env, seed, "hetdps:nps", interval=10, updates=40)
            _save(path, f"{env} s{seed}", r)
            print(f"beyond {env} s{seed}: groups per round {[x['groups_proposed'] for x in r['rounds']]} "
                  f"ARI {[x['ari'] for x in r['rounds']]} final {r['final_layout']}", flush=True)


def part_identical(seeds: int, path: Path, updates: int, iterations: int) -> None:
    for env in IDENTICAL:
        for seed in range(seeds):
            r = train_rounds(env, seed, "hetdps:fps", interval=1, updates=updates)
            _save(path, f"ours {env} s{seed}", r)
            print(f"identical ours {env} s{seed}: {sum(x['groups_proposed'] > 1 for x in r['rounds'])} of "
                  f"{len(r['rounds'])} rounds proposed a split", flush=True)
    for task in IDENTICAL_BENCHMARL:
        try:
            for seed in range(seeds):
                r = benchmarl_rounds(task, seed, iterations)
                _save(path, f"benchmarl {task} s{seed}", r)
                print(f"identical benchmarl {task} s{seed}: {sum(x['groups_proposed'] > 1 for x in r['rounds'])} of "
                      f"{len(r['rounds'])} rounds proposed a split", flush=True)
        except ImportError as e:
            print(f"benchmarl {task}: skipped ({e})")


def _found(x: dict) -> int:
    """Groups the round's test found (a round without structure, p >= alpha, found one)."""
    return 1 if x["p_value"] is not None and x["p_value"] >= QuantifyConfig.alpha else x["groups_proposed"]


def table(out: Path) -> str:
    lines = []
    beyond = out / "beyond.json"
    if beyond.exists():
        lines += ["## Beyond PMS: every round, default settings, from NPS", "",
                  "| run | measure | groups found per round | ARI per round vs env groups | final groups |",
                  "|---|---|---|---|---|"]
        for key, r in json.loads(beyond.read_text()).items():
            rs = r["rounds"]
            aris = ", ".join("n/a" if x["ari"] is None else f"{x['ari']:.2f}" for x in rs)
            measure = rs[0]["measure"] if rs else ""
            lines.append(f"| {key} | {measure} | {', '.join(str(_found(x)) for x in rs)} | {aris} | "
                         f"{len(set(r['final_layout']))} |")
    ident = out / "identical.json"
    if ident.exists():
        runs = json.loads(ident.read_text())
        lines += ["", "## Identical agents sharing one network: rounds that propose a split", "",
                  "| run | measure | rounds | proposed a split | applied (confirmed) splits |", "|---|---|---|---|---|"]
        total = split = 0
        for key, r in runs.items():
            rs = r["rounds"]
            n_split = sum(_found(x) > 1 for x in rs)
            applied = len(set(r["final_layout"])) > 1
            total, split = total + len(rs), split + n_split
            lines.append(f"| {key} | {rs[0]['measure'] if rs else ''} | {len(rs)} | {n_split} | "
                         f"{'yes' if applied else 'no'} |")
        lines += ["", f"All: {split} of {total} rounds proposed a split ({split / max(total, 1):.1%})."]
    text = "\n".join(lines) + "\n"
    (out / "tables.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="all", choices=["all", "beyond", "identical", "table"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--updates", type=int, default=40, help="identical: our trainer's updates (a round after each)")
    ap.add_argument("--iterations", type=int, default=30, help="identical: BenchMARL iterations (a round after each)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.part in ("all", "beyond"):
        part_beyond(a.seeds, a.out / "beyond.json")
    if a.part in ("all", "identical"):
        part_identical(a.seeds, a.out / "identical.json", a.updates, a.iterations)
    print(table(a.out))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
