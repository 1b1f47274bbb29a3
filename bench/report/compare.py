"""Scores per group and paired comparisons between groups, the numbers every table, plot and claim reads.

A setting's score is the macro average of its tidy rows (languages, or language pairs in the cross setting),
as the paper reports it. A group with several seeds shows the mean over seeds and their spread. For a paired
test a group's per-query score is its mean over the seeds that scored the query; two groups are compared on
the (language pair, query) units both have, clustered by question (see stats.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report import stats
from bench.report.data import LOWER_IS_BETTER, ReportData

ALPHA = 0.05             # significance level, after Holm within a family of comparisons
MIN_EFFECT = 0.005       # a difference counts when at least this large (scores in [0, 1]) ...
MIN_RELATIVE = 0.01      # ... or this share of the reference value (rank distance, in ranks)


def macro_scores(data: ReportData) -> pd.DataFrame:
    """Per model (seed): the macro average over languages / pairs of each (dataset, setting, metric), with the
    number of cells it rests on and the most any model of the experiment has (fewer: partial)."""
    scores = data.scores
    if scores.empty:
        return pd.DataFrame(columns=["model", "group", "seed", "dataset", "setting", "metric", "value", "cells",
                                     "cells_expected"])
    keys = ["model", "group", "dataset", "setting", "metric"]
    macro = scores.groupby(keys, sort=False).agg(value=("value", "mean"), cells=("value", "size"),
                                                 seed=("seed", "first")).reset_index()
    macro["cells_expected"] = macro.groupby(["dataset", "setting", "metric"])["cells"].transform("max")
    return macro


def group_scores(data: ReportData) -> pd.DataFrame:
    """Per group: mean, sample std and number of seeds of each macro score; `partial` when a seed lacks cells."""
    macro = macro_scores(data)
    rows = []
    for (group, dataset, setting, metric), part in macro.groupby(["group", "dataset", "setting", "metric"],
                                                                   sort=False):
        spread = stats.seed_spread(part["value"])
        rows.append({"group": group, "dataset": dataset, "setting": setting, "metric": metric,
                     "mean": spread.mean, "std": spread.std, "n_seeds": spread.n,
                     "cells": int(part["cells"].min()), "cells_expected": int(part["cells_expected"].max()),
                     "partial": bool((part["cells"] < part["cells_expected"]).any())})
    return pd.DataFrame(rows, columns=["group", "dataset", "setting", "metric", "mean", "std", "n_seeds", "cells",
                                       "cells_expected", "partial"])


def unit_scores(data: ReportData, group: str, dataset: str, setting: str, metric: str,
                query_lang: str | None = None) -> pd.Series:
    """A group's per-query scores, (query_lang, doc_lang, query_id) -> mean over the seeds that have it;
    only one query language's when `query_lang` is given."""
    part = data.units(group, dataset, setting, metric)
    if query_lang is not None:
        part = part[part["query_lang"] == query_lang]
    units = part.groupby(["query_lang", "doc_lang", "query_id"], observed=True)["value"].mean()
    # Plain string levels: the category codes of two groups need not agree.
    return units.set_axis(pd.MultiIndex.from_arrays(
        [units.index.get_level_values(i).astype(str) for i in range(3)], names=units.index.names))


def _groups_and_clusters(index: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    groups = (index.get_level_values("query_lang") + "-" + index.get_level_values("doc_lang")).to_numpy()
    return groups, index.get_level_values("query_id").to_numpy()


def score_interval(data: ReportData, group: str, dataset: str, setting: str, metric: str,
                   n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """A group's macro score (seed-averaged per query) with its 95% bootstrap interval; nans without per-query
    scores."""
    units = unit_scores(data, group, dataset, setting, metric)
    if units.empty:
        return (np.nan, np.nan, np.nan)
    groups, clusters = _groups_and_clusters(units.index)
    return stats.bootstrap_interval(units.to_numpy(), groups=groups, clusters=clusters, n_resamples=n_resamples,
                                    seed=seed)


@dataclass
class Comparison:
    """One paired comparison a - b; `favours` is +1 / -1 / 0: a is better / worse / no detectable difference
    (Holm-adjusted p < ALPHA and a difference of at least the threshold, in the metric's better direction)."""

    a: str
    b: str
    dataset: str
    setting: str
    metric: str
    a_score: float = np.nan          # macro scores on the common units
    b_score: float = np.nan
    difference: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    p: float = np.nan
    p_holm: float = np.nan
    n_units: int = 0
    n_clusters: int = 0
    seeds_a: int = 0
    seeds_b: int = 0
    sd_a: float = np.nan              # sample std of the macro score over seeds (nan with one seed)
    sd_b: float = np.nan
    coverage: str = ""               # "" when both groups have every cell, else what the test rests on
    threshold: float = MIN_EFFECT

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    @property
    def gain(self) -> float:
        """The difference in the direction where positive means a is better."""
        return -self.difference if self.lower_is_better else self.difference

    @property
    def tested(self) -> bool:
        return not np.isnan(self.p_holm)

    @property
    def significant(self) -> bool:
        return self.tested and self.p_holm < ALPHA

    @property
    def favours(self) -> int:
        if not self.tested or self.p_holm >= ALPHA or abs(self.gain) < self.threshold:
            return 0
        return 1 if self.gain > 0 else -1


def compare(data: ReportData, a: str, b: str, dataset: str, setting: str, metric: str,
            n_resamples: int = stats.N_RESAMPLES, seed: int = 0, relative_threshold: float | None = None,
            query_lang: str | None = None) -> Comparison:
    """Paired test of group a against group b on one (dataset, setting, metric), or on one query language of
    it; untested (nan p) when the two share no per-query units."""
    ua = unit_scores(data, a, dataset, setting, metric, query_lang)
    ub = unit_scores(data, b, dataset, setting, metric, query_lang)
    common = ua.index.intersection(ub.index)
    seeds = _seed_counts(data, dataset, setting, metric)
    result = Comparison(a, b, dataset, setting, metric, seeds_a=seeds.get(a, 0), seeds_b=seeds.get(b, 0),
                        sd_a=_seed_sd(data, a, dataset, setting, metric, query_lang),
                        sd_b=_seed_sd(data, b, dataset, setting, metric, query_lang))
    if len(common) == 0:
        result.coverage = "no per-query scores in common"
        return result
    xa, xb = ua.loc[common].to_numpy(), ub.loc[common].to_numpy()
    groups, clusters = _groups_and_clusters(common)
    test = stats.paired_test(xa, xb, groups=groups, clusters=clusters, n_resamples=n_resamples, seed=seed)
    weights = stats.macro_weights(groups, len(xa))
    result.a_score, result.b_score = float(weights @ xa), float(weights @ xb)
    result.difference, result.ci_low, result.ci_high, result.p = test.difference, test.ci_low, test.ci_high, \
        test.p_value
    result.n_units, result.n_clusters = test.n_units, test.n_clusters
    result.threshold = _threshold(metric, result.b_score, relative_threshold)
    cells = len(set(groups))
    expected = max(_cell_count(ua), _cell_count(ub), _expected_cells(data, dataset, setting, metric, query_lang))
    if cells < expected:
        result.coverage = f"{cells} of {expected} {'pairs' if setting == 'cross' else 'languages'}"
    return result


def _threshold(metric: str, reference: float, relative: float | None) -> float:
    if relative is not None:
        return abs(reference) * relative
    return abs(reference) * MIN_RELATIVE if metric in LOWER_IS_BETTER else MIN_EFFECT


def _cell_count(units: pd.Series) -> int:
    return len(units.index.droplevel("query_id").unique()) if len(units) else 0


def _expected_cells(data: ReportData, dataset: str, setting: str, metric: str, query_lang: str | None) -> int:
    s = data.scores
    part = s[(s["dataset"] == dataset) & (s["setting"] == setting) & (s["metric"] == metric)]
    if query_lang is not None:
        part = part[part["query_lang"] == query_lang]
    return int(part.groupby("model").size().max()) if len(part) else 0


def _seed_sd(data: ReportData, group: str, dataset: str, setting: str, metric: str, query_lang: str | None) -> float:
    s = data.scores
    part = s[(s["group"] == group) & (s["dataset"] == dataset) & (s["setting"] == setting) & (s["metric"] == metric)]
    if query_lang is not None:
        part = part[part["query_lang"] == query_lang]
    return stats.seed_spread(part.groupby("model")["value"].mean()).std


def _seed_counts(data: ReportData, dataset: str, setting: str, metric: str) -> dict[str, int]:
    """group -> number of seeds scored here (0 for an untrained reference, which has no seed)."""
    s = data.scores
    part = s[(s["dataset"] == dataset) & (s["setting"] == setting) & (s["metric"] == metric)]
    return part.groupby("group")["seed"].nunique().to_dict()


def family(comparisons: list[Comparison]) -> list[Comparison]:
    """Holm's correction across one family (one table, one claim): fills p_holm in place."""
    for comparison, adjusted in zip(comparisons, stats.holm([c.p for c in comparisons])):
        comparison.p_holm = float(adjusted)
    return comparisons


def outcome(c: Comparison, labels: dict[str, str]) -> str:
    """'<a> better', '<b> better', 'significant, below the threshold', 'no detectable difference', 'not tested'."""
    if not c.tested:
        return "not tested" + (f": {c.coverage}" if c.coverage else "")
    if c.favours > 0:
        return f"{labels.get(c.a, c.a)} better"
    if c.favours < 0:
        return f"{labels.get(c.b, c.b)} better"
    return "significant, below the threshold" if c.significant else "no detectable difference"
