"""``hetero sweep report``: tables and figures of a sweep's run folders.

Train sweeps, per grid point without its seed (mean +/- sd over seeds, sd with ddof 1):
final and best evaluation return (``[report] metric``, default eval_return), frames until it
first reaches ``[report] threshold`` (seeds that never do are counted, not averaged), and the
final number of groups. Files in the report folder:
- ``report.md`` and ``summary.csv`` (per grid point), ``runs.csv`` (per run);
- ``speed.md`` (frames per wall second of each run, between metrics rows, normalised to the sweep's
  ``fps`` method where there is one: paper Table 5; on a shared machine it measures the load);
- ``rewards.png`` / ``.pdf``: training return against frames, mean +/- sd over seeds
  (:func:`hetero.plotting.reward_bands`), one panel per env;
- ``timelines/NAME.png``: the HetDPS group timeline of every regrouping run.
Quantify sweeps: per kind, the number of groups, between/within ratio and ARI against the env's
groups, mean +/- sd over seeds.
Everything derives from the run folders, so the report of a sweep equals the report of the same
runs trained one by one with ``hetero train``.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from marl_backends.sweep.spec import BARE, RunSpec, SweepSpec
from marl_backends.sweep.status import frame_rate
from marl_backends.trainers.run_io import atomic_write_text, read_metrics


def _num(x) -> float:  # noqa: ANN001
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def run_summary(run_dir: Path, metric: str, threshold: float | None) -> dict | None:
    """Final / best ``metric``, frames to ``threshold``, final groups and speed of one train run."""
    if not (run_dir / "metrics.csv").exists():
        return None
    rows = read_metrics(run_dir)
    if not rows:
        return None
    key = metric if any(not math.isnan(_num(r.get(metric))) for r in rows) else "train_return"
    pts = [(_num(r["frames"]), _num(r.get(key))) for r in rows if not math.isnan(_num(r.get(key)))]
    reach = next((f for f, v in pts if threshold is not None and v >= threshold), None)
    layout = str(rows[-1].get("layout", ""))
    df, ds = frame_rate(rows)
    return {"frames": int(_num(rows[-1]["frames"])), "metric": key, "final": pts[-1][1] if pts else float("nan"),
            "best": max(v for _, v in pts) if pts else float("nan"), "frames_to_threshold": reach,
            "groups": len(set(layout.split("-"))) if layout else None,
            "frames_per_s": df / ds if ds > 0 else float("nan")}


def _ms(xs: list[float], fmt: str = ".1f") -> str:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:{fmt}}"
    return f"{np.mean(xs):{fmt}} ± {np.std(xs, ddof=1):{fmt}}"


def _groups(spec: SweepSpec) -> dict[tuple, list[RunSpec]]:
    out: dict[tuple, list[RunSpec]] = {}
    for r in spec.runs:
        out.setdefault(r.group, []).append(r)
    return out


def _label(group: tuple, skip: tuple[str, ...] = ()) -> str:
    return " ".join(str(v) if k in BARE else f"{k}={v}" for k, v in group if k not in skip) or "all"


def _write_csv(path: Path, rows: list[dict]) -> None:
    import io

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def report_train(spec: SweepSpec, out: Path, figures: bool = True) -> list[Path]:
    rep = spec.report
    runs = {r.name: run_summary(spec.runs_dir / r.name, rep.metric, rep.threshold) for r in spec.runs}
    axes = [k for k, _ in spec.runs[0].group] if spec.runs else []
    per_run = [{**dict(r.point), "run": r.name, **{k: v for k, v in (runs[r.name] or {}).items() if k != "frames_per_s"}}
               for r in spec.runs]
    table, lines = [], []
    thr = rep.threshold is not None
    head = [*axes, "seeds", "frames", f"final {rep.metric}", f"best {rep.metric}"] + (
        [f"frames to {rep.threshold:g}"] if thr else []) + ["groups at the end"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group, members in _groups(spec).items():
        ss = [runs[m.name] for m in members if runs[m.name] is not None]
        reached = [s["frames_to_threshold"] for s in ss if s["frames_to_threshold"] is not None]
        row = {**dict(group), "seeds": len(ss), "frames": _ms([s["frames"] for s in ss], ".0f"),
               "final": _ms([s["final"] for s in ss]), "best": _ms([s["best"] for s in ss])}
        if thr:
            row["frames_to_threshold"] = f"{_ms(reached, '.0f')} ({len(reached)}/{len(ss)} reached)"
        row["groups"] = ", ".join(str(s["groups"]) for s in ss)
        table.append(row)
        lines.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# Sweep {spec.name}", "", f"Sweep file: `{spec.source}`; one row per grid point, its seeds averaged.", "",
          f"Mean ± sd over seeds (sd with ddof 1). `final` is the last {rep.metric} of each run, `best` its maximum"
          + (f"; `frames to {rep.threshold:g}` the first frame count at which {rep.metric} reached it." if thr else "."),
          "", *lines, ""]
    missing = [n for n, s in runs.items() if s is None]
    if missing:
        md += [f"Not finished or not started ({len(missing)}): " + ", ".join(missing), ""]
    atomic_write_text(out / "report.md", "\n".join(md))
    _write_csv(out / "summary.csv", table)
    _write_csv(out / "runs.csv", per_run)
    written = [out / "report.md", out / "summary.csv", out / "runs.csv", _speed(spec, runs, out)]
    if figures:
        written += _figures(spec, out)
    return written


def _speed(spec: SweepSpec, runs: dict, out: Path) -> Path:
    base = {}
    for r in spec.runs:
        p = dict(r.point)
        if p.get("method") == "fps" and runs[r.name]:
            base.setdefault(p.get("env"), []).append(runs[r.name]["frames_per_s"])
    lines = ["| run | frames/s | normalised to FPS |", "|---|---|---|"]
    for r in spec.runs:
        s = runs[r.name]
        if s:
            b = base.get(dict(r.point).get("env"))
            ratio = f"{s['frames_per_s'] / np.mean(b):.3f}x" if b else "n/a"
            lines.append(f"| {r.name} | {s['frames_per_s']:.0f} | {ratio} |")
    atomic_write_text(out / "speed.md", "Measured wall-clock speed; on a shared machine it measures the load too.\n\n"
                      + "\n".join(lines) + "\n")
    return out / "speed.md"


def _figures(spec: SweepSpec, out: Path) -> list[Path]:
    from hetero.plotting import group_timeline, reward_bands

    panels: dict[str, dict[str, list]] = {}
    for group, members in _groups(spec).items():
        env = dict(group).get("env", dict(members[0].opts).get("env", spec.name))
        curves = []
        for m in members:
            if (spec.runs_dir / m.name / "metrics.csv").exists():
                rows = read_metrics(spec.runs_dir / m.name)
                curves.append((np.array([_num(r["frames"]) for r in rows]), np.array([_num(r["train_return"]) for r in rows])))
        if curves:
            panels.setdefault(str(env), {})[_label(group, ("env",))] = curves
    written = reward_bands(panels, out / "rewards", smooth=spec.report.smooth) if panels else []
    for r in spec.runs:
        log = spec.runs_dir / r.name / "hetdps_rounds.jsonl"
        if log.exists():
            rounds = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
            if rounds:
                written += group_timeline([x["update"] for x in rounds], [x["labels"] for x in rounds],
                                          out / "timelines" / r.name, formats=("png",), title=r.name)
    return written


def report_quantify(spec: SweepSpec, out: Path) -> list[Path]:
    per_run, table = [], []
    for group, members in _groups(spec).items():
        by_kind: dict[str, list[dict]] = {}
        for m in members:
            f = spec.runs_dir / m.name / "summary.json"
            if f.exists():
                for kind, e in json.loads(f.read_text())["kinds"].items():
                    by_kind.setdefault(kind, []).append(e)
                    per_run.append({**dict(m.point), "run": m.name, "kind": kind, "n_groups": e["n_groups"],
                                    "ratio": e["ratio"], "ari": e.get("ari_vs_env_groups")})
        for kind, es in by_kind.items():
            table.append({**dict(group), "kind": kind, "seeds": len(es),
                          "groups": ", ".join(str(e["n_groups"]) for e in es),
                          "between/within": _ms([_num(e["ratio"]) for e in es], ".2f"),
                          "ARI vs env groups": _ms([_num(e.get("ari_vs_env_groups")) for e in es], ".2f")})
    out.mkdir(parents=True, exist_ok=True)
    head = list(table[0]) if table else []
    md = [f"# Sweep {spec.name}", "", f"Sweep file: `{spec.source}`; mean ± sd over seeds.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
          *("| " + " | ".join(str(v) for v in row.values()) + " |" for row in table), ""]
    atomic_write_text(out / "report.md", "\n".join(md))
    _write_csv(out / "summary.csv", table)
    _write_csv(out / "runs.csv", per_run)
    return [out / "report.md", out / "summary.csv", out / "runs.csv"]


def write_report(spec: SweepSpec, out: str | Path | None = None, figures: bool = True) -> list[Path]:
    out = Path(out) if out else spec.out / "report"
    return report_train(spec, out, figures) if spec.command == "train" else report_quantify(spec, out)
