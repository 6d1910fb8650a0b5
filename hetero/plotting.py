"""Figures for papers: distance heatmaps ordered by group, matrices across training, curves."""
from __future__ import annotations

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


def draw_heatmap(ax, matrix: np.ndarray, labels: Sequence[int] | None = None, title: str = "", vmax=None):
    """One heatmap on ``ax``: agents ordered by group, white lines at group boundaries."""
    n = matrix.shape[0]
    labels = np.zeros(n, dtype=int) if labels is None else np.asarray(labels)
    order = group_order(labels)
    im = ax.imshow(matrix[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=vmax)
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
    return im


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
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = draw_heatmap(ax, matrix, labels, title)
    fig.colorbar(im, ax=ax, label="heterogeneity distance (W2)")
    return save_figure(fig, stem, formats)


def matrix_panels(panels: Sequence[tuple[str, np.ndarray, Sequence[int] | None]], stem: str | Path,
                  formats: Sequence[str] = ("png", "pdf"), suptitle: str = "") -> list[Path]:
    """Several heatmaps side by side, e.g. Policy-Het and Meta-Het at update 500 and 1500 (Fig. 4)."""
    k = len(panels)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k + 0.8, 3.6), squeeze=False)
    for ax, (title, m, labels) in zip(axes[0], panels):
        im = draw_heatmap(ax, m, labels, title)
        fig.colorbar(im, ax=ax, fraction=0.046)
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
                   formats: Sequence[str] = ("png", "pdf"), title: str = "") -> list[Path]:
    """Agent x round image of the network each agent uses (HetDPS keeps matched networks' indices,
    so a colour staying put across rounds is the same network)."""
    lab = np.asarray(layouts, dtype=int).T  # [N, rounds]
    n, r = lab.shape
    fig, ax = plt.subplots(figsize=(min(12.0, 2.0 + 0.5 * r), min(8.0, 1.5 + 0.22 * n)))
    cmap = plt.get_cmap("tab20", max(int(lab.max()) + 1, 1))
    ax.imshow(lab, aspect="auto", cmap=cmap, interpolation="nearest", vmin=-0.5, vmax=lab.max() + 0.5)
    step = max(1, r // 12)
    counts = [len(set(lab[:, j])) for j in range(r)]
    ax.set_xticks(np.arange(r)[::step], [f"{u}\n{g}g" for u, g in list(zip(updates, counts))[::step]], fontsize=7)
    ax.set_yticks(np.arange(n), [str(i) for i in range(n)], fontsize=6 if n > 20 else 7)
    ax.set_xlabel("update of the regrouping round / groups after it")
    ax.set_ylabel("agent")
    ax.set_title(title or "network of each agent across rounds", fontsize=10)
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
            if not runs:
                continue
            n = min(len(x) for x, _ in runs)
            x = np.asarray(runs[0][0][:n], dtype=float)
            y = np.stack([trailing_mean(np.asarray(r[:n], dtype=float), smooth) for _, r in runs])
            mu, sd = np.nanmean(y, 0), np.nanstd(y, 0)
            ax.plot(x, mu, label=label)
            ax.fill_between(x, mu - sd, mu + sd, alpha=0.2)
        ax.set_title(task)
        ax.set_xlabel("env frames")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, stem, formats)
