"""NASLib's metric keys against an independent, plain-Python reading of NASLib's formulas.

The reference below follows ``compute_scores``, ``p_at_tb_k`` and ``minmax_n_at_k`` of NASLib
(``naslib/utils/zerocost.py``, Develop; the same formulas in the zerocost branch's
``naslib/utils/utils.py``) line by line in loops over pairs and ranks, without scipy: tau-b
from concordant/discordant pair counts, Spearman as Pearson of average ranks. The one thing
taken from numpy is NASLib's tie rule for orders: ``numpy.argsort`` reversed (numpy's default
sort, not stable). The cases are small (n <= 20, where NASLib's K exceed n) and tied, where
the project's own definitions differ. ``tests/test_naslib_integration.py`` compares with
NASLib's own ``compute_scores`` where NASLib is importable.
"""
import math

import numpy as np
import pytest

from xigsnr_naslib.analysis.metrics import kendall_tau, p_at_topk
from xigsnr_naslib.integrations.naslib.metrics import PRECISION_KS, TOP_KS, compute_scores


def ref_tau_b(x, y):
    n = len(x)
    concordant = discordant = tied_x = tied_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0:
                tied_x += 1
            if dy == 0:
                tied_y += 1
            if dx * dy > 0:
                concordant += 1
            elif dx * dy < 0:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    return (concordant - discordant) / denominator if denominator > 0 else math.nan


def ref_pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def ref_average_ranks(x):
    ranks = []
    for v in x:
        below = sum(1 for w in x if w < v)
        equal = sum(1 for w in x if w == v)
        ranks.append(below + (equal + 1) / 2)
    return ranks


def ref_naslib(y, p):
    """NASLib's compute_scores, read as plain Python (tie order: numpy.argsort reversed)."""
    n = len(y)
    predicted_order = list(np.argsort(np.array(p)))[::-1]
    true_order = list(np.argsort(np.array(y)))[::-1]
    true_rank = {arch: position for position, arch in enumerate(true_order)}
    out = {}
    for k in TOP_KS:
        top = predicted_order[:k]
        out[f"p_at_top{k}"] = sum(1 for a in top if true_rank[a] < k) / k
        out[f"kd_at_top{k}"] = ref_tau_b([p[a] for a in top], [y[a] for a in top]) if len(top) > 1 else math.nan
        out[f"br_at_{k}"] = (min(true_rank[a] for a in top) + 1) / n
    out["mae"] = sum(abs(a - b) for a, b in zip(p, y)) / n
    out["rmse"] = math.sqrt(sum((a - b) ** 2 for a, b in zip(p, y)) / n)
    out["pearson"] = abs(ref_pearson(y, p))
    out["spearman"] = ref_pearson(ref_average_ranks(y), ref_average_ranks(p))
    out["kendalltau"] = ref_tau_b(y, p)
    out["kt_2dec"] = ref_tau_b(y, [round(v, 2) for v in p])
    out["kt_1dec"] = ref_tau_b(y, [round(v, 1) for v in p])
    for k in PRECISION_KS:
        y_cut = sorted(y)[max(-n, -k - 1)]
        p_cut = sorted(p)[max(-n, -k - 1)]
        out[f"precision_{k}"] = sum(1 for a, b in zip(y, p) if a > y_cut and b > p_cut) / k
    return out


def assert_same(got, expected):
    assert set(expected) <= set(got)
    for key, value in expected.items():
        # tolerance: the reference sums in another order than numpy/scipy; the values are
        # ratios of integers or sums of at most 20 terms of size <= 100, so rounding stays
        # below 1e-12 relative; NaN must be NaN
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


CASES = {
    "3 archs": ([70.0, 90.0, 80.0], [0.1, 0.3, 0.2]),
    "5 archs, perfectly ranked": ([60.0, 70.0, 80.0, 90.0, 95.0], [1.0, 2.0, 3.0, 4.0, 5.0]),
    "5 archs, ranked backwards": ([60.0, 70.0, 80.0, 90.0, 95.0], [5.0, 4.0, 3.0, 2.0, 1.0]),
    "tied accuracies": ([80.0, 80.0, 85.0, 85.0, 90.0, 70.0, 70.0], [0.5, 0.1, 0.9, 0.4, 0.8, 0.2, 0.3]),
    "tied predictions": ([81.0, 82.0, 83.0, 84.0, 85.0, 86.0], [1.0, 1.0, 2.0, 2.0, 2.0, 3.0]),
    "ties on both sides, -1e8 for failed": ([88.0, 88.0, 90.0, 91.0, 70.0, 72.0, 88.0, 90.0],
                                            [-1e8, 0.25, 0.25, 0.7, -1e8, 0.1, 0.25, 0.7]),
    "one arch": ([90.0], [1.0]),
    "constant predictions": ([70.0, 80.0, 90.0, 85.0], [2.0, 2.0, 2.0, 2.0]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_small_and_tied_cases_equal_naslibs_formulas(case):
    y, p = CASES[case]
    assert_same(compute_scores(y, p), ref_naslib(y, p))


def test_random_sets_up_to_twenty_archs_with_ties():
    rng = np.random.default_rng(17)
    for n in range(2, 21):
        y = rng.choice([70.0, 75.5, 80.25, 85.0, 90.0, 91.5], size=n).tolist()
        p = rng.integers(-3, 4, size=n).astype(float).tolist()
        assert_same(compute_scores(y, p), ref_naslib(y, p))


def test_hand_values_where_the_project_definitions_differ():
    y, p = CASES["5 archs, perfectly ranked"]
    m = compute_scores(y, p)
    assert m["precision_10"] == 4 / 10  # n <= K: the minimum falls out and K stays the divisor
    assert m["precision_20"] == 4 / 20
    assert m["p_at_top10"] == 5 / 10 and m["kd_at_top10"] == pytest.approx(1.0)  # K > n: n/K, tau of all
    assert math.isnan(p_at_topk(p, y, 10))  # the project's definition: undefined for K > n
    assert m["br_at_1"] == 1 / 5 and m["br_at_100"] == 1 / 5
    assert math.isnan(m["kd_at_top1"])
    backwards = compute_scores(*CASES["5 archs, ranked backwards"])
    assert backwards["pearson"] == pytest.approx(m["pearson"])  # |r|: backwards ranks as well as forwards
    assert backwards["kendalltau"] == pytest.approx(-1.0)
    # n <= K: "top" is everything above the minimum on each side: archs 1-4 by accuracy, 0-3 by score
    assert backwards["precision_10"] == 3 / 10 and backwards["br_at_1"] == 1.0
    # a failed architecture's -1e8 is a prediction like any other under NASLib's keys, while
    # the project's own tau (on raw scores, NaN dropped) leaves it out
    y2, p2 = [90.0, 80.0, 70.0], [-1e8, 2.0, 1.0]
    assert compute_scores(y2, p2)["kendalltau"] == pytest.approx(-1 / 3)
    assert kendall_tau([math.nan, 2.0, 1.0], y2) == pytest.approx(1.0)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="equal length"):
        compute_scores([1.0, 2.0], [1.0])
