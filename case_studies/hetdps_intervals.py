"""Interval insensitivity of HetDPS (paper Table 6): final average reward per quantification interval.

Trains MAPPO + HetDPS (Meta-Het, default settings) on each PMS task with each interval and writes
``OUT/table6_intervals.md`` and ``OUT/summary.json`` (final training return, groups found, ARI
against the colours, rounds). The paper's intervals are 20, 100, 200, 1000 and 2000 updates over
runs of many thousand updates; an interval longer than the run means no round at all (the
initial paradigm throughout), so at a reduced budget use intervals scaled to the run length.

Paper intervals (hours per run on CPU):
    .venv/bin/python case_studies/hetdps_intervals.py --intervals 20 100 200 1000 2000 --frames 10000000
Scaled-down (this machine):
    .venv/bin/python case_studies/hetdps_intervals.py --tasks pms_15a_3c --seeds 0 --frames 160000 \
        --intervals 5 10 20 --init nps --jobs 2
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hetdps_pms import COLOURS, run_all, summarise


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(COLOURS))
    p.add_argument("--intervals", nargs="+", type=int, default=[20, 100, 200, 1000, 2000])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=10_000_000)
    p.add_argument("--init", default="nps", choices=["fps", "nps"], help="initial paradigm of HetDPS")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default="case_studies/results/hetdps_intervals")
    p.add_argument("--runs-dir", default="runs/hetdps_intervals")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    method = f"hetdps-{a.init}"
    keys = [(t, i, s) for t in a.tasks for i in a.intervals for s in a.seeds]
    folders = run_all([(t, method, s, a.frames, a.runs_dir, i, None, f"_i{i}") for t, i, s in keys], a.jobs)
    summary = [{"task": t, "interval": i, "seed": s, **summarise(f, t)} for (t, i, s), f in zip(keys, folders)]
    (out / "summary.json").write_text(json.dumps({"args": vars(a), "runs": summary}, indent=1))
    lines = ["| interval (updates) | " + " | ".join(a.tasks) + " |", "|---" * (len(a.tasks) + 1) + "|"]
    for i in a.intervals:
        cells = []
        for t in a.tasks:
            rs = [r for r in summary if r["task"] == t and r["interval"] == i]
            mean = sum(r["final_train_return"] for r in rs) / len(rs)
            cells.append(f"{mean:.2f} ({'/'.join(str(r['groups']) for r in rs)} groups)")
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    (out / "table6_intervals.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
