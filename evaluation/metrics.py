"""Ranking metrics between proxy scores and ground-truth accuracies.

All functions take two equal-length sequences, ``scores`` (the proxy) and ``accuracy``
(the benchmark), where a higher score predicts a higher accuracy. Pairs in which either
value is NaN are left out; :func:`correlation_report` says how many.

* :func:`kendall_tau`: Kendall's tau-b (ties handled as scipy does).
* :func:`spearman_rho`, :func:`pearson_r`.
* :func:`precision_at_top`: the paper's P@TopK (Table 10, after Liu et al. 2020):
  ``#{(r < KM) and (n < KM)} / KM`` where r is an architecture's rank by score, n its rank
  by accuracy (0 = best), M the number of architectures and KM = max(1, round(K*M)): the
  fraction of the true top-K% that the proxy also puts in its top-K%. Ranks among equal
  values follow the input order.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["kendall_tau", "spearman_rho", "pearson_r", "precision_at_top", "finite_pairs", "correlation_report"]


def finite_pairs(scores: Sequence[float], accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays with every pair containing a NaN removed."""
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    if s.shape != a.shape or s.ndim != 1:
        raise ValueError(f"scores and accuracy must be 1-d and of equal length, got {s.shape} and {a.shape}")
    keep = ~(np.isnan(s) | np.isnan(a))
    return s[keep], a[keep]


def _too_few(s: np.ndarray) -> bool:
    return len(s) < 2 or np.all(s == s[0])


def kendall_tau(scores, accuracy) -> float:
    s, a = finite_pairs(scores, accuracy)
    if _too_few(s) or _too_few(a):
        return math.nan
    return float(stats.kendalltau(s, a).statistic)


def spearman_rho(scores, accuracy) -> float:
    s, a = finite_pairs(scores, accuracy)
    if _too_few(s) or _too_few(a):
        return math.nan
    return float(stats.spearmanr(s, a).statistic)


def pearson_r(scores, accuracy) -> float:
    s, a = finite_pairs(scores, accuracy)
    s = np.where(np.isinf(s), np.nan, s)
    s, a = finite_pairs(s, a)
    if _too_few(s) or _too_few(a):
        return math.nan
    return float(stats.pearsonr(s, a).statistic)


def _ranks_best_first(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(len(values))
    return ranks


def precision_at_top(scores, accuracy, fraction: float) -> float:
    """The paper's P@TopK for K = ``fraction`` (0.05 for P@Top5%)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    s, a = finite_pairs(scores, accuracy)
    m = len(s)
    if m == 0:
        return math.nan
    k = max(1, int(round(fraction * m)))
    r, n = _ranks_best_first(s), _ranks_best_first(a)
    return float(np.sum((r < k) & (n < k)) / k)


def correlation_report(scores, accuracy, top_fractions: Sequence[float] = (0.05, 0.10)) -> dict:
    """Kendall, Spearman, Pearson and P@Top-K% with the number of pairs used and dropped."""
    s = np.asarray(scores, dtype=float)
    fs, _ = finite_pairs(scores, accuracy)
    report = {
        "n": int(len(fs)),
        "n_dropped_nan": int(len(s) - len(fs)),
        "kendall_tau": kendall_tau(scores, accuracy),
        "spearman_rho": spearman_rho(scores, accuracy),
        "pearson_r": pearson_r(scores, accuracy),
    }
    for fraction in top_fractions:
        report[f"p_at_top{fraction * 100:g}%"] = precision_at_top(scores, accuracy, fraction)
    return report
