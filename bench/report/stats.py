"""Paired tests over per-query scores, Holm's correction and seed spread.

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
then both tests are the textbook paired tests (tests/test_stats.py checks them against scipy).

Everything is seeded, vectorised in numpy and chunked so that no array holds more than ~2M numbers."""

from __future__ import annotations

import itertools
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


def macro_weights(groups: np.ndarray | None, n: int) -> np.ndarray:
    """w_i = 1 / (G * n_g(i)): the weights that turn a sum over units into the mean over groups of group means."""
    if groups is None:
        return np.full(n, 1.0 / n)
    _, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return 1.0 / (len(counts) * counts[inverse])


def cluster_sums(contributions: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Per-unit contributions summed per cluster (each unit its own cluster when clusters is None)."""
    if clusters is None:
        return np.asarray(contributions, dtype=float)
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
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


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1); nan entries stay nan and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = len(present)
    if m == 0:
        return adjusted
    order = present[np.argsort(p[present], kind="stable")]
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
