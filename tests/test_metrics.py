"""Correlation metrics against scipy and hand-computed cases."""
import math

import numpy as np
import pytest
from scipy import stats

from xigsnr_naslib.evaluation.metrics import correlation_report, kendall_tau, pearson_r, precision_at_top, spearman_rho


def test_against_scipy_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 50).astype(float)
    a = s + rng.normal(size=50)
    assert kendall_tau(s, a) == pytest.approx(stats.kendalltau(s, a).statistic)
    assert spearman_rho(s, a) == pytest.approx(stats.spearmanr(s, a).statistic)
    assert pearson_r(s, a) == pytest.approx(stats.pearsonr(s, a).statistic)


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
