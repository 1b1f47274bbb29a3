"""The strategy-level (hierarchical) test: seeds within each strategy and questions within the test set.

Coverage is checked on synthetic experiments where the truth is known: each replication draws new seeds (a seed
effect with a known standard deviation) and new questions (a question effect shared by both strategies, plus a
strategy-by-question effect), so the strategies' true difference is DELTA."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench.report import stats

DELTA = 0.01


def synthetic(rng, seeds=3, questions=40, langs=3, seed_sd=0.01, question_sd=0.01, noise_sd=0.01):
    """(seeds, units) score matrices for two strategies over `langs` groups x `questions` clusters (a question is
    asked in every language, so its units are one cluster)."""
    groups = np.repeat(np.arange(langs), questions)
    clusters = np.tile(np.arange(questions), langs)
    difficulty = rng.uniform(0.3, 0.7, questions)[clusters] + rng.normal(0, 0.05, len(groups))
    gain = rng.normal(0, question_sd, questions)[clusters]  # the strategy-by-question effect, mean 0

    def strategy(offset, k):
        return (difficulty + offset + rng.normal(0, seed_sd, (k, 1))
                + rng.normal(0, noise_sd, (k, len(groups))))

    return strategy(DELTA, seeds) + gain / 2, strategy(0.0, seeds) - gain / 2, groups, clusters


def coverage(seeds: int, seed_sd: float, replications: int = 300) -> tuple[float, float]:
    """Shares of replications whose 95% interval holds DELTA: (hierarchical, questions-only on seed means)."""
    rng = np.random.default_rng(seeds * 1000 + int(seed_sd * 1e4))
    hits_h = hits_q = 0
    for r in range(replications):
        a, b, groups, clusters = synthetic(rng, seeds=seeds, seed_sd=seed_sd)
        h = stats.strategy_test(a, b, groups=groups, clusters=clusters, n_resamples=400, seed=r)
        hits_h += h.ci_low <= DELTA <= h.ci_high
        _, low, high = stats.paired_bootstrap(a.mean(axis=0), b.mean(axis=0), groups=groups, clusters=clusters,
                                              n_resamples=400, seed=r)
        hits_q += low <= DELTA <= high
    return hits_h / replications, hits_q / replications


@pytest.mark.parametrize("seeds,seed_sd", [(3, 0.01), (5, 0.01), (3, 0.0)])
def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time(seeds, seed_sd):
    hierarchical, questions_only = coverage(seeds, seed_sd)
    # 300 replications: the standard error of a 95% coverage is 1.3 points.
    assert 0.915 <= hierarchical <= 0.985, hierarchical
    if seed_sd > 0:
        # The test over questions alone (the report's old one) ignores the seed spread and covers far less.
        assert questions_only < 0.80, questions_only


def test_seed_spread_alone_reduces_to_welch():
    # Every unit of a seed moves together: the only variance is between seeds, so the interval and p are
    # Welch's (scipy) up to bootstrap noise.
    rng = np.random.default_rng(3)
    units = 60
    a = 0.5 + rng.normal(0.01, 0.004, (3, 1)) + np.zeros((3, units))
    b = 0.5 + rng.normal(0.0, 0.004, (4, 1)) + np.zeros((4, units))
    result = stats.strategy_test(a, b, n_resamples=20_000, seed=1)
    welch = scipy_stats.ttest_ind(a[:, 0], b[:, 0], equal_var=False)
    se = np.sqrt(a[:, 0].var(ddof=1) / 3 + b[:, 0].var(ddof=1) / 4)
    assert result.difference == pytest.approx(a[:, 0].mean() - b[:, 0].mean())
    assert result.df == pytest.approx(welch.df, rel=1e-9)
    assert result.se == pytest.approx(se, rel=0.03)
    assert result.p_value == pytest.approx(welch.pvalue, abs=0.01)
    assert result.welch_p == pytest.approx(welch.pvalue)
    assert result.seed_values_a == pytest.approx(tuple(a[:, 0]))


def test_one_seed_a_side_is_the_paired_test_over_questions():
    rng = np.random.default_rng(5)
    a, b, groups, clusters = synthetic(rng, seeds=1, questions=80)
    result = stats.strategy_test(a, b, groups=groups, clusters=clusters, n_resamples=20_000, seed=2)
    difference, low, high = stats.paired_bootstrap(a[0], b[0], groups=groups, clusters=clusters, n_resamples=20_000,
                                                   seed=2)
    assert result.difference == pytest.approx(difference)
    assert result.df == pytest.approx(79)  # clusters - 1: no seed component
    assert (result.ci_high - result.ci_low) == pytest.approx(high - low, rel=0.05)
    assert np.isnan(result.welch_p) and result.seeds_a == result.seeds_b == 1


def test_bootstrap_distribution_by_hand_on_a_tiny_case():
    # Two clusters, two seeds a side, no widening surprises: every T* is one of the few sums the draws allow.
    a = np.array([[1.0, 0.0], [3.0, 2.0]])
    b = np.zeros((2, 2))
    draws = stats.hierarchical_bootstrap(a, b, n_resamples=4000, seed=0)
    # Widened seed rows: mean (1, 0.5)*... with k=2 the deviations double: seed sums (-1+... ) computed by hand.
    weights = np.full(2, 0.5)
    sums = np.stack([weights * row for row in a])
    widened = sums.mean(axis=0) + np.sqrt(2) * (sums - sums.mean(axis=0))
    possible = {round(float(sw @ widened @ n), 9) for sw in (np.array([1, 0]), np.array([0, 1]), np.array([.5, .5]))
                for n in (np.array([2, 0]), np.array([0, 2]), np.array([1, 1]))}
    assert {round(float(x), 9) for x in draws} <= possible
    assert draws.mean() == pytest.approx(a.mean(), abs=0.05)


def test_identical_strategies_are_not_different_and_bad_input_is_an_error():
    a = np.full((3, 10), 0.5)
    result = stats.strategy_test(a, a.copy(), n_resamples=100)
    assert result.difference == 0 and result.p_value == 1.0 and result.ci_low == result.ci_high == 0
    with pytest.raises(ValueError, match="share their units"):
        stats.strategy_test(a, np.zeros((3, 9)))
    with pytest.raises(ValueError, match="nan"):
        stats.strategy_test(np.full((2, 3), np.nan), np.zeros((2, 3)))


def test_benjamini_hochberg_against_scipy():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2, 0.001])
    ours = stats.benjamini_hochberg(p)
    present = ~np.isnan(p)
    assert np.isnan(ours[3])
    assert ours[present] == pytest.approx(scipy_stats.false_discovery_control(p[present], method="bh"))
