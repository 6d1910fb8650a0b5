"""The four-task PMS comparison from one or more `hetero sweep` folders, with every round checked.

    python -m case_studies.hetdps_pms_report --sweep runs/sweeps/hetdps_pms_rerun \\
        --sweep runs/sweeps/hetdps_pms_nps --prior case_studies/results/hetdps_pms_sweep/v0.2.0/runs.csv

Runs from the sweep folders take precedence; ``--prior`` supplies (env, method) rows the sweeps did
not run (methods whose code path did not change, e.g. FPS, from an earlier sweep's ``runs.csv``).
Writes into ``--out``: ``comparison.md`` (final eval return, mean +/- sd over seeds, and the
checks: mean(HetDPS) - mean(NPS) > max(sd) and mean(HetDPS) >= mean(best) - sd(best), best = the
better of MADPS and the colour groups), ``rounds.csv`` (every round of every regrouping run: groups,
ARI against the env's colours, p-value, measure, seconds) and ``final.csv`` (per run).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from case_studies.calibration import ari
from marl_backends.envs.pms import PMS_TASKS

METHODS = ("fps", "nps", "fps-id", "seps", "madps", "groups", "hetdps")
TITLES = {"fps": "FPS", "nps": "NPS", "fps-id": "FPS+id", "seps": "SePS", "madps": "MADPS",
          "groups": "colour groups", "hetdps": "HetDPS"}
TASKS = ("pms_15a_3c", "pms_30a_3c", "pms_15a_5c", "pms_30a_5c")


def colours(env: str) -> list[int]:
    return [g for g, size in enumerate(PMS_TASKS[env.removeprefix("pms_")]) for _ in range(size)]


def sweep_runs(folder: Path) -> list[dict]:
    """Every finished run of a sweep folder: env, method, seed, final eval return, rounds."""
    out = []
    for run in sorted((folder / "runs").iterdir()):
        summary = run / "summary.json"
        if not summary.exists():
            continue
        cfg = json.loads((run / "config.json").read_text())
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        evals = [float(r["eval_return"]) for r in rows if r.get("eval_return") not in (None, "")]
        env, rest = cfg["env"], run.name[len(cfg["env"]) + 1:]
        method, seed = rest.rsplit("_s", 1)
        rounds = []
        log = run / "hetdps_rounds.jsonl"
        if log.exists():
            for line in log.read_text().splitlines():
                r = json.loads(line)
                proposed = r["info"].get("proposed", r["labels"])
                rounds.append({"env": env, "method": method, "seed": int(seed), "update": r["update"],
                               "groups": len(set(r["labels"])), "ari": round(ari(colours(env), r["labels"]), 3),
                               "proposed_ari": round(ari(colours(env), proposed), 3),
                               "p_value": r["info"].get("p_value"), "measure": r["info"].get("measure", ""),
                               "seconds": round(r["seconds"], 2)})
        out.append({"env": env, "method": method, "seed": int(seed), "final": evals[-1], "best": max(evals),
                    "groups_end": len(set(rows[-1]["layout"].split("-"))), "rounds": rounds,
                    "source": folder.name})
    return out


def prior_runs(path: Path) -> list[dict]:
    return [{"env": r["env"], "method": r["method"], "seed": int(r["seed"]), "final": float(r["final"]),
             "best": float(r["best"]), "groups_end": int(r["groups"]), "rounds": [], "source": str(path)}
            for r in csv.DictReader(open(path))]


def ms(xs: list[float]) -> tuple[float, float]:
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


def comparison(runs: list[dict]) -> str:
    by = {}
    for r in runs:
        by.setdefault((r["env"], r["method"]), []).append(r["final"])
    methods = [m for m in METHODS if any(k[1] == m for k in by)]
    lines = ["| task | " + " | ".join(TITLES[m] for m in methods) + " |", "|---|" + "---|" * len(methods)]
    checks = ["", "| task | HetDPS - NPS | > max(sd)? | best of MADPS / colour groups | HetDPS >= best - sd(best)? |",
              "|---|---|---|---|---|"]
    for env in TASKS:
        cells = []
        for m in methods:
            xs = by.get((env, m))
            cells.append("" if not xs else "{:.1f} ± {:.1f} (n={})".format(*ms(xs), len(xs)))
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
        if (env, "hetdps") in by and (env, "nps") in by:
            h, n = ms(by[(env, "hetdps")]), ms(by[(env, "nps")])
            gap = h[0] - n[0]
            cands = [(ms(by[(env, m)]), TITLES[m]) for m in ("madps", "groups") if (env, m) in by]
            (b, bsd), bname = max(cands, key=lambda c: c[0][0]) if cands else ((float("nan"), 0.0), "-")
            checks.append(f"| {env} | {gap:+.1f} | {'yes' if gap > max(h[1], n[1]) else 'no'} | {bname} "
                          f"{b:.1f} ± {bsd:.1f} | {'yes' if h[0] >= b - bsd else 'no'} |")
    return "\n".join(lines + checks) + "\n"


def round_summary(runs: list[dict]) -> str:
    lines = ["| task | method | seed | groups per round | ARI vs colours per round |", "|---|---|---|---|---|"]
    for r in runs:
        if r["rounds"]:
            lines.append(f"| {r['env']} | {TITLES[r['method']]} | {r['seed']} | "
                         + ", ".join(str(x["groups"]) for x in r["rounds"]) + " | "
                         + ", ".join(f"{x['ari']:.2f}" for x in r["rounds"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", action="append", type=Path, required=True, help="a `hetero sweep` folder (repeatable)")
    ap.add_argument("--prior", type=Path, default=None, help="runs.csv of an earlier sweep for methods not rerun")
    ap.add_argument("--prior-methods", default="fps,fps-id,nps",
                    help="methods taken from --prior (code paths unchanged since it ran)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hetdps_pms_sweep")
    a = ap.parse_args(argv)
    runs = [r for folder in a.sweep for r in sweep_runs(folder)]
    have = {(r["env"], r["method"]) for r in runs}
    if a.prior is not None:
        keep = set(a.prior_methods.split(","))
        runs += [r for r in prior_runs(a.prior) if r["method"] in keep and (r["env"], r["method"]) not in have]
    runs.sort(key=lambda r: (TASKS.index(r["env"]), METHODS.index(r["method"]), r["seed"]))
    a.out.mkdir(parents=True, exist_ok=True)
    text = ("## Final eval return (mean ± sd over seeds)\n\n" + comparison(runs)
            + "\n## Every round of every regrouping run\n\n" + round_summary(runs))
    (a.out / "comparison.md").write_text(text)
    with open(a.out / "rounds.csv", "w", newline="") as f:
        rows = [x for r in runs for x in r["rounds"]]
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    with open(a.out / "final.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["env", "method", "seed", "final", "best", "groups_end", "source"])
        w.writeheader()
        w.writerows({k: r[k] for k in w.fieldnames} for r in runs)
    print(text)


if __name__ == "__main__":
    main()
