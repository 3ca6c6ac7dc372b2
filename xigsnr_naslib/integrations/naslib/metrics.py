"""NASLib's zero-cost evaluation metrics, by NASLib's own definitions.

NASLib reports a zero-cost proxy's quality in ``scores.json`` under fixed keys, computed by
``compute_scores(ytest, test_pred)`` with the helpers ``p_at_tb_k`` and ``minmax_n_at_k``
(``naslib/utils/zerocost.py`` on the Develop branch, ``naslib/utils/utils.py`` on the
zerocost branch; the formulas are the same on both). :func:`compute_scores` here returns
the same keys with the same values, written from those definitions (no NASLib code is
used). With ``y`` the accuracies, ``p`` the predictions (NASLib's scores: ``ZeroCost.query``
has already turned NaN and +-inf into -1e8), ``n`` the number of architectures:

* ``kendalltau``, ``spearman``: ``scipy.stats.kendalltau(y, p)`` (tau-b, ties counted as
  scipy does) and ``scipy.stats.spearmanr(y, p)`` (average ranks); NaN when either side is
  constant or ``n < 2``. ``kt_2dec``/``kt_1dec``: the same tau with ``p`` rounded to 2/1
  decimals (``numpy.round``).
* ``pearson``: ``|r|`` of ``numpy.corrcoef`` (the absolute value: a proxy that ranks
  backwards scores as well as one that ranks forwards).
* ``mae``: ``mean(|p - y|)``; ``rmse``: ``sqrt(mean((p - y)**2))`` (NASLib calls
  scikit-learn's ``mean_squared_error(squared=False)``, the same number).
* ``precision_K`` (K = 10, 20): with ``t_y`` = ``sorted(y)[max(-n, -K-1)]`` (the (K+1)-th
  largest, or the smallest when ``n <= K``) and ``t_p`` likewise for ``p``, the count of
  architectures with ``y > t_y`` and ``p > t_p``, divided by K. Ties at the threshold fall
  out of both sets; with ``n <= K`` the architectures tied at the minimum fall out and the
  division is still by K (so 5 distinct architectures perfectly ranked give 4/10).
* ``p_at_topK``, ``kd_at_topK`` (K = 1, 5, 10, 20, 25, 30, 50, 75, 100, every K, also
  K > n): the predicted top K are the first K of ``argsort(p)[::-1]``; the true rank of an
  architecture is its position in ``argsort(y)[::-1]`` (0 = best). ``p_at_topK`` = the
  count of predicted-top-K architectures with true rank < K, divided by K (so n/K for
  K > n); ``kd_at_topK`` = ``scipy.stats.kendalltau`` of (p, y) over the predicted top K
  (NaN for K = 1; all architectures for K >= n).
* ``br_at_K``: (smallest true rank among the predicted top K + 1) / n.
* ``full_ytest``, ``full_testpred``: the two lists.

Ties: the orders come from numpy's default ``argsort`` reversed, as in NASLib. numpy's
default sort is not stable (on x86 it dispatches to SIMD sorting networks), so which of
several tied predictions count in a top K is numpy's choice, the same as NASLib's on the
same machine and numpy; this module uses the same call, so it reproduces NASLib there.
Metrics that do not depend on an order (the correlations, ``precision_K``) are exact
everywhere.

The project's own definitions (:mod:`xigsnr_naslib.analysis.metrics`: ``kendall_tau``,
``spearman_rho``, ``pearson_r`` signed, the paper's P@TopK%, NaN pairs dropped, ties broken
by input order) are reported under those names, never under NASLib's keys.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats

from xigsnr_naslib.errors import UsageError

__all__ = ["TOP_KS", "PRECISION_KS", "compute_scores", "p_at_tb_k", "br_at_k", "precision_k"]

#: NASLib's K of ``p_at_topK``, ``kd_at_topK`` and ``br_at_K``
TOP_KS = (1, 5, 10, 20, 25, 30, 50, 75, 100)
#: NASLib's K of ``precision_K``
PRECISION_KS = (10, 20)


def _quiet(fn, *args) -> float:
    """``fn(*args)`` with scipy/numpy's warnings about constant or too-short input silenced."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        return float(fn(*args))


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:  # scipy returns NaN here too; older scipy versions raise instead
        return math.nan
    return _quiet(lambda x, y: stats.kendalltau(x, y)[0], a, b)


def _true_ranks(y: np.ndarray) -> np.ndarray:
    """Rank of each architecture by accuracy, 0 = best, in NASLib's order (argsort reversed)."""
    ranks = np.zeros(len(y))
    ranks[np.argsort(y)] = np.arange(len(y))[::-1]
    return ranks


def p_at_tb_k(predictions: Sequence[float], accuracy: Sequence[float], ks: Sequence[int] = TOP_KS) -> dict:
    """NASLib's ``p_at_top{K}`` and ``kd_at_top{K}`` for each K (module documentation)."""
    p, y = np.asarray(predictions, dtype=float), np.asarray(accuracy, dtype=float)
    order, true_rank = np.argsort(p)[::-1], _true_ranks(y)
    out = {}
    for k in ks:
        top = order[:k]
        out[f"p_at_top{k}"] = float(np.count_nonzero(true_rank[top] < k) / k)
        out[f"kd_at_top{k}"] = _kendall(p[top], y[top])
    return out


def br_at_k(predictions: Sequence[float], accuracy: Sequence[float], ks: Sequence[int] = TOP_KS) -> dict:
    """NASLib's ``br_at_{K}``: best true rank (1 = best) in the predicted top K, divided by n."""
    p, y = np.asarray(predictions, dtype=float), np.asarray(accuracy, dtype=float)
    if len(y) == 0:
        return {}
    order, true_rank = np.argsort(p)[::-1], _true_ranks(y)
    return {f"br_at_{k}": (int(np.min(true_rank[order[:k]])) + 1) / len(y) for k in ks}


def precision_k(predictions: Sequence[float], accuracy: Sequence[float], k: int) -> float:
    """NASLib's ``precision_{K}``: architectures above the (K+1)-th best on both sides, over K."""
    p, y = np.asarray(predictions, dtype=float), np.asarray(accuracy, dtype=float)
    if len(y) == 0:
        return math.nan
    y_cut = np.sort(y)[max(-len(y), -k - 1)]
    p_cut = np.sort(p)[max(-len(p), -k - 1)]
    return float(np.count_nonzero((y > y_cut) & (p > p_cut)) / k)


def compute_scores(accuracy: Sequence[float], predictions: Sequence[float]) -> dict:
    """Every key of NASLib's ``compute_scores(ytest, test_pred)`` with NASLib's value.

    ``accuracy`` (``ytest``) and ``predictions`` (``test_pred``): equal-length sequences.
    Raises ``ValueError`` when their lengths differ. NaN stays NaN (NASLib's predictions
    hold none: ``ZeroCost.query`` maps NaN to -1e8 before).
    """
    y, p = np.asarray(accuracy, dtype=float), np.asarray(predictions, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise UsageError(f"accuracy and predictions must be 1-d and of equal length, got {y.shape} and {p.shape}")
    out: dict = {}
    if len(y):
        out.update(p_at_tb_k(p, y))
        out.update(br_at_k(p, y))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mae"] = float(np.mean(np.abs(p - y))) if len(y) else math.nan
        out["rmse"] = float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else math.nan
    out["pearson"] = abs(_quiet(lambda a, b: np.corrcoef(a, b)[1, 0], y, p)) if len(y) >= 2 else math.nan
    out["spearman"] = _quiet(lambda a, b: stats.spearmanr(a, b)[0], y, p) if len(y) >= 2 else math.nan
    out["kendalltau"] = _kendall(y, p)
    out["kt_2dec"] = _kendall(y, np.round(p, decimals=2))
    out["kt_1dec"] = _kendall(y, np.round(p, decimals=1))
    for k in PRECISION_KS:
        out[f"precision_{k}"] = precision_k(p, y, k)
    out["full_ytest"] = y.tolist()
    out["full_testpred"] = p.tolist()
    return out
