"""Paired tests over per-query scores, the strategy-level (hierarchical) test, Holm's and Benjamini-Hochberg's
corrections and seed spread.

The report compares strategies with `strategy_test` (end of this module): seeds and questions resampled. The
question-level tests below compare two fixed score vectors (two checkpoints); they are kept as the building
block the strategy test reduces to with one seed a side, and as the reference the coverage test shows failing
when seeds vary.

How a macro-averaged score is tested. A setting's score is a macro average: the mean over groups (languages,
or ordered language pairs in the cross setting) of the mean over each group's queries. With unit i in group
g(i) and n_g units in group g, that is the weighted sum  T = sum_i w_i x_i  with  w_i = 1 / (G * n_g(i)).
Two systems are paired on the same units (group, query), so the difference of macro scores is
T = sum_i w_i (a_i - b_i).

Units are resampled in clusters. The same question appears in every language pair of the cross setting (and
in every query language of the multi setting): XQuAD-R's 110 pairs reuse 1,190 questions. Treating the
130,900 (pair, question) units as independent would understate the variance, so the weighted differences are
summed per cluster (the question id) first, D_c = sum_{i in c} w_i d_i, and T = sum_c D_c:
- randomisation (sign-flip) test: under H0 "the two systems are exchangeable on each question", each D_c
  keeps or flips its sign; p = share of |T*| >= |T| (all 2^C patterns when 2^C <= resamples, as scipy does,
  else (1 + hits) / (1 + resamples));
- percentile bootstrap: C clusters drawn with replacement, T* = sum of their D_c (group sizes are taken as
  fixed, the usual linearisation of a ratio of means); the interval is the (2.5, 97.5) percentiles of T*.
Without clusters every unit is its own cluster; without groups every unit has weight 1/n (a plain mean):
then both tests are the textbook paired tests (tests/report/test_stats.py checks them against scipy).

Everything is seeded, vectorised in numpy and chunked so that no array holds more than ~2M numbers."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
MAX_CHUNK_ELEMENTS = 2_000_000  # numbers per resampling chunk (16 MB of float64)


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison of a against b: difference = macro(a) - macro(b)."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int
    n_clusters: int
    n_resamples: int
    exact: bool  # True when the randomisation test enumerated every sign pattern


@dataclass(frozen=True)
class SeedSpread:
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for one seed
    n: int


def codes(labels) -> np.ndarray:
    """Integer codes 0..K-1 of a label array (pandas' hash-based factorize: np.unique sorts, 10x slower on the
    hundred thousand string labels of a cross setting)."""
    import pandas as pd

    return pd.factorize(np.asarray(labels))[0]


def macro_weights(groups: np.ndarray | None, n: int) -> np.ndarray:
    """w_i = 1 / (G * n_g(i)): the weights that turn a sum over units into the mean over groups of group means."""
    if groups is None:
        return np.full(n, 1.0 / n)
    inverse = codes(groups)
    counts = np.bincount(inverse)
    return 1.0 / (len(counts) * counts[inverse])


def cluster_sums(contributions: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Per-unit contributions summed per cluster (each unit its own cluster when clusters is None; integer
    clusters are taken as codes 0..K-1)."""
    if clusters is None:
        return np.asarray(contributions, dtype=float)
    clusters = np.asarray(clusters)
    inverse = clusters if clusters.dtype.kind in "iu" else codes(clusters)
    return np.bincount(inverse, weights=contributions)


def _cluster_differences(a, b, groups, clusters) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two 1-d arrays of one length, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no paired units to compare")
    return cluster_sums(macro_weights(groups, len(a)) * (a - b), clusters)


def _chunks(total: int, width: int):
    """Sizes of the resampling chunks: at most MAX_CHUNK_ELEMENTS numbers each."""
    step = max(1, MAX_CHUNK_ELEMENTS // max(width, 1))
    for start in range(0, total, step):
        yield min(step, total - start)


def bootstrap_sums(d: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """T* = the sum of len(d) values of d drawn with replacement, n_resamples times."""
    rng = np.random.default_rng(seed)
    out = [d[rng.integers(0, len(d), size=(size, len(d)))].sum(axis=1) for size in _chunks(n_resamples, len(d))]
    return np.concatenate(out)


def sign_flip_sums(d: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[np.ndarray, bool]:
    """The randomisation distribution of sum(d) under random signs: every pattern when 2^len(d) <= n_resamples
    (exact), else n_resamples random ones. Returns (sums, exact)."""
    total = d.sum()
    if len(d) < 63 and 2 ** len(d) <= n_resamples:
        flips = np.array(list(itertools.product((0.0, 1.0), repeat=len(d))))
        return total - 2.0 * flips @ d, True
    rng = np.random.default_rng(seed)
    out = [total - 2.0 * rng.integers(0, 2, size=(size, len(d))).astype(float) @ d
           for size in _chunks(n_resamples, len(d))]
    return np.concatenate(out), False


def _two_sided_p(null: np.ndarray, observed: float, exact: bool) -> float:
    # A relative tolerance, as scipy.stats.permutation_test, so that float noise does not break ties.
    gamma = abs(observed) * np.finfo(float).eps * 100
    hits = int(np.count_nonzero(np.abs(null) >= abs(observed) - gamma))
    return hits / len(null) if exact else (hits + 1) / (len(null) + 1)


def paired_randomisation(a, b, *, groups=None, clusters=None, n_resamples: int = N_RESAMPLES,
                         seed: int = 0) -> tuple[float, float, bool]:
    """Two-sided sign-flip test of macro(a) - macro(b). Returns (difference, p-value, exact)."""
    d = _cluster_differences(a, b, groups, clusters)
    observed = float(d.sum())
    null, exact = sign_flip_sums(d, n_resamples, seed)
    return observed, _two_sided_p(null, observed, exact), exact


def paired_bootstrap(a, b, *, groups=None, clusters=None, n_resamples: int = N_RESAMPLES, seed: int = 0,
                     confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Percentile-bootstrap interval of macro(a) - macro(b). Returns (difference, low, high)."""
    d = _cluster_differences(a, b, groups, clusters)
    low, high = _percentiles(bootstrap_sums(d, n_resamples, seed), confidence)
    return float(d.sum()), low, high


def bootstrap_interval(values, *, groups=None, clusters=None, n_resamples: int = N_RESAMPLES, seed: int = 0,
                       confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """One system's macro score with its percentile-bootstrap interval: (score, low, high)."""
    values = np.asarray(values, dtype=float)
    return paired_bootstrap(values, np.zeros_like(values), groups=groups, clusters=clusters,
                            n_resamples=n_resamples, seed=seed, confidence=confidence)


def _percentiles(sums: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(sums, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(a, b, *, groups=None, clusters=None, n_resamples: int = N_RESAMPLES, seed: int = 0,
                confidence: float = CONFIDENCE) -> PairedResult:
    """macro(a) - macro(b) with its bootstrap interval and the sign-flip p-value, on the same seed."""
    difference, low, high = paired_bootstrap(a, b, groups=groups, clusters=clusters, n_resamples=n_resamples,
                                             seed=seed, confidence=confidence)
    _, p, exact = paired_randomisation(a, b, groups=groups, clusters=clusters, n_resamples=n_resamples, seed=seed)
    n_clusters = len(a) if clusters is None else len(np.unique(np.asarray(clusters)))
    return PairedResult(difference, low, high, p, len(a), n_clusters, n_resamples, exact)


def _sorted_present(p_values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The p-values as floats, an all-nan result to fill, and the indices of the non-nan ones, smallest first."""
    p = np.asarray(p_values, dtype=float)
    present = np.flatnonzero(~np.isnan(p))
    return p, np.full_like(p, np.nan), present[np.argsort(p[present], kind="stable")]


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1); nan entries stay nan and do not count in m."""
    p, adjusted, order = _sorted_present(p_values)
    m = len(order)
    if m == 0:
        return adjusted
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def seed_spread(values) -> SeedSpread:
    """Mean, sample standard deviation and count of one score over seeds (nan values ignored)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return SeedSpread(float("nan"), float("nan"), 0)
    return SeedSpread(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v))


# ----------------------------------------------------------------------------- strategies, not checkpoints
#
# A strategy is a distribution over checkpoints (one per training seed); a test set is a sample of questions.
# The difference of two strategies' macro scores, T = mean_s macro(a_s) - mean_s macro(b_s), therefore varies
# with both the seeds drawn and the questions drawn. `hierarchical_bootstrap` resamples both levels:
# - seeds within each strategy, with replacement. With k seeds a with-replacement resample underestimates the
#   variance of a seed mean by (k-1)/k (2/3 at three seeds), so each seed's deviation from its strategy's mean
#   is first scaled by sqrt(k/(k-1)) (the usual small-sample adjustment of a bootstrap of a mean);
# - questions (clusters, shared by both strategies: the comparison stays paired), with the macro weights.
# The interval and p use the bootstrap's standard error with a t reference whose degrees of freedom come from
# Welch-Satterthwaite over the three variance components (seed spread of a, of b, questions). A percentile
# interval of a mean of three seeds is far too narrow (a t with 4 df has 2.78 where a normal has 1.96):
# tests/report/test_stats_hierarchical.py checks that this interval covers a known difference about 95% of the time.
# A side with one seed has no measurable seed spread: the result is then about checkpoints, and says so.


class SeedSides:
    """Seed counts and spreads of a result with `seed_values_a` / `seed_values_b` (each seed's macro score on
    the common units): StrategyResult here, compare.Comparison in the report."""

    seed_values_a: tuple[float, ...]
    seed_values_b: tuple[float, ...]

    @property
    def seeds_a(self) -> int:
        return len(self.seed_values_a)

    @property
    def seeds_b(self) -> int:
        return len(self.seed_values_b)

    @property
    def sd_a(self) -> float:
        return seed_spread(self.seed_values_a).std

    @property
    def sd_b(self) -> float:
        return seed_spread(self.seed_values_b).std


@dataclass(frozen=True)
class StrategyResult(SeedSides):
    """mean over seeds of macro(a) - mean over seeds of macro(b), on the units both strategies have."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float                      # standard deviation of the hierarchical bootstrap distribution
    df: float                      # Welch-Satterthwaite degrees of freedom of the t reference
    seed_values_a: tuple[float, ...]  # each seed's macro score on the common units
    seed_values_b: tuple[float, ...]
    welch_p: float                 # seed-level Welch t-test on those values; nan with fewer than 2 seeds a side
    n_units: int
    n_clusters: int
    n_resamples: int


def _seed_cluster_sums(values: np.ndarray, weights: np.ndarray, clusters) -> np.ndarray:
    """(seeds, units) scores -> (seeds, clusters) sums of the weighted scores."""
    return np.stack([cluster_sums(weights * row, clusters) for row in values])


def _widened(sums: np.ndarray) -> np.ndarray:
    """Seed deviations scaled by sqrt(k/(k-1)), so that resampling k seeds has the variance of a seed mean."""
    k = len(sums)
    if k < 2:
        return sums
    mean = sums.mean(axis=0)
    return mean + np.sqrt(k / (k - 1)) * (sums - mean)


def hierarchical_bootstrap(a, b, *, groups=None, clusters=None, n_resamples: int = N_RESAMPLES,
                           seed: int = 0) -> np.ndarray:
    """T* for (seeds, units) score matrices a and b paired on their units: seeds resampled within each side,
    clusters of units resampled once for both sides."""
    a, b = _seed_matrix(a), _seed_matrix(b)
    weights = macro_weights(groups, a.shape[1])
    clusters = None if clusters is None else codes(clusters)
    ca, cb = _widened(_seed_cluster_sums(a, weights, clusters)), _widened(_seed_cluster_sums(b, weights, clusters))
    n_clusters = ca.shape[1]
    rng = np.random.default_rng(seed)
    out = []
    for size in _chunks(n_resamples, n_clusters + len(ca) + len(cb)):
        counts = _draw_counts(rng, size, n_clusters)  # (size, C): how often each cluster was drawn
        seeds_a = _draw_counts(rng, size, len(ca)) / len(ca)
        seeds_b = _draw_counts(rng, size, len(cb)) / len(cb)
        # sum_c n_c * (mean over drawn seeds of a's cluster sums - the same for b)
        out.append(np.einsum("rs,sr->r", seeds_a, ca @ counts.T) - np.einsum("rs,sr->r", seeds_b, cb @ counts.T))
    return np.concatenate(out)


def _draw_counts(rng: np.random.Generator, size: int, k: int) -> np.ndarray:
    """size rows of how often each of k items is drawn in k draws with replacement (a multinomial, counted with
    one bincount: numpy's multinomial is a loop over rows)."""
    draws = rng.integers(0, k, size=(size, k)) + k * np.arange(size)[:, None]
    return np.bincount(draws.ravel(), minlength=size * k).reshape(size, k).astype(float)


def _seed_matrix(values) -> np.ndarray:
    m = np.asarray(values, dtype=float)
    m = m[None, :] if m.ndim == 1 else m
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"scores must be a (seeds, units) matrix with at least one unit, got shape {m.shape}")
    if np.isnan(m).any():
        raise ValueError("scores hold nan: compare only units every seed has")
    return m


def strategy_test(a, b, *, groups=None, clusters=None, n_resamples: int = N_RESAMPLES, seed: int = 0,
                  confidence: float = CONFIDENCE) -> StrategyResult:
    """The strategy-level comparison of (seeds, units) matrices a and b: difference, interval, p, and the seeds'
    own values with a Welch test beside them."""
    from scipy import stats as scipy_stats

    a, b = _seed_matrix(a), _seed_matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must share their units, got {a.shape[1]} and {b.shape[1]}")
    weights = macro_weights(groups, a.shape[1])
    clusters = None if clusters is None else codes(clusters)
    seeds_a, seeds_b = a @ weights, b @ weights
    difference = float(seeds_a.mean() - seeds_b.mean())
    boot = hierarchical_bootstrap(a, b, groups=groups, clusters=clusters, n_resamples=n_resamples, seed=seed)
    se = float(boot.std(ddof=1))
    df = satterthwaite_df(seeds_a, seeds_b, cluster_sums(weights * (a.mean(axis=0) - b.mean(axis=0)), clusters))
    if se > 1e-12:  # below float noise: the scores are identical everywhere
        half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * se
        p = float(2 * scipy_stats.t.sf(abs(difference) / se, df))
    else:
        half, p = 0.0, 1.0 if difference == 0 else 0.0
    welch = float("nan")
    if min(len(a), len(b)) > 1 and np.ptp(np.concatenate([seeds_a, seeds_b])) > 0:
        with warnings.catch_warnings():  # near-equal seeds: scipy warns about precision, the p stays usable
            warnings.simplefilter("ignore", RuntimeWarning)
            welch = scipy_stats.ttest_ind(seeds_a, seeds_b, equal_var=False).pvalue
    n_clusters = a.shape[1] if clusters is None else int(clusters.max()) + 1
    return StrategyResult(difference, difference - half, difference + half, p, se, df, tuple(map(float, seeds_a)),
                          tuple(map(float, seeds_b)), float(welch), a.shape[1], n_clusters, n_resamples)


def satterthwaite_df(seeds_a: np.ndarray, seeds_b: np.ndarray, cluster_differences: np.ndarray) -> float:
    """Degrees of freedom of var = s_a^2/k_a + s_b^2/k_b + (question variance of the sum over clusters): each
    component weighted by its own degrees of freedom (k - 1 seeds, C - 1 clusters). A side with one seed has no
    seed component."""
    components = []
    for seeds in (seeds_a, seeds_b):
        if len(seeds) > 1:
            components.append((np.var(seeds, ddof=1) / len(seeds), len(seeds) - 1))
    c = len(cluster_differences)
    if c > 1:
        components.append((c * np.var(cluster_differences, ddof=1), c - 1))
    total = sum(v for v, _ in components)
    denominator = sum(v * v / dof for v, dof in components)
    return float(total * total / denominator) if denominator > 0 else float("inf")


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1); nan entries stay nan."""
    p, adjusted, order = _sorted_present(p_values)
    m = len(order)
    if m == 0:
        return adjusted
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return adjusted
