"""Figures for papers: distance heatmaps ordered by group, matrices across training, curves."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def group_order(labels: Sequence[int]) -> np.ndarray:
    """Agent indices sorted by group (stable, so agents keep their order inside a group)."""
    return np.argsort(np.asarray(labels), kind="stable")


DISTANCE_LABEL = "W2 distance"


def _vmax(matrix: np.ndarray, vmax: float | None) -> float:
    """Colour-scale top: the given value, else the largest finite entry, else 1 (an all-zero
    matrix keeps a 0..1 scale instead of matplotlib's singular -0.1..0.1)."""
    if vmax is not None:
        return float(vmax)
    finite = matrix[np.isfinite(matrix)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def draw_heatmap(ax, matrix: np.ndarray, labels: Sequence[int] | None = None, title: str = "", vmax=None):
    """One heatmap on ``ax``: agents ordered by group, white lines at group boundaries."""
    matrix = np.asarray(matrix, dtype=float)
    n = matrix.shape[0]
    labels = np.zeros(n, dtype=int) if labels is None else np.asarray(labels)
    order = group_order(labels)
    im = ax.imshow(matrix[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=_vmax(matrix, vmax))
    bounds = np.flatnonzero(np.diff(labels[order])) + 0.5
    for b in bounds:
        ax.axhline(b, color="white", lw=1.5)
        ax.axvline(b, color="white", lw=1.5)
    ticks = order if n <= 30 else order[:: max(1, n // 15)]
    pos = np.arange(n) if n <= 30 else np.arange(n)[:: max(1, n // 15)]
    ax.set_xticks(pos, [str(t) for t in ticks], fontsize=7, rotation=90)
    ax.set_yticks(pos, [str(t) for t in ticks], fontsize=7)
    ax.set_xlabel("agent (ordered by group)")
    ax.set_title(title, fontsize=10)
    if not np.any(matrix[np.isfinite(matrix)] > 0):
        ax.text(0.5, 0.5, "all distances 0", transform=ax.transAxes, ha="center", va="center", color="white",
                fontsize=8, bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "pad": 2})
    return im


def colorbar(fig, im, ax, label: str = DISTANCE_LABEL):
    """A labelled colour bar beside ``ax`` with at most 5 ticks in short notation."""
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label(label, fontsize=8)
    cb.locator = matplotlib.ticker.MaxNLocator(nbins=5)
    cb.formatter = matplotlib.ticker.FormatStrFormatter("%.3g")
    cb.update_ticks()
    cb.ax.tick_params(labelsize=7)
    return cb


def save_figure(fig, stem: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = stem.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def heatmap(matrix: np.ndarray, labels: Sequence[int] | None, title: str, stem: str | Path,
            formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """A stand-alone heatmap with a colour bar, written as ``stem.png`` / ``stem.pdf``."""
    n = matrix.shape[0]
    size = min(9.0, 3.0 + 0.15 * n)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), layout="constrained")
    im = draw_heatmap(ax, matrix, labels, title)
    colorbar(fig, im, ax, "heterogeneity distance (W2)")
    return save_figure(fig, stem, formats)


def matrix_panels(panels: Sequence[tuple[str, np.ndarray, Sequence[int] | None]], stem: str | Path,
                  formats: Sequence[str] = ("png", "pdf"), suptitle: str = "", ncols: int = 4,
                  cbar_label: str = DISTANCE_LABEL) -> list[Path]:
    """Heatmaps in rows of up to ``ncols``, each with its own labelled colour bar (the matrices of
    different kinds or rounds have different scales), e.g. Policy-Het and Meta-Het at update 500
    and 1500 (Fig. 4). Constrained layout keeps colour-bar labels clear of the next panel."""
    k = len(panels)
    rows = -(-k // max(1, ncols))
    cols = -(-k // rows)  # balanced rows: 6 panels at ncols=4 are 2 x 3, not 4 + 2
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows + (0.4 if suptitle else 0.0)),
                             squeeze=False, layout="constrained")
    for ax, (title, m, labels) in zip(axes.flat, panels):
        im = draw_heatmap(ax, m, labels, title)
        colorbar(fig, im, ax, cbar_label)
    for ax in list(axes.flat)[k:]:
        ax.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle)
    return save_figure(fig, stem, formats)


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], stem: str | Path, xlabel: str = "frames",
           ylabel: str = "mean episode reward", title: str = "", formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Learning curves: ``series`` maps a label to (x, y)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, stem, formats)


def group_timeline(updates: Sequence[int], layouts: Sequence[Sequence[int]], stem: str | Path,
                   formats: Sequence[str] = ("png", "pdf"), title: str = "",
                   start: Sequence[int] | None = None, marks: Sequence[str] | None = None) -> list[Path]:
    """Agent x round image of the network each agent uses after each regrouping round (HetDPS
    keeps matched networks' indices, so a colour staying put across rounds is the same network).

    ``start`` (the layout before the first round) adds a first column; ``marks`` puts a short
    note under a round's group count (e.g. "kept" for a round that found no structure)."""
    cols = ([list(start)] if start is not None else []) + [list(x) for x in layouts]
    names = (["start"] if start is not None else []) + [str(u) for u in updates]
    notes = ([""] if start is not None else []) + list(marks or [""] * len(updates))
    lab = np.asarray(cols, dtype=int).T  # [N, columns]
    n, r = lab.shape
    k = int(lab.max()) + 1
    fig, ax = plt.subplots(figsize=(min(13.0, 3.2 + 0.55 * r), min(8.0, 1.9 + 0.22 * n)), layout="constrained")
    cmap = plt.get_cmap("tab20", max(k, 1))
    ax.imshow(lab, aspect="auto", cmap=cmap, interpolation="nearest", vmin=-0.5, vmax=k - 0.5)
    if start is not None:
        ax.axvline(0.5, color="black", lw=1.5)
    step = max(1, r // 14)
    ax.set_xticks(np.arange(r)[::step], names[::step], fontsize=7)
    ax.set_yticks(np.arange(n), [str(i) for i in range(n)], fontsize=6 if n > 20 else 7)
    ax.set_xlabel("update of the regrouping round")
    ax.set_ylabel("agent")
    top = ax.secondary_xaxis("top")
    counts = [len(set(lab[:, j])) for j in range(r)]
    top.set_xticks(np.arange(r)[::step], [f"{g}" + (f"\n{m}" if m else "") for g, m in zip(counts, notes)][::step],
                   fontsize=7)
    top.set_xlabel("groups after the round", fontsize=8)
    if k <= 20:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=cmap(i), label=f"network {i}") for i in range(k)], fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title or "network of each agent across HetDPS rounds", fontsize=10)
    return save_figure(fig, stem, formats)


def evenly(items: Sequence, k: int) -> list:
    """Up to k items spread evenly from first to last."""
    if len(items) <= k:
        return list(items)
    return [items[int(round(i))] for i in np.linspace(0, len(items) - 1, k)]


def trailing_mean(y: np.ndarray, k: int) -> np.ndarray:
    """Trailing moving average over up to ``k`` points, ignoring NaNs (e.g. episodes not yet ended)."""
    out = np.empty_like(y, dtype=float)
    for i in range(len(y)):
        w = y[max(0, i - k + 1): i + 1]
        w = w[~np.isnan(w)]
        out[i] = w.mean() if len(w) else np.nan
    return out


def _band(ax, runs: list[tuple[np.ndarray, np.ndarray]], smooth: int, label: str, marker: str | None = None) -> None:
    """Mean over seeds (cut to the shortest) after a trailing mean over ``smooth`` points, with a
    +/- 1 std band when there is more than one seed."""
    runs = [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in runs if len(x)]
    if not runs:
        return
    n = min(len(x) for x, _ in runs)
    x = runs[0][0][:n]
    y = np.stack([trailing_mean(r[:n], smooth) for _, r in runs])
    with warnings.catch_warnings():  # points where no seed has a return yet stay NaN (a gap), silently
        warnings.simplefilter("ignore", RuntimeWarning)
        mu, sd = np.nanmean(y, 0), np.nanstd(y, 0)
    seeds = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
    line, = ax.plot(x, mu, label=label + seeds, marker=marker, markersize=3)
    if len(runs) > 1:
        ax.fill_between(x, mu - sd, mu + sd, alpha=0.2, color=line.get_color())


def _frames_axis(ax) -> None:
    ax.set_xlabel("env frames")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
    ax.grid(alpha=0.3)


def reward_bands(panels: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]], stem: str | Path,
                 smooth: int = 5, ylabel: str = "training episode return",
                 formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Reward curves, one panel per task: ``panels[task][label]`` is a list of (frames, returns),
    one per seed; each label is drawn as the mean over seeds with a +/- 1 std band, after a
    trailing mean over ``smooth`` points. Seeds are cut to the shortest run."""
    tasks = list(panels)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.3 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for label, runs in panels[task].items():
            _band(ax, runs, smooth, label)
        ax.set_title(task)
        _frames_axis(ax)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, stem, formats)


def train_eval_curves(runs: dict[str, list[dict[str, np.ndarray]]], stem: str | Path, smooth: int = 5,
                      title: str = "", formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Training return (left) and evaluation return (right) against env frames.

    ``runs[label]`` is a list of seeds, each a dict with ``frames``/``train`` (every iteration)
    and ``eval_frames``/``eval`` (evaluation points, may be empty). Training curves get a trailing
    mean over ``smooth`` iterations; evaluation points are drawn as measured (markers). Several
    seeds under one label are drawn as mean +/- 1 std."""
    has_eval = any(len(s.get("eval", ())) for seeds in runs.values() for s in seeds)
    fig, axes = plt.subplots(1, 2 if has_eval else 1, figsize=(10.5 if has_eval else 5.5, 3.8), squeeze=False,
                             sharey=True, layout="constrained")
    for label, seeds in runs.items():
        _band(axes[0][0], [(s["frames"], s["train"]) for s in seeds], smooth, label)
        if has_eval:
            _band(axes[0][1], [(s["eval_frames"], s["eval"]) for s in seeds], 1, label, marker="o")
    axes[0][0].set_ylabel("episode return")
    axes[0][0].set_title(f"training return (trailing mean of {smooth} iterations)" if smooth > 1 else "training return",
                         fontsize=10)
    if has_eval:
        axes[0][1].set_title("evaluation return (greedy policy)", fontsize=10)
    for ax in axes[0]:
        _frames_axis(ax)
    axes[0][-1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem, formats)
