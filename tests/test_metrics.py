"""Correlation metrics against scipy and hand-computed cases."""
import math

import numpy as np
import pytest
from scipy import stats

from xigsnr_naslib.analysis.metrics import correlation_report, kendall_tau, pearson_r, precision_at_top, spearman_rho


@pytest.mark.parametrize("n", [50, 400])            # both sides of the small-sample Kendall path
def test_against_scipy_with_ties(n):
    rng = np.random.default_rng(n)
    s = rng.integers(0, 5, n).astype(float)
    a = np.round(s + rng.normal(size=n), 1)            # ties on both sides
    assert kendall_tau(s, a) == pytest.approx(stats.kendalltau(s, a).statistic)
    assert spearman_rho(s, a) == pytest.approx(stats.spearmanr(s, a).statistic)
    assert pearson_r(s, a) == pytest.approx(stats.pearsonr(s, a).statistic)
    big = 1e8 * s + 3e9                                  # large magnitudes, as xi-GSNR scores have
    assert pearson_r(big, a) == pytest.approx(stats.pearsonr(big, a).statistic)
    assert kendall_tau(a, a) == 1.0 and kendall_tau(-a, a) == -1.0


def test_hand_computed_kendall():
    # pairs: (1,2) concordant, (1,3) concordant, (2,3) discordant -> (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_nan_pairs_are_dropped_and_counted():
    report = correlation_report([1, 2, float("nan"), 4], [1, 2, 3, 4])
    assert report["n"] == 3 and report["n_dropped_nan"] == 1 and report["kendall_tau"] == 1.0
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_precision_at_top_paper_definition():
    acc = np.arange(20, dtype=float)           # true ranks: 19 is best
    scores = acc.copy()
    scores[[19, 0]] = scores[[0, 19]]          # the best arch predicted worst
    assert precision_at_top(scores, acc, 0.10) == 0.5   # K*M = 2: {19, 18} vs {0->top, 18}
    assert precision_at_top(acc, acc, 0.05) == 1.0
    assert precision_at_top(-acc, acc, 0.25) == 0.0
    with pytest.raises(ValueError):
        precision_at_top(acc, acc, 0)


# --- NASLib's p_at_topK / kd_at_topK, nDCG@K, bootstrap intervals ------------------------------

from xigsnr_naslib.analysis.metrics import (bootstrap_ci, kd_at_topk, metric_table, ndcg_at_k, p_at_topk,
                                              standard_metrics)


def _set_overlap(scores, acc, k):
    """Independent oracle: |{k largest scores} & {k largest accuracies}| / k (no ties)."""
    top_s = set(sorted(range(len(scores)), key=lambda i: -scores[i])[:k])
    top_a = set(sorted(range(len(acc)), key=lambda i: -acc[i])[:k])
    return len(top_s & top_a) / k


@pytest.mark.parametrize("k", [1, 3, 10, 25])
def test_p_at_topk_against_set_oracle_and_paper_definition(k):
    rng = np.random.default_rng(k)
    acc = rng.normal(size=60)
    scores = acc + rng.normal(scale=1.0, size=60)
    assert p_at_topk(scores, acc, k) == pytest.approx(_set_overlap(scores, acc, k))
    # the paper's P@TopK with KM = k is the same quantity
    assert p_at_topk(scores, acc, k) == precision_at_top(scores, acc, k / 60)


def test_p_and_kd_at_topk_hand_computed():
    acc = [10, 20, 30, 40, 50, 60]
    scores = [6, 5, 1, 2, 3, 4]               # predicted top 3: archs 0, 1, 5; true top 3: 3, 4, 5
    assert p_at_topk(scores, acc, 3) == pytest.approx(1 / 3)
    # inside the predicted top 3 (scores 6, 5, 4 vs acc 10, 20, 60): pairs (0,1) discordant,
    # (0,5) discordant, (1,5) discordant -> tau = -1
    assert kd_at_topk(scores, acc, 3) == pytest.approx(-1.0)
    # predicted top 4 adds arch 4 (score 3, acc 50): its pairs with 0, 1 are discordant, with 5
    # concordant -> 1 concordant, 5 discordant of 6 pairs -> -2/3
    assert kd_at_topk(scores, acc, 4) == pytest.approx(-2 / 3)
    assert math.isnan(kd_at_topk(scores, acc, 1))          # one architecture has no pairs
    assert math.isnan(p_at_topk(scores, acc, 7)) and math.isnan(kd_at_topk(scores, acc, 7))
    with pytest.raises(ValueError):
        p_at_topk(scores, acc, 0)
    with pytest.raises(ValueError):
        kd_at_topk(scores, acc, 2.5)


def test_kd_at_topk_is_scipy_tau_b_on_the_predicted_top():
    rng = np.random.default_rng(3)
    acc = rng.integers(0, 6, 80).astype(float)             # many ties in the accuracy
    scores = acc + rng.normal(size=80)
    top = np.argsort(-scores)[:30]
    assert kd_at_topk(scores, acc, 30) == pytest.approx(stats.kendalltau(scores[top], acc[top]).statistic)


def test_topk_metrics_drop_nan_pairs_and_count_ties_by_expected_overlap():
    acc = [1.0, 2.0, 3.0, 4.0, float("nan")]
    scores = [1.0, 1.0, 1.0, 0.0, 100.0]     # the NaN-accuracy arch would otherwise be top-1
    # ties among the first three (none is the true top-1, arch 3); the three are the whole top 3
    assert p_at_topk(scores, acc, 1) == 0.0
    assert p_at_topk(scores, acc, 3) == pytest.approx(2 / 3)   # {0,1,2} vs {3,2,1}
    assert p_at_topk([float("nan"), 2, 1], [1, 2, 3], 1) == 0.0
    # a tie at the boundary: archs 0 and 1 share the top score, arch 0 is the true best; input
    # order would give 1 and the reversed input 0: the expected overlap is 1/2 either way
    assert p_at_topk([1.0, 1.0, 0.0], [3.0, 1.0, 2.0], 1) == 0.5
    assert p_at_topk([0.0, 1.0, 1.0], [2.0, 1.0, 3.0], 1) == 0.5


def _dcg(gains, k):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def test_ndcg_hand_computed_linear_and_exponential_gain():
    acc = [3.0, 1.0, 2.0]
    scores = [0.1, 0.9, 0.5]                  # predicted order: acc 1, 2, 3 (the worst first)
    expected = _dcg([1, 2, 3], 3) / _dcg([3, 2, 1], 3)
    assert ndcg_at_k(scores, acc, 3, gain="linear") == pytest.approx(expected)
    exp_gain = [2 ** v - 1 for v in (1, 2, 3)]
    assert ndcg_at_k(scores, acc, 2) == pytest.approx(_dcg(exp_gain, 2) / _dcg(exp_gain[::-1], 2))
    assert ndcg_at_k(acc, acc, 2) == pytest.approx(1.0)
    assert ndcg_at_k(scores, acc, 10) == ndcg_at_k(scores, acc, 3)     # k beyond n: all of them
    with pytest.raises(ValueError):
        ndcg_at_k(scores, acc, 2, gain="log")


def test_ndcg_ties_share_the_mean_gain_whatever_the_input_order():
    acc = [1.0, 3.0, 2.0]
    scores = [5.0, 5.0, 0.0]                  # archs 0 and 1 tied at the top
    tied_mean = ((2 ** 1 - 1) + (2 ** 3 - 1)) / 2
    dcg = tied_mean * (1 + 1 / math.log2(3)) + (2 ** 2 - 1) / 2
    ideal = (2 ** 3 - 1) + (2 ** 2 - 1) / math.log2(3) + (2 ** 1 - 1) / 2
    assert ndcg_at_k(scores, acc, 3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(scores[::-1], acc[::-1], 3) == pytest.approx(dcg / ideal)
    # k cuts the tied group: one position of the two counts, at the group's mean gain
    assert ndcg_at_k(scores, acc, 1) == pytest.approx(tied_mean / (2 ** 3 - 1))


def test_ndcg_exponential_gain_is_shift_invariant_and_separates_random_from_good():
    rng = np.random.default_rng(0)
    acc = rng.normal(90, 2, 400)
    good = acc + rng.normal(0, 0.5, 400)
    assert ndcg_at_k(good, acc, 20) == pytest.approx(ndcg_at_k(good, acc - 50, 20), rel=1e-12)
    assert ndcg_at_k(good, acc, 20) > 0.8 > 0.4 > ndcg_at_k(rng.normal(size=400), acc, 20)


def test_bootstrap_percentile_interval_matches_fisher_z_for_pearson():
    rng = np.random.default_rng(1)
    n, rho = 600, 0.5
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=n)
    r = pearson_r(x, y)
    z, half = math.atanh(r), 1.959964 / math.sqrt(n - 3)
    low, high = bootstrap_ci(pearson_r, x, y, n_boot=600, seed=0)
    assert low < r < high
    assert low == pytest.approx(math.tanh(z - half), abs=0.02)
    assert high == pytest.approx(math.tanh(z + half), abs=0.02)


def test_bootstrap_is_seeded_and_handles_degenerate_input():
    rng = np.random.default_rng(2)
    a = rng.normal(size=40)
    s = a + rng.normal(size=40)
    assert bootstrap_ci(kendall_tau, s, a, n_boot=50, seed=7) == bootstrap_ci(kendall_tau, s, a, n_boot=50, seed=7)
    assert bootstrap_ci(kendall_tau, s, a, n_boot=50, seed=7) != bootstrap_ci(kendall_tau, s, a, n_boot=50, seed=8)
    low, high = bootstrap_ci(kendall_tau, np.ones(40), a, n_boot=20)
    assert math.isnan(low) and math.isnan(high)
    wide = bootstrap_ci(kendall_tau, s, a, n_boot=200, level=0.99)
    narrow = bootstrap_ci(kendall_tau, s, a, n_boot=200, level=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        bootstrap_ci(kendall_tau, s, a, level=1.0)


def test_metric_table_point_values_and_paired_intervals():
    rng = np.random.default_rng(4)
    acc = rng.normal(90, 2, 120)
    scores = {"good": acc + rng.normal(0, 1, 120), "bad": rng.normal(size=120)}
    scores["good"][3] = float("nan")
    table = metric_table(scores, acc, standard_metrics(naslib_ks=(10,), ndcg_ks=(10,)), n_boot=100, seed=0)
    assert list(table.index) == ["good", "bad"]
    assert table.at["good", "n"] == 119 and table.at["bad", "n"] == 120
    assert table.at["good", "kendall_tau"] == pytest.approx(kendall_tau(scores["good"], acc))
    assert table.at["good", "p_at_top10"] == pytest.approx(p_at_topk(scores["good"], acc, 10))
    for metric in ("kendall_tau", "spearman_rho", "ndcg@10"):
        assert table.at["good", f"{metric}_low"] <= table.at["good", metric] <= table.at["good", f"{metric}_high"]
    assert table.at["good", "kendall_tau_low"] > table.at["bad", "kendall_tau_high"]
    point_only = metric_table(scores, acc, n_boot=0)
    assert "kendall_tau_low" not in point_only and point_only.at["bad", "ndcg@10"] == table.at["bad", "ndcg@10"]
