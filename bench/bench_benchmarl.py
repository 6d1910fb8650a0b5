"""Like-for-like MAPPO against BenchMARL on VMAS balance: whole processes, back to back, one thread.

Both runs do the same work (BenchMARL 1.5.2's default on-policy settings, issue 11 item 5):
VMAS ``balance`` with BenchMARL's task arguments (4 agents, package mass 5, random package position,
100 steps), continuous actions, 6000 frames per batch from 60 envs (one 100-step episode each),
45 passes x ceil(6000/400) = 15 minibatches of 400 frames = 675 SGD steps per batch for the actor
and the critic alike (BenchMARL's ``on_policy_n_minibatch_iters: 45`` counts *passes*: see
``Experiment._collection_loop`` in ``benchmarl/experiment/experiment.py``), MLP 256x256 Tanh, lr 5e-5,
parameter sharing, no evaluation, no loggers. Each run is a fresh Python process with
OMP/MKL threads and ``torch.set_num_threads`` at ``--threads``; its wall time (imports, env and
network construction included) is measured from outside by the parent.

The update phase is then compared with the machine's single-thread matmul rate: the script
counts our update's FLOPs (``torch.utils.flop_counter`` over one batch's actor + critic update)
and times ``torch.addmm`` at the layer shapes the update multiplies.

Needs BenchMARL (``pip install -c constraints.txt -e '.[benchmarl]'``). Reproduce:
    python bench/bench_benchmarl.py                       # 12k frames, 1 thread, writes bench/results_benchmarl.json
    python bench/bench_benchmarl.py --frames 60000 --repeats 3
Children (run by the parent): ``--child benchmarl`` and ``--child flops``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMES_PER_BATCH, NUM_ENVS, MINIBATCH, PASSES, HIDDEN, LR = 6000, 60, 400, 45, (256, 256), 5e-5
N_MINIBATCHES = -(-FRAMES_PER_BATCH // MINIBATCH)  # 15
BALANCE_ARGS = "n_agents=4,package_mass=5,random_package_pos_on_line=true"  # BenchMARL's vmas/balance.yaml


def ours_argv(frames: int, threads: int, out_dir: str) -> list[str]:
    """`hetero train` doing BenchMARL's work (its clip 5, Adam eps 1e-6, GAE lambda 0.9, no entropy)."""
    return [sys.executable, "-m", "hetero.cli", "train", "--env", "vmas_balance", "--env-args", BALANCE_ARGS,
            "--continuous", "--algo", "mappo", "--sharing", "fps", "--num-envs", str(NUM_ENVS),
            "--rollout-steps", str(FRAMES_PER_BATCH // NUM_ENVS), "--num-minibatches", str(N_MINIBATCHES),
            "--ppo-epochs", str(PASSES), "--critic-minibatches", str(N_MINIBATCHES), "--critic-epochs", str(PASSES),
            "--hidden", ",".join(map(str, HIDDEN)), "--activation", "tanh", "--no-feature-norm", "--no-layer-norm",
            "--lr", str(LR), "--critic-lr", str(LR), "--adam-eps", "1e-6", "--max-grad-norm", "5",
            "--gae-lambda", "0.9", "--entropy-coef", "0", "--frames", str(frames), "--threads", str(threads),
            "--eval-interval", "0", "--eval-episodes", "1", "--checkpoint-interval", "0", "--no-progress",
            "--no-tensorboard", "--out-dir", out_dir, "--run-name", "ours", "--seed", "0"]


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env


def run_timed(argv: list[str], threads: int) -> tuple[float, float, str]:
    """Run a child process; return its wall time, its CPU time (user + sys) and its stdout.

    On a loaded machine the CPU time is the fairer number (it barely depends on how many other
    processes share the cores); on a quiet one with 1 thread the two agree."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    p = subprocess.run(argv, cwd=ROOT, env=child_env(threads), capture_output=True, text=True)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), p.stdout


# --- child: BenchMARL ------------------------------------------------------------------------------
try:  # BenchMARL pickles its callbacks, so the timer is a module-level class
    from benchmarl.experiment import Callback as _Callback
except ImportError:  # the parent reports the missing extra when the child fails
    _Callback = object


class UpdateTimer(_Callback):
    """BenchMARL's training phase: from on_batch_collected to on_train_end (one agent group)."""

    def __init__(self) -> None:
        super().__init__()
        self.update_s, self.update_cpu_s, self._t, self._c = 0.0, 0.0, 0.0, 0.0

    def on_batch_collected(self, batch) -> None:  # noqa: ANN001
        self._t, self._c = time.perf_counter(), time.process_time()

    def on_train_end(self, training_td, group: str) -> None:  # noqa: ANN001
        self.update_s += time.perf_counter() - self._t
        self.update_cpu_s += time.process_time() - self._c


def child_benchmarl(frames: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import VmasTask
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames = frames
    cfg.on_policy_collected_frames_per_batch = FRAMES_PER_BATCH
    cfg.on_policy_n_envs_per_worker = NUM_ENVS
    cfg.on_policy_n_minibatch_iters = PASSES
    cfg.on_policy_minibatch_size = MINIBATCH
    cfg.lr = LR
    cfg.evaluation, cfg.render, cfg.loggers, cfg.create_json = False, False, [], False
    cfg.checkpoint_interval, cfg.checkpoint_at_end = 0, False
    timer = UpdateTimer()
    with tempfile.TemporaryDirectory() as d:
        cfg.save_folder = d
        model = MlpConfig(num_cells=list(HIDDEN), layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
        exp = Experiment(task=VmasTask.BALANCE.get_from_yaml(), algorithm_config=MappoConfig.get_from_yaml(),
                         model_config=model, critic_model_config=model, seed=0, config=cfg, callbacks=[timer])
        n_agents = len(exp.group_map["agents"])
        exp.run()
    print(json.dumps({"frames": exp.total_frames, "update_s": timer.update_s, "update_cpu_s": timer.update_cpu_s,
                      "loop_s": exp.total_time,
                      "n_agents": n_agents, "threads": torch.get_num_threads()}))


# --- child: our update's FLOPs and the machine's matmul rate ----------------------------------------
def child_flops(threads: int) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    from marl_backends.trainers import TrainConfig, make_trainer

    cfg = TrainConfig(env="vmas_balance", env_args=BALANCE_ARGS, continuous=True, algo="mappo", sharing="fps",
                      num_envs=NUM_ENVS, rollout_steps=FRAMES_PER_BATCH // NUM_ENVS, num_minibatches=N_MINIBATCHES,
                      ppo_epochs=PASSES, critic_minibatches=N_MINIBATCHES, critic_epochs=PASSES, hidden=HIDDEN,
                      activation="tanh", feature_norm=False, layer_norm=False, lr=LR, critic_lr=LR,
                      frames=FRAMES_PER_BATCH, threads=threads, progress=False, tensorboard=False)
    tr = make_trainer(cfg)
    with FlopCounterMode(display=False) as fc:
        m = tr.iterate()  # rollout forward passes are < 1% of these FLOPs (6000 x 4 rows, forward only)
    flops = fc.get_total_flops()
    cpu = {"s": 0.0}  # CPU time of one more batch's actor + critic update, without the counter
    for name in ("update_actor", "update_critic"):
        def timed(*args, _f=getattr(tr, name), **kw):  # noqa: ANN002, ANN003, ANN202
            c0 = time.process_time()
            out = _f(*args, **kw)
            cpu["s"] += time.process_time() - c0
            return out
        setattr(tr, name, timed)
    m2 = tr.iterate()
    shapes = [(MINIBATCH * tr.spec.n_agents, HIDDEN[0], HIDDEN[1]), (MINIBATCH, HIDDEN[0], HIDDEN[1])]
    rates, cpu_rates = {}, {}
    for m_, k, n in shapes:
        a, b, c = torch.randn(m_, k), torch.randn(k, n), torch.randn(n)
        for _ in range(20):
            torch.addmm(c, a, b)
        reps, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < 2.0:
            torch.addmm(c, a, b)
            reps += 1
        rates[f"{m_}x{k}x{n}"] = 2 * m_ * k * n * reps / (time.perf_counter() - t0) / 1e9
        cpu_rates[f"{m_}x{k}x{n}"] = 2 * m_ * k * n * reps / (time.process_time() - c0) / 1e9
    print(json.dumps({"update_flops_per_batch": flops, "sgemm_gflops": rates, "sgemm_gflops_cpu_time": cpu_rates,
                      "update_cpu_s": cpu["s"], "update_s": m2["update_s"], "threads": torch.get_num_threads(),
                      "iterate_update_s_under_counter": m["update_s"]}))


def metrics_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=12_000, help="frames per run (a multiple of 6000)")
    p.add_argument("--threads", type=int, default=1, help="torch / OMP / MKL threads in both processes")
    p.add_argument("--repeats", type=int, default=1, help="back-to-back pairs (even repeats: BenchMARL first; odd: ours first)")
    p.add_argument("--label", default="", help="free text stored with the results (e.g. 'contended: 8 users, 2 cores')")
    p.add_argument("--out", default=str(Path(__file__).with_name("results_benchmarl.json")))
    p.add_argument("--child", choices=["benchmarl", "flops"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child == "benchmarl":
        return child_benchmarl(a.frames, a.threads)
    if a.child == "flops":
        return child_flops(a.threads)
    if a.frames % FRAMES_PER_BATCH:
        p.error(f"--frames must be a multiple of {FRAMES_PER_BATCH} (one batch), got {a.frames}")
    me = [sys.executable, str(Path(__file__).resolve())]
    pairs = []
    for r in range(a.repeats):  # odd repeats run ours first, so a drift in machine load hits both sides
        runs = {}
        for side in (("benchmarl", "ours") if r % 2 == 0 else ("ours", "benchmarl")):
            if side == "benchmarl":
                wall_b, cpu_b, out_b = run_timed(me + ["--child", "benchmarl", "--frames", str(a.frames),
                                                       "--threads", str(a.threads)], a.threads)
                runs["benchmarl"] = json.loads(out_b.strip().splitlines()[-1])
            else:
                with tempfile.TemporaryDirectory() as d:
                    wall_o, cpu_o, _ = run_timed(ours_argv(a.frames, a.threads, d), a.threads)
                    rows = metrics_rows(Path(d) / "ours" / "metrics.csv")
        bm = runs["benchmarl"]
        upd_o = sum(float(x["update_s"]) for x in rows)
        pair = {"repeat": r, "benchmarl_wall_s": round(wall_b, 2), "ours_wall_s": round(wall_o, 2),
                "ratio_benchmarl_over_ours": round(wall_b / wall_o, 3),
                "benchmarl_cpu_s": round(cpu_b, 2), "ours_cpu_s": round(cpu_o, 2), "cpu_ratio": round(cpu_b / cpu_o, 3),
                "benchmarl_update_s": round(bm["update_s"], 2), "ours_update_s": round(upd_o, 2),
                "benchmarl_update_cpu_s": round(bm["update_cpu_s"], 2),
                "benchmarl_frames": bm["frames"], "ours_frames": int(rows[-1]["frames"]), "benchmarl_agents": bm["n_agents"]}
        print(json.dumps(pair), flush=True)
        pairs.append(pair)
    _, _, out_f = run_timed(me + ["--child", "flops", "--threads", str(a.threads)], a.threads)
    fl = json.loads(out_f.strip().splitlines()[-1])
    batches = a.frames // FRAMES_PER_BATCH
    best = max(fl["sgemm_gflops"].values())
    ours_upd = min(x["ours_update_s"] for x in pairs) / batches
    bm_upd = min(x["benchmarl_update_s"] for x in pairs) / batches
    roof = {"update_tflop_per_batch": round(fl["update_flops_per_batch"] / 1e12, 3),
            "sgemm_gflops": {k: round(v, 1) for k, v in fl["sgemm_gflops"].items()},
            "ours_update_s_per_batch": round(ours_upd, 2), "benchmarl_update_s_per_batch": round(bm_upd, 2),
            "ours_update_gflops": round(fl["update_flops_per_batch"] / ours_upd / 1e9, 1),
            "ours_fraction_of_sgemm": round(fl["update_flops_per_batch"] / ours_upd / 1e9 / best, 3),
            "benchmarl_fraction_of_sgemm (same FLOPs assumed)": round(fl["update_flops_per_batch"] / bm_upd / 1e9 / best, 3)}
    if "update_cpu_s" in fl:  # the same on CPU time (update and sgemm both), robust to a loaded machine
        best_cpu = max(fl["sgemm_gflops_cpu_time"].values())
        bm_cpu = min(x["benchmarl_update_cpu_s"] for x in pairs) / batches
        roof.update({"sgemm_gflops_cpu_time": {k: round(v, 1) for k, v in fl["sgemm_gflops_cpu_time"].items()},
                     "ours_update_cpu_s_per_batch": round(fl["update_cpu_s"], 2),
                     "benchmarl_update_cpu_s_per_batch": round(bm_cpu, 2),
                     "ours_fraction_of_sgemm_cpu_time": round(fl["update_flops_per_batch"] / fl["update_cpu_s"] / 1e9 / best_cpu, 3),
                     "benchmarl_fraction_of_sgemm_cpu_time": round(fl["update_flops_per_batch"] / bm_cpu / 1e9 / best_cpu, 3)})
    print(json.dumps(roof), flush=True)
    walls_b = [x["benchmarl_wall_s"] for x in pairs]
    walls_o = [x["ours_wall_s"] for x in pairs]
    cpus_b, cpus_o = [x["benchmarl_cpu_s"] for x in pairs], [x["ours_cpu_s"] for x in pairs]
    summary = {"ratio_min_walls": round(min(walls_b) / min(walls_o), 3),
               "ratio_min_cpu": round(min(cpus_b) / min(cpus_o), 3)}
    print(f"BenchMARL {min(walls_b):.1f} s, hetero {min(walls_o):.1f} s (whole processes, {a.frames} frames, "
          f"{a.threads} thread(s)): ratio {summary['ratio_min_walls']:.2f}x; CPU time {min(cpus_b):.1f} s vs "
          f"{min(cpus_o):.1f} s: ratio {summary['ratio_min_cpu']:.2f}x; our update at "
          f"{roof['ours_update_gflops']:.0f} GFLOP/s = {roof['ours_fraction_of_sgemm']:.0%} of single-thread sgemm "
          f"({best:.0f} GFLOP/s)", flush=True)
    if "ours_fraction_of_sgemm_cpu_time" in roof:
        print(f"on CPU time: our update {roof['ours_fraction_of_sgemm_cpu_time']:.0%}, BenchMARL's "
              f"{roof['benchmarl_fraction_of_sgemm_cpu_time']:.0%} of sgemm "
              f"({max(roof['sgemm_gflops_cpu_time'].values()):.0f} GFLOP/s per CPU-second)", flush=True)
    import torch

    meta = {"torch": torch.__version__, "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": a.threads, "frames": a.frames, "label": a.label,
            "command": " ".join(["python", "bench/bench_benchmarl.py"] + sys.argv[1:])}
    try:
        import benchmarl
        import torchrl

        meta.update(benchmarl=benchmarl.__version__, torchrl=torchrl.__version__)
    except ImportError:
        pass
    Path(a.out).write_text(json.dumps({"meta": meta, "pairs": pairs, "roofline": roof, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
