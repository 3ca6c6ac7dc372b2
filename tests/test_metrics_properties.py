"""Property tests: the correlation metrics equal scipy's on random inputs with ties, +-inf and NaN.

The metrics compute the same quantities as scipy by other routes (a pair-sign matrix for
small-n tau-b; Pearson of average ranks for rho; normalised dot products). Each is a sum of
at most n^2 / 2 terms of magnitude <= 1 (tau) or a dot product of n unit-norm terms (rho, r)
in float64: the rounding is at most about n * 2^-52 relative, below 1e-12 for n <= 300, so
1e-9 absolute leaves three orders of magnitude of margin while any real disagreement
(a tie or an infinity handled differently) moves tau or rho by at least 1 / n^2 > 1e-5.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from xigsnr_naslib.analysis.metrics import kendall_tau, pearson_r, spearman_rho

TOL = 1e-9

# few distinct values so that ties are frequent; +-inf and NaN included
VALUES = st.one_of(st.integers(-3, 3).map(float), st.sampled_from([math.inf, -math.inf, math.nan]),
                   st.floats(-1e3, 1e3, allow_nan=False))


@st.composite
def pairs(draw, max_n=200):
    n = draw(st.integers(0, max_n))
    scores = draw(st.lists(VALUES, min_size=n, max_size=n))
    accuracy = draw(st.lists(st.one_of(st.integers(0, 5).map(float), st.floats(0, 100), st.just(math.nan)),
                             min_size=n, max_size=n))
    return np.array(scores, dtype=float), np.array(accuracy, dtype=float)


def kept(s, a, drop_inf=False):
    keep = ~(np.isnan(s) | np.isnan(a))
    if drop_inf:
        keep &= np.isfinite(s)
    return s[keep], a[keep]


def scipy_or_nan(fn, s, a):
    if len(s) < 2 or np.all(s == s[0]) or np.all(a == a[0]):
        return math.nan
    return float(fn(s, a).statistic)


def same(ours, theirs):
    return (math.isnan(ours) and math.isnan(theirs)) or abs(ours - theirs) <= TOL


@settings(max_examples=40, deadline=None)
@given(pairs())
def test_kendall_tau_b_equals_scipy(data):
    s, a = data
    assert same(kendall_tau(s, a), scipy_or_nan(stats.kendalltau, *kept(s, a)))


@settings(max_examples=40, deadline=None)
@given(pairs())
def test_spearman_equals_scipy(data):
    s, a = data
    assert same(spearman_rho(s, a), scipy_or_nan(stats.spearmanr, *kept(s, a)))


@settings(max_examples=40, deadline=None)
@given(pairs())
def test_pearson_equals_scipy_on_the_finite_pairs(data):
    s, a = data
    ours = pearson_r(s, a)
    fs, fa = kept(s, a, drop_inf=True)
    with np.errstate(all="ignore"):
        theirs = scipy_or_nan(stats.pearsonr, fs, fa)
    assert same(ours, theirs)


@pytest.mark.parametrize("n", [2, 3, 149, 150, 151])
def test_both_kendall_paths_agree_with_ties_and_infinities(n):
    """The small-n pair matrix and scipy's routine (n >= 150) on the same kind of input."""
    rng = np.random.default_rng(n)
    s = rng.integers(0, 3, n).astype(float)
    s[rng.random(n) < 0.2] = np.inf
    s[0], s[-1] = -np.inf, 1.0
    a = rng.integers(0, 4, n).astype(float)
    a[0], a[-1] = 0.0, 5.0
    assert same(kendall_tau(s, a), scipy_or_nan(stats.kendalltau, s, a))


def test_all_tied_is_nan_for_every_n():
    for n in range(0, 5):
        assert math.isnan(kendall_tau(np.ones(n), np.arange(n)))
        assert math.isnan(spearman_rho(np.ones(n), np.arange(n)))
        assert math.isnan(pearson_r(np.ones(n), np.arange(n)))


# --- P@TopK's tie rule ----------------------------------------------------------------------------
# precision_at_top is the expected overlap of the two top-k sets when ties are broken uniformly
# at random, independently in the two rankings. An independent computation: enumerate every
# tie-breaking order of each ranking (all permutations of n <= 5 items, each ranking sorted
# stably after permuting), count the overlap, average. Both sides are sums of at most 120^2
# fractions with denominator k <= 5 (exact in binary up to rounding of ~1e-16 per term), so
# agreement to 1e-12 is far inside rounding and far below any wrong tie rule (>= 1/(k*n!)).
import itertools

from xigsnr_naslib.analysis.metrics import p_at_topk, precision_at_top


def _brute_force_p_at_top(s, a, k):
    n = len(s)
    def tops(values):
        out = []
        for perm in itertools.permutations(range(n)):
            order = sorted(range(n), key=lambda j: (-values[perm[j]], j))  # stable on the permuted order
            out.append({perm[j] for j in order[:k]})
        return out
    ts, ta = tops(s), tops(a)
    return sum(len(x & y) for x in ts for y in ta) / (len(ts) * len(ta) * k)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 2), min_size=n, max_size=n),
                                                     st.lists(st.integers(0, 2), min_size=n, max_size=n),
                                                     st.integers(1, n))))
def test_p_at_top_is_the_expected_overlap_over_tie_breaks(case):
    s, a, k = case
    n = len(s)
    fraction = k / n  # round(fraction * n) == k
    assert precision_at_top(s, a, fraction) == pytest.approx(_brute_force_p_at_top(s, a, k), abs=1e-12)
    # NASLib's p_at_top{k} (k architectures) follows the same tie rule
    assert p_at_topk(s, a, k) == pytest.approx(_brute_force_p_at_top(s, a, k), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 100)), min_size=2, max_size=40),
       st.sampled_from([0.05, 0.1, 0.25, 0.5]), st.randoms(use_true_random=False))
def test_p_at_top_does_not_depend_on_input_order(pairs, fraction, rng):
    s, a = map(list, zip(*pairs))
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    s2, a2 = map(list, zip(*shuffled))
    # a permutation reorders the terms of one float sum of products of fractions: rounding only
    assert precision_at_top(s, a, fraction) == pytest.approx(precision_at_top(s2, a2, fraction), abs=1e-12)


# --- expected_best_of_n against enumerating every subset --------------------------------------
# The closed form weights each architecture by C(M - i, n - 1) / C(M, n) (log-gamma, exp):
# each weight carries a relative error of a few ulps times log C(M, n) <= M ln 2, i.e. below
# 1e-13 for M <= 9, and the mean is a convex combination of accuracies <= 100, so 1e-9
# absolute leaves a wide margin; picking the wrong architecture in a subset (a tie or a NaN
# handled differently) moves the mean by at least min |a_i - a_j| / C(9, 4) > 1e-4 here.
# The std is sqrt(E[x^2] - E[x]^2) with E[x^2] <= 1e4: the difference carries about
# 1e4 * 1e-15 of rounding, whose square root is below 1e-6 even at a zero variance; 1e-5.

@st.composite
def pools(draw):
    m = draw(st.integers(1, 9))
    scores = draw(st.lists(st.one_of(st.integers(-2, 2).map(float), st.sampled_from([math.nan, -math.inf, math.inf])),
                           min_size=m, max_size=m))
    accuracy = draw(st.lists(st.integers(0, 100).map(float), min_size=m, max_size=m))
    n = draw(st.integers(1, m))
    return np.array(scores), np.array(accuracy), n


@given(pools())
@settings(max_examples=300, deadline=None)
def test_expected_best_of_n_equals_enumeration(pool):
    """Every n-subset enumerated; within it, ties at the top broken uniformly at random (the
    kept architecture's expected accuracy and square are the tied ones' means)."""
    from itertools import combinations

    from xigsnr_naslib.analysis.metrics import expected_best_of_n

    scores, accuracy, n = pool
    key = np.where(np.isnan(scores), -math.inf, scores)
    first, second = [], []
    for subset in combinations(range(len(scores)), n):
        top = max(key[i] for i in subset)
        tied = [accuracy[i] for i in subset if key[i] == top]
        first.append(np.mean(tied))
        second.append(np.mean(np.square(tied)))
    mean, std = expected_best_of_n(scores, accuracy, n)
    assert mean == pytest.approx(np.mean(first), abs=1e-9)
    variance = np.mean(second) - np.mean(first) ** 2
    assert std == pytest.approx(math.sqrt(max(variance, 0.0)), abs=1e-5)  # sqrt of a difference of terms <= 1e4


@given(pools())
@settings(max_examples=100, deadline=None)
def test_expected_best_of_n_does_not_depend_on_the_pool_order(pool):
    from xigsnr_naslib.analysis.metrics import expected_best_of_n

    scores, accuracy, n = pool
    perm = np.random.default_rng(0).permutation(len(scores))
    a = expected_best_of_n(scores, accuracy, n)
    b = expected_best_of_n(scores[perm], accuracy[perm], n)
    assert a == pytest.approx(b, abs=1e-9)


def test_expected_best_of_n_whole_pool_and_single_draw():
    from xigsnr_naslib.analysis.metrics import expected_best_of_n

    scores, accuracy = np.array([0.3, 2.0, np.nan, 1.0]), np.array([10.0, 20.0, 30.0, 40.0])
    assert expected_best_of_n(scores, accuracy, 4) == (20.0, 0.0)  # the pool's best score, always drawn
    assert expected_best_of_n(scores, accuracy, 1)[0] == pytest.approx(25.0)  # one uniform draw: the plain mean


@pytest.mark.parametrize("n", [0, 5, 2.5, True])
def test_expected_best_of_n_rejects_bad_n(n):
    from xigsnr_naslib.analysis.metrics import expected_best_of_n

    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 4\]"):
        expected_best_of_n([1, 2, 3, 4], [1, 2, 3, 4], n)


@pytest.mark.parametrize("scores,accuracy,message", [
    ([1, 2], [1, np.nan], "NaN or infinite"),
    ([1, 2], [1, np.inf], "NaN or infinite"),
    ([1, 2], [1], "differ in length"),
    ([], [], "the pool is empty"),
    ("12", "34", "scores must be a 1-D sequence of numbers, got str"),
    ([1, "a"], [1, 2], "scores must hold numbers"),
    ([1, 2], [[1], [2]], "accuracy must be a 1-D sequence"),
])
def test_expected_best_of_n_rejects_bad_pools(scores, accuracy, message):
    from xigsnr_naslib.analysis.metrics import expected_best_of_n

    with pytest.raises(ValueError, match=message):
        expected_best_of_n(scores, accuracy, 1)
