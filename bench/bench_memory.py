"""Peak memory of ``hetero train`` / ``hetero quantify`` / a replay buffer against ``marl_backends.memory``'s estimate.

Reproduce (CPU; each case is a fresh process, the peak is its ``ru_maxrss``):
    .venv/bin/python bench/bench_memory.py                    # all cases, writes bench/results_memory.json
    .venv/bin/python bench/bench_memory.py --cases train-spread

Measured = peak RSS of the case minus the peak RSS of the same command at the smallest size (1 env,
1 step / 16 samples / 1 transition), i.e. the growth the estimate describes (imports, networks and
the interpreter excluded). The estimate must lie within 2x of it (``tests/trainers/test_memory.py``
checks the recorded numbers).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

TRAIN = ["--rollout-steps", "{T}", "--num-envs", "{E}", "--frames", "{F}", "--eval-interval", "0", "--eval-episodes",
         "2", "--checkpoint-interval", "0", "--no-progress", "--no-tensorboard", "--threads", "1"]
CASES = {  # name -> (kind, settings, smallest settings)
    "train-spread": ("train", {"env": "spread_v4", "E": 2000, "T": 50}, {"env": "spread_v4", "E": 1, "T": 1}),
    "train-pms": ("train", {"env": "pms_15a_3c", "E": 400, "T": 50}, {"env": "pms_15a_3c", "E": 1, "T": 1}),
    "quantify-spread": ("quantify", {"env": "spread_v4", "S": 200_000}, {"env": "spread_v4", "S": 16}),
    "quantify-pms": ("quantify", {"env": "pms_15a_3c", "S": 50_000}, {"env": "pms_15a_3c", "S": 16}),
    "replay-spread": ("replay", {"env": "spread_v4", "E": 10, "C": 2_000_000}, {"env": "spread_v4", "E": 10, "C": 1}),
    "replay-pms": ("replay", {"env": "pms_15a_3c", "E": 10, "C": 500_000}, {"env": "pms_15a_3c", "E": 10, "C": 1}),
}

PEAK = "import resource, json; print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
REPLAY = """
import torch
from marl_backends.envs import make_env
from marl_backends.offpolicy.buffer import ReplayBuffer
s = make_env({env!r}, num_envs={E}).spec
b = ReplayBuffer({C}, {E}, s.n_agents, s.obs_dim, s.state_dim, s.local_state_dim, s.action_dim, 0.99, 10)
for name in ("obs", "next_obs", "state", "next_state", "local_state", "next_local_state", "action", "reward"):
    getattr(b, name).fill_(1.0)
for name in ("avail", "next_avail", "alive"):
    b._mask(name)
b.size = b.t_cap
sd = b.state_dict()
"""


def _code(kind: str, p: dict, out: str) -> str:
    if kind == "replay":
        return REPLAY.format(**p) + PEAK
    if kind == "train":
        flags = [f.format(T=p["T"], E=p["E"], F=p["T"] * p["E"]) for f in TRAIN]
        argv = ["train", "--env", p["env"], *flags, "--out-dir", out]
    else:
        argv = ["quantify", "--env", p["env"], "--samples", str(p["S"]), "--epochs", "1", "--train-samples", "200",
                "--eval-samples", "100", "--no-plots", "--quiet", "--out", out + "/q"]
    return f"from hetero.cli import main\nassert main({argv!r}) == 0\n" + PEAK


def peak(kind: str, p: dict) -> int:
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, "-c", _code(kind, p, out)], capture_output=True, text=True)
    line = next((x for x in r.stdout.splitlines() if x.startswith("PEAK")), None)
    if r.returncode or line is None:
        raise RuntimeError(f"{kind} {p}: exit {r.returncode}\n{r.stderr[-2000:]}")
    return int(line.split()[1])


def estimate(kind: str, p: dict) -> int:
    from marl_backends import memory
    from marl_backends.envs import make_env
    from hetero.cli import pool_shape

    s = memory.Shapes.of(make_env(p["env"], num_envs=1))
    if kind == "train":
        return memory.train_bytes(s, p["E"], p["T"])
    if kind == "quantify":
        return memory.quantify_bytes(s, *pool_shape(p["S"]))
    return memory.replay_bytes(s, p["C"], p["E"], 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results_memory.json"))
    args = ap.parse_args()
    rows = {}
    for name in args.cases.split(","):
        kind, p, small = CASES[name]
        grown = peak(kind, p) - peak(kind, small)
        est = estimate(kind, p)
        rows[name] = {"kind": kind, "settings": p, "measured_bytes": grown, "estimate_bytes": est,
                      "ratio": round(est / grown, 3)}
        print(f"{name:16s} measured {grown / 2**20:8.1f} MiB  estimate {est / 2**20:8.1f} MiB  "
              f"ratio {est / grown:.2f}", flush=True)
    Path(args.out).write_text(json.dumps({"machine": platform.platform(), "cases": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
