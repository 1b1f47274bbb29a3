"""Paired tests, Holm and seed spread: against scipy and hand-computed examples."""

import numpy as np
import pytest
from scipy import stats as sps

from bench.report.stats import (
    bootstrap_interval, cluster_sums, holm, macro_weights, paired_bootstrap, paired_randomisation, paired_test,
    seed_spread,
)


def mean_difference(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def test_sign_flip_is_exact_and_equal_to_scipy_on_a_small_case():
    a = np.array([0.9, 0.7, 0.8, 0.65, 0.5, 0.95, 0.6, 0.72])
    b = np.array([0.6, 0.75, 0.5, 0.6, 0.55, 0.7, 0.5, 0.7])
    difference, p, exact = paired_randomisation(a, b, n_resamples=10_000)
    reference = sps.permutation_test((a, b), mean_difference, permutation_type="samples", vectorized=True,
                                     n_resamples=10_000, alternative="two-sided")
    assert exact
    assert difference == pytest.approx(np.mean(a - b))
    assert p == pytest.approx(reference.pvalue, abs=1e-12)


def test_sign_flip_by_hand():
    # d = (1, 2, 3): of the 8 sign patterns, |sum| >= 6 for (+,+,+) and (-,-,-) only.
    difference, p, exact = paired_randomisation([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert exact and difference == pytest.approx(2.0) and p == pytest.approx(2 / 8)
    # Equal systems: p = 1.
    assert paired_randomisation([0.5, 0.2], [0.5, 0.2])[1] == 1.0


def test_sign_flip_monte_carlo_agrees_with_scipy():
    rng = np.random.default_rng(3)
    a = rng.random(60)
    b = a - 0.04 + rng.normal(0, 0.15, 60)
    _, p, exact = paired_randomisation(a, b, n_resamples=10_000, seed=1)
    reference = sps.permutation_test((a, b), mean_difference, permutation_type="samples", vectorized=True,
                                     n_resamples=10_000, alternative="two-sided", random_state=2)
    assert not exact
    assert p == pytest.approx(reference.pvalue, abs=0.02)


def test_bootstrap_interval_agrees_with_scipy_percentile():
    rng = np.random.default_rng(5)
    a = rng.random(40)
    b = rng.random(40)
    difference, low, high = paired_bootstrap(a, b, n_resamples=10_000, seed=1)
    reference = sps.bootstrap((a - b,), np.mean, method="percentile", n_resamples=10_000, random_state=2)
    half_width = (high - low) / 2
    assert difference == pytest.approx(np.mean(a - b))
    assert low == pytest.approx(reference.confidence_interval.low, abs=0.05 * half_width)
    assert high == pytest.approx(reference.confidence_interval.high, abs=0.05 * half_width)


def test_results_are_seeded_and_chunking_does_not_change_them(monkeypatch):
    rng = np.random.default_rng(0)
    a, b = rng.random(300), rng.random(300)
    first = paired_test(a, b, seed=7, n_resamples=2_000)
    assert paired_test(a, b, seed=7, n_resamples=2_000) == first
    assert paired_test(a, b, seed=8, n_resamples=2_000).ci_low != first.ci_low
    import bench.report.stats as stats

    monkeypatch.setattr(stats, "MAX_CHUNK_ELEMENTS", 1_000)  # many small chunks: same numbers
    chunked = paired_test(a, b, seed=7, n_resamples=2_000)
    assert chunked.difference == first.difference
    assert abs(chunked.p_value - first.p_value) < 0.05  # same distribution, not the same stream


def test_macro_weights_give_the_mean_of_group_means():
    values = np.array([1.0, 0.0, 0.0, 0.5, 0.5])
    groups = np.array(["ar-de", "ar-de", "ar-de", "de-ar", "de-ar"])
    weights = macro_weights(groups, len(values))
    assert np.sum(weights * values) == pytest.approx((1 / 3 + 0.5) / 2)
    assert weights.sum() == pytest.approx(1.0)
    assert macro_weights(None, 4).tolist() == [0.25] * 4


def test_clustered_difference_is_the_macro_difference_and_clusters_count():
    # Two language pairs sharing two questions: the macro difference is the mean of pair means.
    a = np.array([1.0, 0.0, 1.0, 1.0])
    b = np.array([0.0, 0.0, 0.5, 1.0])
    groups = np.array(["x-y", "x-y", "y-x", "y-x"])
    clusters = np.array(["q1", "q2", "q1", "q2"])
    result = paired_test(a, b, groups=groups, clusters=clusters, n_resamples=1_000)
    assert result.difference == pytest.approx((0.5 + 0.25) / 2)
    assert result.n_units == 4 and result.n_clusters == 2
    assert result.exact  # 2 clusters: 4 sign patterns, enumerated
    # D_q1 = 0.25*1 + 0.25*0.5 = 0.375, D_q2 = 0: patterns give |T| = 0.375 always -> p = 1.
    assert result.p_value == pytest.approx(1.0)
    # Clusters in order of first appearance: b, then a.
    assert cluster_sums(np.array([1.0, 2.0, 3.0]), np.array(["b", "a", "b"])).tolist() == [4.0, 2.0]


def test_bootstrap_interval_of_a_single_system():
    score, low, high = bootstrap_interval(np.full(50, 0.3), n_resamples=500)
    assert (score, low, high) == pytest.approx((0.3, 0.3, 0.3))


def test_a_clear_difference_is_significant_and_no_difference_is_not():
    rng = np.random.default_rng(1)
    base = rng.random(500)
    better = paired_test(base + 0.05 + rng.normal(0, 0.02, 500), base, n_resamples=2_000)
    assert better.p_value < 0.001 and 0.04 < better.ci_low < better.difference < better.ci_high < 0.06
    same = paired_test(base + rng.normal(0, 0.02, 500), base, n_resamples=2_000)
    assert same.p_value > 0.05 and same.ci_low < 0 < same.ci_high


def test_mismatched_or_empty_input_is_an_error():
    with pytest.raises(ValueError):
        paired_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_test([], [])


def test_holm_by_hand():
    # Sorted p: 0.01, 0.02, 0.03, 0.04 (m = 4) -> 0.04, 0.06, max(0.06, 0.06), max(0.06, 0.04) = 0.06.
    assert holm([0.03, 0.01, 0.04, 0.02]).tolist() == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # Monotone (the step-down maximum) and capped at 1.
    assert holm([0.01, 0.015, 0.9]).tolist() == pytest.approx([0.03, 0.03, 0.9])
    assert holm([0.5, 0.6]).tolist() == pytest.approx([1.0, 1.0])
    # nan stays nan and is not counted in m.
    adjusted = holm([0.01, np.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert holm([]).tolist() == []


def test_holm_against_a_direct_formula():
    rng = np.random.default_rng(2)
    p = rng.random(9) ** 3
    order = np.argsort(p)
    expected = np.empty_like(p)
    for rank, i in enumerate(order):
        expected[i] = min(1.0, max((len(p) - j) * p[order[j]] for j in range(rank + 1)))
    assert holm(p) == pytest.approx(expected)


def test_seed_spread():
    spread = seed_spread([0.5, 0.6, 0.7])
    assert (spread.mean, spread.std, spread.n) == pytest.approx((0.6, 0.1, 3))
    one = seed_spread([0.4])
    assert one.mean == 0.4 and np.isnan(one.std) and one.n == 1
    assert seed_spread([]).n == 0 and seed_spread([np.nan, 0.2]).n == 1
