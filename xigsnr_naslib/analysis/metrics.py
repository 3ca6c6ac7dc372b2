"""Ranking metrics between proxy scores and ground-truth accuracies.

All functions take two equal-length sequences, ``scores`` (the proxy) and ``accuracy``
(the benchmark), where a higher score predicts a higher accuracy. The NaN policy: pairs in
which either value is NaN are left out (:func:`correlation_report` says how many); ``+inf``
and ``-inf`` rank above and below every finite value (Kendall, Spearman, top-K), except in
Pearson's r, a linear correlation, which leaves them out too. Fewer than two pairs left, or
every value of one side tied, gives NaN. Kendall's tau-b, Spearman's rho and Pearson's r
then equal scipy's ``kendalltau``, ``spearmanr`` and ``pearsonr`` on the pairs kept, ties
included (property tests: ``tests/test_metrics_properties.py``).

* :func:`kendall_tau`: Kendall's tau-b (ties handled as scipy does).
* :func:`expected_best_of_n`: what a best-of-N sampling search by the proxy finds on average
  (and its spread): the accuracy of the highest-scoring of N architectures drawn uniformly
  from the pool, averaged exactly over all N-subsets, ties broken uniformly at random. Its own
  NaN policy: a NaN score stays in the pool, below every finite one (the search draws it,
  never keeps it).
* :func:`spearman_rho`, :func:`pearson_r`: the values scipy's ``spearmanr`` / ``pearsonr``
  give, computed directly (scipy's call overhead dominates a bootstrap otherwise).
* :func:`precision_at_top`: the paper's P@TopK (Table 10, after Liu et al. 2020):
  ``#{(r < KM) and (n < KM)} / KM`` where r is an architecture's rank by score, n its rank
  by accuracy (0 = best), M the number of architectures and KM = max(1, round(K*M)): the
  fraction of the true top-K% that the proxy also puts in its top-K%. Tie rule: the
  expected overlap when ties are broken uniformly at random (:func:`top_membership`), so
  the value never depends on the input order.
* :func:`p_at_topk`, :func:`kd_at_topk`: NASLib's ``p_at_top{k}`` and ``kd_at_top{k}``
  (the zero-cost evaluation of NAS-Bench-Suite-Zero), where ``k`` is a number of
  architectures, not a fraction. ``p_at_topk`` is ``#{predicted top-k} ∩ {true top-k} / k``
  (the P@TopK formula above with KM = k); ``kd_at_topk`` is Kendall's tau-b between score
  and accuracy over the k architectures with the highest scores only (how well the proxy
  orders its own favourites). Two deliberate differences from NASLib's code, both outside
  the clean case: pairs with a NaN are dropped first (NASLib's argsort would put NaN scores
  at the top), and ties are not left to numpy's argsort order (which NASLib's results then
  depend on): ``p_at_topk`` counts them by their expected overlap, as :func:`precision_at_top`
  does, and ``kd_at_topk`` takes tied scores at the boundary in input order. For k larger than the number
  of architectures both are NaN (NASLib would report n/k and the tau of everything).
* :func:`ndcg_at_k`: normalised discounted cumulative gain of the proxy's top k, with the
  exponential gain ``2**accuracy - 1`` (accuracy in percentage points, so one point more
  doubles the gain and a constant shift of all accuracies changes nothing measurable) and
  the discount ``1/log2(1 + position)``, positions counted from 1; ``k`` is a number of
  architectures (all of them if k exceeds it). ``gain="linear"`` uses the accuracy itself,
  as scikit-learn's ``ndcg_score``; on NAS benchmarks, whose accuracies sit in a narrow
  band, that puts every proxy, random ones included, near 1. Tied scores share the mean
  gain of their group over the group's positions (McSherry & Najork 2008), so the result
  does not depend on input order.
* :func:`bootstrap_ci`: a percentile bootstrap confidence interval of any of these metrics:
  ``n_boot`` resamples of the (score, accuracy) pairs with replacement, drawn from
  ``numpy.random.default_rng(seed)``; the interval is the ``(1 - level) / 2`` and
  ``(1 + level) / 2`` quantiles of the resampled values (linear interpolation). Resamples
  on which the metric is undefined (NaN, e.g. all scores tied) are left out; when none
  is left the interval is (NaN, NaN). :func:`metric_table` computes many metrics of many
  proxies on the same resamples (a paired bootstrap: the intervals of two proxies are
  comparable).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from xigsnr_naslib.errors import UsageError

__all__ = ["expected_best_of_n", "kendall_tau", "spearman_rho", "pearson_r", "precision_at_top", "top_membership", "finite_pairs", "correlation_report",
           "p_at_topk", "kd_at_topk", "ndcg_at_k", "bootstrap_ci", "bootstrap_indices", "standard_metrics",
           "metric_table"]

Metric = Callable[[np.ndarray, np.ndarray], float]


def finite_pairs(scores: Sequence[float], accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays with every pair containing a NaN removed."""
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    if s.shape != a.shape or s.ndim != 1:
        raise UsageError(f"scores and accuracy must be 1-d and of equal length, got {s.shape} and {a.shape}")
    keep = ~(np.isnan(s) | np.isnan(a))
    return s[keep], a[keep]


def _too_few(s: np.ndarray) -> bool:
    return len(s) < 2 or np.all(s == s[0])


#: below this many pairs Kendall's tau-b is computed from the pair-sign matrix (exact, and
#: much faster than scipy's O(n log n) routine for the small samples of the bootstrap)
_SMALL_KENDALL = 150


def _tau_b_pairs(s: np.ndarray, a: np.ndarray) -> float:
    """tau-b = sum(sign(ds) sign(da)) / sqrt(#pairs untied in s * #pairs untied in a).

    Computed on ranks, so that +-inf order like any other value (inf - inf is NaN)."""
    s, a = stats.rankdata(s), stats.rankdata(a)
    upper = np.triu_indices(len(s), k=1)
    ds = np.sign(s[:, None] - s[None, :])[upper]
    da = np.sign(a[:, None] - a[None, :])[upper]
    return float(np.dot(ds, da) / math.sqrt(np.count_nonzero(ds) * np.count_nonzero(da)))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    x = x / np.linalg.norm(x)
    y = y / np.linalg.norm(y)
    return float(np.clip(np.dot(x, y), -1.0, 1.0))


def kendall_tau(scores, accuracy) -> float:
    s, a = finite_pairs(scores, accuracy)
    if _too_few(s) or _too_few(a):
        return math.nan
    if len(s) < _SMALL_KENDALL:
        return _tau_b_pairs(s, a)
    return float(stats.kendalltau(s, a).statistic)


def spearman_rho(scores, accuracy) -> float:
    """Pearson's r of the average ranks (what scipy's ``spearmanr`` computes)."""
    s, a = finite_pairs(scores, accuracy)
    if _too_few(s) or _too_few(a):
        return math.nan
    return _pearson(stats.rankdata(s), stats.rankdata(a))


def pearson_r(scores, accuracy) -> float:
    s, a = finite_pairs(scores, accuracy)
    s = np.where(np.isinf(s), np.nan, s)
    s, a = finite_pairs(s, a)
    if _too_few(s) or _too_few(a):
        return math.nan
    return _pearson(s, a)


def _ranks_best_first(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(len(values))
    return ranks


def top_membership(values: np.ndarray, k: int) -> np.ndarray:
    """Per entry, the probability that it is among the ``k`` largest when ties are broken
    uniformly at random: 1 above the k-th largest value, 0 below it, and for the group tied
    with it ``(k - #greater) / #tied``. Shape: that of ``values``; invariant to their order."""
    ordered = np.sort(values)
    greater = len(values) - np.searchsorted(ordered, values, side="right")
    tied = np.searchsorted(ordered, values, side="right") - np.searchsorted(ordered, values, side="left")
    return np.clip((k - greater) / tied, 0.0, 1.0)


def precision_at_top(scores, accuracy, fraction: float) -> float:
    """The paper's P@TopK for K = ``fraction`` (0.05 for P@Top5%).

    Tie rule: ties are broken uniformly at random, independently in the two rankings, and
    the value is the expected overlap, ``sum_i p_i q_i / KM`` with p_i, q_i the
    :func:`top_membership` of architecture i by score and by accuracy. Without ties at the
    boundary this is the plain count; with ties it does not depend on the input order.
    """
    if not 0 < fraction <= 1:
        raise UsageError(f"fraction must be in (0, 1], got {fraction}")
    s, a = finite_pairs(scores, accuracy)
    m = len(s)
    if m == 0:
        return math.nan
    k = max(1, int(round(fraction * m)))
    return float(np.sum(top_membership(s, k) * top_membership(a, k)) / k)


def _check_k(k) -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise UsageError(f"k must be a positive whole number of architectures, got {k!r}")
    return int(k)


def p_at_topk(scores, accuracy, k: int) -> float:
    """NASLib's ``p_at_top{k}``: share of the true top ``k`` in the predicted top ``k``."""
    k = _check_k(k)
    s, a = finite_pairs(scores, accuracy)
    if k > len(s):
        return math.nan
    return float(np.sum(top_membership(s, k) * top_membership(a, k)) / k)


def kd_at_topk(scores, accuracy, k: int) -> float:
    """NASLib's ``kd_at_top{k}``: Kendall's tau-b over the ``k`` highest-scored architectures."""
    k = _check_k(k)
    s, a = finite_pairs(scores, accuracy)
    if k > len(s):
        return math.nan
    top = np.argsort(-s, kind="stable")[:k]
    return kendall_tau(s[top], a[top])


_GAINS = {"exp2": lambda a: np.exp2(a) - 1.0, "linear": lambda a: a}


def ndcg_at_k(scores, accuracy, k: int, gain: str = "exp2") -> float:
    """nDCG of the ``k`` highest-scored architectures, ties in ``scores`` averaged.

    ``gain``: ``"exp2"`` (``2**accuracy - 1``, accuracy in percent; the default) or
    ``"linear"`` (the accuracy itself).
    """
    k = _check_k(k)
    try:
        to_gain = _GAINS[gain]
    except KeyError:
        raise UsageError(f"unknown gain {gain!r}; known: {', '.join(_GAINS)}") from None
    s, a = finite_pairs(scores, accuracy)
    m = len(s)
    if m == 0:
        return math.nan
    g = to_gain(a)
    discount = 1.0 / np.log2(np.arange(2, m + 2))
    discount[k:] = 0.0
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    group = np.cumsum(np.r_[True, ranked[1:] != ranked[:-1]]) - 1
    mean_gain = np.bincount(group, weights=g[order]) / np.bincount(group)
    dcg = float(np.sum(mean_gain * np.bincount(group, weights=discount)))
    ideal = float(np.sum(np.sort(g)[::-1] * discount))
    if ideal <= 0:
        return math.nan
    return dcg / ideal


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``(n_boot, n)`` resample indices drawn with replacement from ``default_rng(seed)``."""
    if n_boot < 1:
        raise UsageError(f"n_boot must be at least 1, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise UsageError(f"level must be in (0, 1), got {level}")


def bootstrap_ci(metric: Metric, scores, accuracy, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(scores, accuracy)`` (NaN pairs dropped first)."""
    _check_level(level)
    s, a = finite_pairs(scores, accuracy)
    if len(s) == 0:
        return math.nan, math.nan
    draws = bootstrap_indices(len(s), n_boot, seed)
    values = np.array([metric(s[i], a[i]) for i in draws], dtype=float)
    return _percentile_interval(values, level)


def standard_metrics(top_fractions: Sequence[float] = (0.05, 0.10), naslib_ks: Sequence[int] = (10, 100),
                     ndcg_ks: Sequence[int] = (10, 50)) -> dict[str, Metric]:
    """The leaderboard's metrics by column name, in column order.

    ``kendall_tau``, ``spearman_rho``, ``pearson_r``, the paper's ``p_at_top5%`` ...,
    NASLib's ``p_at_top{k}`` and ``kd_at_top{k}``, and ``ndcg@{k}``.
    """
    metrics: dict[str, Metric] = {"kendall_tau": kendall_tau, "spearman_rho": spearman_rho, "pearson_r": pearson_r}
    for fraction in top_fractions:
        metrics[f"p_at_top{fraction * 100:g}%"] = lambda s, a, f=fraction: precision_at_top(s, a, f)
    for k in naslib_ks:
        metrics[f"p_at_top{k}"] = lambda s, a, k=k: p_at_topk(s, a, k)
    for k in naslib_ks:
        metrics[f"kd_at_top{k}"] = lambda s, a, k=k: kd_at_topk(s, a, k)
    for k in ndcg_ks:
        metrics[f"ndcg@{k}"] = lambda s, a, k=k: ndcg_at_k(s, a, k)
    return metrics


def metric_table(scores: Mapping[str, Sequence[float]], accuracy: Sequence[float],
                 metrics: Mapping[str, Metric] | None = None, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> pd.DataFrame:
    """Every metric of every proxy, with paired percentile bootstrap intervals.

    ``scores`` maps proxy name -> scores aligned with ``accuracy``. Returns one row per
    proxy with the columns ``n`` (pairs used), then for each metric ``<metric>``,
    ``<metric>_low`` and ``<metric>_high``. All proxies are resampled with the same
    indices (over all positions; pairs with a NaN drop out inside each resample).
    ``n_boot=0`` computes the point values only.
    """
    _check_level(level)
    metrics = dict(metrics if metrics is not None else standard_metrics())
    a = np.asarray(accuracy, dtype=float)
    draws = bootstrap_indices(len(a), n_boot, seed) if n_boot else None
    rows = {}
    for name, values in scores.items():
        s = np.asarray(values, dtype=float)
        if s.shape != a.shape:
            raise UsageError(f"scores of {name!r} have shape {s.shape}, accuracy {a.shape}")
        row: dict[str, float] = {"n": int(len(finite_pairs(s, a)[0]))}
        for metric_name, metric in metrics.items():
            row[metric_name] = metric(s, a)
            if draws is None:
                continue
            replicates = np.array([metric(s[i], a[i]) for i in draws], dtype=float)
            row[f"{metric_name}_low"], row[f"{metric_name}_high"] = _percentile_interval(replicates, level)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


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


def expected_best_of_n(scores, accuracy, n: int) -> tuple[float, float]:
    """Mean and standard deviation, over all ``n``-subsets of the pool drawn uniformly, of the
    accuracy of the subset's highest-scoring architecture: the outcome of a best-of-``n``
    sampling search (``xigsnr-naslib search --algorithm sample --samples n``) on this pool.

    Parameters
    ----------
    scores, accuracy : sequences of float, length M
        The proxy's score (higher is better; NaN or -inf for not computable, ranked below
        every finite score, as the search never keeps such an architecture while a
        computable one was drawn) and the ground truth of each architecture of the pool.
    n : int
        Architectures per draw, 1 <= n <= M.

    Returns
    -------
    mean, std : float
        In the accuracy's units.

    Raises
    ------
    ValueError
        For ``n`` outside [1, M], an empty pool, unequal lengths, anything but 1-D sequences
        of numbers, or a NaN or infinite accuracy.

    Notes
    -----
    Exact: sorted by score (descending,
    stable), the i-th architecture (1-based) is the best of a uniform ``n``-subset with
    probability C(M - i, n - 1) / C(M, n) (computed in logs). Ties (equal scores, and all
    not-computable ones) are broken uniformly at random, as by draw order: a tied architecture
    counts with its tie group's mean accuracy, so the result never depends on the pool's
    order. A uniform ``n``-subset of a uniform random
    sample of a space is a uniform ``n``-subset of the space, so on a seeded uniform sample
    the mean is an unbiased estimate of the search's expected outcome on the whole space;
    on the whole space it is that outcome. With ``scores`` the validation accuracy it is
    NAS-Bench-201's random-search baseline (best validation of ``n`` trained networks).

    Tests: ``tests/test_metrics_properties.py`` (against enumerating every subset).
    """
    from scipy.special import gammaln

    arrays = []
    for name, values in (("scores", scores), ("accuracy", accuracy)):
        if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
            raise UsageError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}")
        try:
            arrays.append(np.asarray(values, dtype=float))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{name} must hold numbers: {exc}") from None
    s, a = arrays
    if len(s) != len(a):
        raise UsageError(f"scores and accuracy differ in length: {len(s)} vs {len(a)}")
    if len(s) == 0:
        raise UsageError("the pool is empty")
    if not np.isfinite(a).all():
        raise UsageError("accuracy has NaN or infinite values; leave those architectures out of the pool")
    m = len(s)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= m:
        raise UsageError(f"n must be an integer in [1, {m}] (the pool's size), got {n!r}")
    key = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-key, kind="stable")
    rest = m - np.arange(1, m + 1)  # architectures ranked below the i-th
    possible = rest >= n - 1

    def log_comb(x, k):
        return gammaln(x + 1) - gammaln(k + 1) - gammaln(x - k + 1)

    p = np.zeros(m)
    p[possible] = np.exp(log_comb(rest[possible], n - 1) - log_comb(m, n))
    # tied scores: the search keeps any of the tied ones drawn, each as likely (by symmetry),
    # so each tied architecture counts with its group's mean accuracy (and mean square)
    k, v = key[order], a[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    size = np.diff(np.r_[starts, m])
    v1 = np.repeat(np.add.reduceat(v, starts) / size, size)
    v2 = np.repeat(np.add.reduceat(v * v, starts) / size, size)
    mean = float(np.sum(p * v1))
    return mean, float(np.sqrt(max(float(np.sum(p * v2)) - mean * mean, 0.0)))
