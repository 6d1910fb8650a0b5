"""Meta-Het from trained policies' behaviour, early vs late in training (issue: heuristic stand-in).

    python -m case_studies.trained_behaviour --env pms_15a_3c --frames 160000
    python -m case_studies.trained_behaviour --env spread_v4 --frames 100000

Trains MAPPO (FPS, one seed) with a checkpoint every ``--checkpoint-interval`` iterations unless
``--run`` already holds such a run, then fills a fresh sample pool with each checkpoint's own
policies (``hetero quantify --behaviour checkpoint:FILE``, default settings) and records what
Meta-Het finds: the groups, their ARI against the env's groups, the structure test's p-value and
the between/within ratio, next to the checkpoint's evaluation return. Results go to
``case_studies/results/trained_behaviour/<env>_<sharing>.json`` and a Markdown table beside it.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from hetero.cli import main as hetero

OUT = Path(__file__).parent / "results" / "trained_behaviour"


def eval_returns(run: Path) -> dict[int, float]:
    """iteration -> evaluation return (the rows of metrics.csv that have one)."""
    with open(run / "metrics.csv") as f:
        return {int(r["iteration"]): float(r["eval_return"]) for r in csv.DictReader(f) if r.get("eval_return")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="pms_15a_3c")
    ap.add_argument("--sharing", default="fps")
    ap.add_argument("--frames", type=int, default=160000)
    ap.add_argument("--checkpoint-interval", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", default=None, help="an existing `hetero train` run folder (skips training)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--no-reweight", action="store_true", help="the plain swap test (hetero quantify --no-reweight)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    run = Path(args.run) if args.run else out / "runs" / f"{args.env}_{args.sharing}_s{args.seed}"
    if not (run / "checkpoints").exists():
        code = hetero(["train", "--env", args.env, "--algo", "mappo", "--sharing", args.sharing, "--frames",
                       str(args.frames), "--seed", str(args.seed), "--checkpoint-interval",
                       str(args.checkpoint_interval), "--eval-interval", str(args.checkpoint_interval),
                       "--out-dir", str(run.parent), "--run-name", run.name, "--no-progress", "--no-tensorboard"])
        if code:
            raise SystemExit(code)
    returns = eval_returns(run)
    rows = []
    for ckpt in sorted((run / "checkpoints").glob("iter_*.pt")):
        it = int(ckpt.stem.split("_")[1])
        qdir = out / "quantify" / f"{args.env}_{args.sharing}_s{args.seed}_iter{it}"
        code = hetero(["quantify", "--env", args.env, "--behaviour", f"checkpoint:{ckpt}", "--seed", str(args.seed),
                       "--out", str(qdir), "--overwrite", "--no-plots", *(["--no-reweight"] if args.no_reweight else [])])
        if code:
            raise SystemExit(code)
        meta = json.loads((qdir / "summary.json").read_text())["kinds"]["meta"]
        rows.append({"iteration": it, "eval_return": returns.get(it), "groups": meta["groups"],
                     "n_groups": meta["n_groups"], "ari": meta.get("ari_vs_env_groups"), "p_value": meta["p_value"],
                     "ratio": meta["ratio"]})
        print(rows[-1], flush=True)
    result = {"env": args.env, "sharing": args.sharing, "seed": args.seed, "run": str(run), "rows": rows}
    (out / f"{args.env}_{args.sharing}.json").write_text(json.dumps(result, indent=1))
    lines = [f"| iteration | eval return | groups | ARI vs env groups | p-value | between/within |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        er = "" if r["eval_return"] is None else f"{r['eval_return']:.1f}"
        ari = "" if r["ari"] is None else f"{r['ari']:.2f}"
        lines.append(f"| {r['iteration']} | {er} | {r['n_groups']} | {ari} | {r['p_value']:.2g} | {'inf' if r['ratio'] is None else format(r['ratio'], '.2f')} |")
    (out / f"{args.env}_{args.sharing}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
