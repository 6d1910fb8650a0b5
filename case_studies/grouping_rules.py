"""Every grouping rule beyond the structure test, inside a calibration of true groups.

``group`` turns a matrix and its structure test into groups: Affinity Propagation, then a split of
clusters holding a pair the test calls different, then the *spread split* (sub-clusters more than
``SPREAD`` x the matrix's noise scale apart), then merges the test cannot tell apart. The
calibration's false-positive cases are homogeneous, so a rule that over-splits a true group inside
a heterogeneous team is never counted there. This counts, on teams with planted true groups
(unequal sizes included) and an env case, over >= 50 seeds each:

- over-split: some true group's agents end in more than one group;
- cross-merge: some found group holds agents of two true groups;

for the rules as they stand and without the spread split, on the *same* matrices (one quantify
per seed, default ``QuantifyConfig``, Meta-Het, model-free on planted pools as the calibration
runs them; the env case as ``hetero quantify`` runs it).

    python -m case_studies.grouping_rules --seeds 50      # ~25 min on one core

Results: ``case_studies/results/grouping_rules/`` (``runs.json``, ``table.md``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import numpy as np

import hetero.grouping as grouping
from case_studies.calibration import SAMPLES, ari
from case_studies.planted import planted_pool
from hetero.quantify import QuantifyConfig, quantify

OUT = Path(__file__).parent / "results" / "grouping_rules"
PLANTED = {  # name -> types of the agents (order shuffled per seed by planted_pool)
    "4 + 2": (0,) * 4 + (1,) * 2,
    "6 + 2": (0,) * 6 + (1,) * 2,
    "3 + 3": (0,) * 3 + (1,) * 3,
    "2 + 2 + 2": (0, 0, 1, 1, 2, 2),
    "4 + singleton": (0, 0, 0, 0, 1),
    "7/4/1": (0,) * 7 + (1,) * 4 + (2,),
}
EFFECTS = (0.4, 0.8)
ENVS = {"vmas_simple_tag 4 predators + 2 prey": ("vmas_simple_tag", dict(num_adversaries=4, num_good_agents=2))}
VARIANTS = ("as is", "without the spread split")


def errors(truth, labels) -> dict:
    truth, labels = np.asarray(truth), np.asarray(labels)
    over = any(len(set(labels[truth == t])) > 1 for t in set(truth.tolist()))
    cross = any(len(set(truth[labels == g])) > 1 for g in set(labels.tolist()))
    return {"over_split": bool(over), "cross_merge": bool(cross), "ari": ari(truth, labels),
            "groups": int(len(set(labels.tolist())))}


def variants(res, seed: int) -> dict:
    out = {"as is": grouping.group(res, seed=seed).labels}
    with mock.patch.object(grouping, "_split_spread", lambda d, labels, limit: labels):
        out["without the spread split"] = grouping.group(res, seed=seed).labels
    return out


def env_pool(name: str, kw: dict, seed: int):  # noqa: ANN201
    from hetero.cli import pool_shape
    from marl_backends.envs import make_env
    from marl_backends.envs.sampling import collect_pool

    num_envs, steps = pool_shape(SAMPLES)
    env = make_env(name, num_envs=num_envs, seed=seed, **kw)
    return collect_pool(env, steps=steps, behaviour="heuristic", seed=seed, progress=False), env.spec.groups, env.model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = [(f"planted {name}, effect {e}", ("planted", types, e)) for name, types in PLANTED.items() for e in EFFECTS]
    cases += [(name, ("env", *spec)) for name, spec in ENVS.items()]
    runs = []
    for case, spec in cases:
        if a.only and a.only not in case:
            continue
        for seed in range(a.seeds):
            if spec[0] == "planted":
                pool, truth = planted_pool(spec[1], spec[2], episodes=32, seed=seed)
                model = None
            else:
                pool, truth, model = env_pool(spec[1], spec[2], seed)
            res = quantify(pool, "meta", QuantifyConfig(seed=seed), model=model)
            for variant, labels in variants(res, seed).items():
                runs.append({"case": case, "seed": seed, "variant": variant, "p_value": res.p_value,
                             "labels": list(labels), **errors(truth, labels)})
            print(case, seed, {r["variant"]: (r["groups"], r["over_split"], r["cross_merge"]) for r in runs[-2:]},
                  flush=True)
        (out / "runs.json").write_text(json.dumps(runs, indent=1))
    lines = ["| case | seeds | rules | over-split | cross-merge | recovered (ARI >= 0.9) |", "|---|---|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in runs):
        for variant in VARIANTS:
            r = [x for x in runs if x["case"] == case and x["variant"] == variant]
            pct = lambda key: f"{100 * np.mean([x[key] for x in r]):.0f}%"  # noqa: E731
            lines.append(f"| {case} | {len(r)} | {variant} | {pct('over_split')} | {pct('cross_merge')} | "
                         f"{100 * np.mean([x['ari'] >= 0.9 for x in r]):.0f}% |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
