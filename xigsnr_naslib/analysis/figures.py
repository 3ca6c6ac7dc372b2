"""The leaderboard's figures (PNG, matplotlib; optional extra ``plot``).

* :func:`correlation_bars`: Kendall tau and Spearman rho of every proxy against one target,
  with their bootstrap intervals as whiskers, best proxy on top; the proxies this project
  computes are labelled in bold.
* :func:`score_scatter`: one proxy's score against accuracy, each architecture coloured by
  its accuracy rank (left), and the same architectures as score rank against accuracy rank
  (right; the picture that Kendall and Spearman summarise).

Figures are drawn with matplotlib's object API on the Agg canvas: nothing touches pyplot's
global state or the user's backend.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats


__all__ = ["correlation_bars", "score_scatter"]

_TARGET_TITLES = {"test_accuracy": "test accuracy", "naslib_val": "NASLib validation accuracy"}


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the leaderboard's figures need matplotlib: pip install 'xigsnr-naslib[plot]' "
                          "(or build without figures)") from exc
    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _interval(frame, key: str, metric: str) -> tuple[float, float]:
    value = frame.at[key, metric]
    low = frame.at[key, f"{metric}_low"] if f"{metric}_low" in frame else np.nan
    high = frame.at[key, f"{metric}_high"] if f"{metric}_high" in frame else np.nan
    return (max(value - low, 0.0) if np.isfinite(low) else 0.0, max(high - value, 0.0) if np.isfinite(high) else 0.0)


def correlation_bars(board, target: str, path: str | Path) -> Path:
    """Horizontal bars of Kendall tau and Spearman rho per proxy, whiskers = bootstrap interval."""
    frame = board.metrics[target]
    keys = board.ranking(target)[::-1]                 # best at the top of the picture
    n = len(keys)
    fig = _figure(8.0, 1.6 + 0.34 * n)
    ax = fig.subplots()
    y = np.arange(n)
    height = 0.38
    for offset, metric, colour, label in ((height / 2, "kendall_tau", "#1f77b4", "Kendall τ"),
                                          (-height / 2, "spearman_rho", "#ff7f0e", "Spearman ρ")):
        values = frame.loc[keys, metric].to_numpy(dtype=float)
        errors = np.array([_interval(frame, k, metric) for k in keys]).T
        ax.barh(y + offset, np.nan_to_num(values), height=height, color=colour, label=label,
                xerr=errors, error_kw={"elinewidth": 1.0, "capsize": 2.0, "ecolor": "#333333"})
    labels = [f"{board.proxies[k][0]}  ({board.proxies[k][1]})" for k in keys]
    ax.set_yticks(y, labels)
    for row, (tick, key) in enumerate(zip(ax.get_yticklabels(), keys)):
        if board.proxies[key][1] == "computed":
            tick.set_fontweight("bold")
            ax.axhspan(row - 0.48, row + 0.48, color="#fff3c4", zorder=0)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_ylim(-0.6, n - 0.4)
    low = min(0.0, float(np.nanmin(frame.loc[keys, [f"{m}_low" if f"{m}_low" in frame else m
                                                     for m in ("kendall_tau", "spearman_rho")]].to_numpy())))
    ax.set_xlim(min(-0.05, low - 0.05), 1.0)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(f"rank correlation with {board.dataset} {_TARGET_TITLES.get(target, target)}")
    level = board.settings.get("level", 0.95)
    whiskers = (f"whiskers: {level:.0%} bootstrap interval, {board.settings.get('n_boot')} resamples"
                if board.settings.get("n_boot") else "no bootstrap intervals")
    protocol = board.settings.get("protocol") or {}
    computed = (f"shaded: computed here ({protocol.get('n_batches')} × {protocol.get('batch_size')} images)"
                if any(source == "computed" for _, source in board.proxies.values()) else "")
    ax.set_title(f"{board.space} / {board.dataset}: {board.n_archs:,} architectures, the same for every proxy\n"
                 + "; ".join(part for part in (whiskers, computed) if part), fontsize=9)
    ax.legend(loc="lower right", fontsize=8, frameon=True)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    return path


def score_scatter(board, key: str, target: str, path: str | Path) -> Path:
    """Score vs accuracy and score rank vs accuracy rank of proxy ``key``, coloured by accuracy rank."""
    scores = board.scores[key].to_numpy(dtype=float)
    accuracy = board.scores[target].to_numpy(dtype=float)
    n = len(scores)
    acc_rank = stats.rankdata(-accuracy, method="min")          # 1 = the most accurate
    score_rank = stats.rankdata(-scores, method="min")
    order = np.argsort(-acc_rank)                              # draw the best last, on top
    fig = _figure(11.0, 4.6)
    left, right = fig.subplots(1, 2)
    colour = {"cmap": "viridis_r", "vmin": 1, "vmax": n, "s": 14, "edgecolors": "none"}
    # a few broken networks (NAS-Bench-201's 10% ones) would squash the rest: they are drawn as
    # triangles on the lower edge, and counted
    q_low, q_high = np.nanquantile(accuracy, [0.02, 1.0])
    floor = q_low - 0.15 * (q_high - q_low)
    below = accuracy < floor
    shown = order[~below[order]]
    points = left.scatter(scores[shown], accuracy[shown], c=acc_rank[shown], **colour)
    if below.any():
        left.scatter(scores[below], np.full(int(below.sum()), floor), c=acc_rank[below], marker="v",
                     label=f"{int(below.sum())} below {floor:.1f}%, drawn at the edge", **colour)
        left.set_ylim(bottom=floor - 0.02 * (q_high - floor))
        left.legend(loc="lower right", fontsize=8)
    positive = scores[np.isfinite(scores)]
    if len(positive) and positive.min() > 0 and positive.max() / positive.min() > 100:
        left.set_xscale("log")
    name = board.proxies[key][0]
    target_title = _TARGET_TITLES.get(target, target)
    left.set_xlabel(f"{name} score" + (" (log scale)" if left.get_xscale() == "log" else ""))
    left.set_ylabel(f"{target_title} (%)")
    tau = board.metrics[target].at[key, "kendall_tau"]
    rho = board.metrics[target].at[key, "spearman_rho"]
    left.set_title(f"{name} vs {target_title}: τ = {tau:.3f}, ρ = {rho:.3f}", fontsize=10)
    right.scatter(score_rank[order], acc_rank[order], c=acc_rank[order], **colour)
    from matplotlib.ticker import MaxNLocator

    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.plot([1, n], [1, n], color="#888888", linewidth=0.8, linestyle="--", label="perfect ranking")
    right.set_xlim(n + 0.5, 0.5)
    right.set_ylim(n + 0.5, 0.5)
    right.set_xlabel(f"rank by {name} (1 = highest score)")
    right.set_ylabel("rank by accuracy (1 = best)")
    right.set_title(f"ranks of the {n:,} architectures", fontsize=10)
    right.legend(loc="lower right", fontsize=8)
    for ax in (left, right):
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
    bar = fig.colorbar(points, ax=[left, right], fraction=0.03, pad=0.02)
    bar.set_label("accuracy rank (1 = best)")
    bar.ax.invert_yaxis()
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{name} on {board.space} / {board.dataset}: {n:,} architectures", fontsize=10)
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    return path
