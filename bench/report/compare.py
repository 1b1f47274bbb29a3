"""Scores per group and comparisons between strategies, the numbers every table, plot and claim reads.

A setting's score is the macro average of its tidy rows (languages, or language pairs in the cross setting),
as the paper reports it. A group with several seeds shows the mean over seeds and their spread. Two groups are
compared as strategies (stats.strategy_test): seeds resampled within each group, questions within the test
set, on the (language pair, query) units every seed of both groups has, clustered by question.

What a comparison can decide. A side counts when it is a strategy measured on at least MIN_SEEDS seeds, or an
untrained reference (a fixed model, no seed to vary). Fewer seeds compare checkpoints: shown, never counted.
Two models scored at different evaluation lengths or precisions on a dataset are not compared at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report import stats
from bench.report.data import LOWER_IS_BETTER, ReportData

ALPHA = 0.05             # significance level, after Holm within a family of comparisons
MIN_EFFECT = 0.005       # a difference counts when at least this large (scores in [0, 1]) ...
MIN_RELATIVE = 0.01      # ... or this share of the reference value (rank distance, in ranks)
MIN_SEEDS = 3            # seeds a trained side needs before its comparison may decide a verdict

# The conditions that decide a comparison, in the order they are checked.
NOT_TESTED = "not tested"
FEW_SEEDS = f"fewer than {MIN_SEEDS} seeds a side"
NOT_SIGNIFICANT = "not significant"
BELOW_THRESHOLD = "significant but below the effect threshold"
DECIDED = "decided"


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


def evaluation_setup(data: ReportData, group: str, dataset: str) -> tuple[set[int], set[str]]:
    """The evaluation lengths (tokens) and precisions a group's run records state on a dataset; BM25 and runs
    without a record state none."""
    s = data.scores
    part = s[(s["group"] == group) & (s["dataset"] == dataset)]
    lengths = {int(v) for v in part["eval_length"].dropna()} if "eval_length" in part else set()
    precisions = set(part["precision"]) - {"", "not recorded"} if "precision" in part else set()
    return lengths, precisions


def mismatch(data: ReportData, a: str, b: str, dataset: str) -> str:
    """Why a and b may not be compared on a dataset ('' when they may): scored at different lengths or
    precisions, or a group whose own seeds differ in either."""
    (la, pa), (lb, pb) = evaluation_setup(data, a, dataset), evaluation_setup(data, b, dataset)
    for what, x, y, unit in (("lengths", la, lb, " tokens"), ("precisions", pa, pb, "")):
        if len(x) > 1 or len(y) > 1 or (x and y and x != y):
            text = lambda v: "/".join(map(str, sorted(v))) + unit  # noqa: E731
            return f"scored at different {what} ({data.label(a)}: {text(x)}; {data.label(b)}: {text(y)})"
    return ""


def seed_units(data: ReportData, group: str, dataset: str, setting: str, metric: str,
               langs: frozenset[str] | None = None) -> pd.DataFrame:
    """A group's per-query scores, (query_lang, doc_lang, query_id) x model (one column per seed); only the
    units whose query or document language is in `langs` when given."""
    part = data.units(group, dataset, setting, metric)
    if langs is not None:
        part = part[part["query_lang"].astype(str).isin(langs) | part["doc_lang"].astype(str).isin(langs)]
    table = part.pivot_table(index=["query_lang", "doc_lang", "query_id"], columns="model", values="value",
                             observed=True, aggfunc="mean")
    # Plain string levels: the category codes of two groups need not agree.
    return table.set_axis(pd.MultiIndex.from_arrays(
        [table.index.get_level_values(i).astype(str) for i in range(3)], names=table.index.names))


def _groups_and_clusters(index: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    groups = (index.get_level_values("query_lang") + "-" + index.get_level_values("doc_lang")).to_numpy()
    return groups, index.get_level_values("query_id").to_numpy()


def score_interval(data: ReportData, group: str, dataset: str, setting: str, metric: str,
                   n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """A group's macro score (mean over seeds) with its 95% interval over seeds and questions; nans without
    per-query scores."""
    units = seed_units(data, group, dataset, setting, metric).dropna()
    if units.empty:
        return (np.nan, np.nan, np.nan)
    groups, clusters = _groups_and_clusters(units.index)
    values = units.to_numpy().T
    result = stats.strategy_test(values, np.zeros((1, values.shape[1])), groups=groups, clusters=clusters,
                                 n_resamples=n_resamples, seed=seed)
    return result.difference, result.ci_low, result.ci_high


@dataclass
class Comparison(stats.SeedSides):
    """One strategy-level comparison a - b on a (dataset, setting, metric), or on the units of some languages
    (`scope`). p_holm is set by the family the comparison belongs to, p_report by the report-wide check."""

    a: str
    b: str
    dataset: str
    setting: str
    metric: str
    scope: str = ""                  # "" for the whole setting, else which units (C11: languages unseen)
    a_score: float = np.nan          # mean over seeds of the macro score on the common units
    b_score: float = np.nan
    difference: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    p: float = np.nan
    p_holm: float = np.nan
    p_report: float = np.nan
    se: float = np.nan
    df: float = np.nan
    welch_p: float = np.nan
    seed_values_a: tuple = ()
    seed_values_b: tuple = ()
    fixed_a: bool = False            # an untrained reference: one fixed model, no seeds
    fixed_b: bool = False
    n_units: int = 0
    n_clusters: int = 0
    coverage: str = ""               # "" when both groups have every cell, else what the test rests on
    refused: str = ""                # why it was not tested (different lengths or precisions)
    threshold: float = MIN_EFFECT    # at the default effect threshold

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    @property
    def gain(self) -> float:
        """The difference in the direction where positive means a is better."""
        return -self.difference if self.lower_is_better else self.difference

    @property
    def tested(self) -> bool:
        return not np.isnan(self.p)

    @property
    def counts(self) -> bool:
        """May decide a verdict: tested, each side a fixed reference or a strategy with MIN_SEEDS seeds."""
        return self.tested and all(fixed or n >= MIN_SEEDS for fixed, n in ((self.fixed_a, self.seeds_a),
                                                                            (self.fixed_b, self.seeds_b)))

    def condition(self, alpha: float = ALPHA, scale: float = 1.0, p_field: str = "p_holm") -> str:
        """Which condition decides this comparison at significance `alpha` and `scale` times the default
        effect threshold, with the p-value in `p_field` (the family's Holm, or the report-wide one)."""
        if not self.tested:
            return NOT_TESTED
        if not self.counts:
            return FEW_SEEDS
        if not getattr(self, p_field) < alpha:
            return NOT_SIGNIFICANT
        if abs(self.gain) < self.threshold * scale:
            return BELOW_THRESHOLD
        return DECIDED

    def favours_at(self, alpha: float = ALPHA, scale: float = 1.0, p_field: str = "p_holm") -> int:
        """+1 / -1: a is decidedly better / worse; 0 otherwise."""
        if self.condition(alpha, scale, p_field) != DECIDED:
            return 0
        return 1 if self.gain > 0 else -1

    @property
    def favours(self) -> int:
        return self.favours_at()


def compare(data: ReportData, a: str, b: str, dataset: str, setting: str, metric: str,
            n_resamples: int = stats.N_RESAMPLES, seed: int = 0, relative_threshold: float | None = None,
            langs: frozenset[str] | None = None, scope: str = "") -> Comparison:
    """Strategy-level test of group a against group b on one (dataset, setting, metric), or on the units of
    `langs`; untested when the two were scored at different lengths or precisions, or share no units."""
    kinds = dict(zip(data.groups["group"], data.groups["kind"]))
    result = Comparison(a, b, dataset, setting, metric, scope=scope, fixed_a=kinds.get(a) == "reference",
                        fixed_b=kinds.get(b) == "reference")
    result.refused = mismatch(data, a, b, dataset)
    if result.refused:
        result.coverage = result.refused
        return result
    ua, ub = seed_units(data, a, dataset, setting, metric, langs), seed_units(data, b, dataset, setting, metric, langs)
    common = ua.dropna().index.intersection(ub.dropna().index)
    if len(common) == 0:
        result.coverage = "no per-query scores in common"
        return result
    xa, xb = ua.loc[common].to_numpy().T, ub.loc[common].to_numpy().T
    groups, clusters = _groups_and_clusters(common)
    test = stats.strategy_test(xa, xb, groups=groups, clusters=clusters, n_resamples=n_resamples, seed=seed)
    result.a_score, result.b_score = float(np.mean(test.seed_values_a)), float(np.mean(test.seed_values_b))
    for name in ("difference", "ci_low", "ci_high", "se", "df", "welch_p", "seed_values_a", "seed_values_b",
                 "n_units", "n_clusters"):
        setattr(result, name, getattr(test, name))
    result.p = test.p_value
    result.threshold = _threshold(metric, result.b_score, relative_threshold)
    cells = len(set(groups))
    expected = max(_cell_count(ua), _cell_count(ub))
    if cells < expected:
        result.coverage = f"{cells} of {expected} {'pairs' if setting == 'cross' else 'languages'}"
    return result


def _threshold(metric: str, reference: float, relative: float | None) -> float:
    if relative is not None:
        return abs(reference) * relative
    return abs(reference) * MIN_RELATIVE if metric in LOWER_IS_BETTER else MIN_EFFECT


def _cell_count(units: pd.DataFrame) -> int:
    return len(units.index.droplevel("query_id").unique()) if len(units) else 0


def family(comparisons: list[Comparison]) -> list[Comparison]:
    """Holm's correction across one family (one claim, or the research question) over the comparisons that may
    count (enough seeds a side): fills p_holm in place; the others keep a nan p_holm and only their own p."""
    counted = [c for c in comparisons if c.counts]
    for comparison, adjusted in zip(counted, stats.holm([c.p for c in counted])):
        comparison.p_holm = float(adjusted)
    return comparisons


def outcome(c: Comparison, labels: dict[str, str]) -> str:
    """What decided the comparison, in words: '<a> better', '<b> better', or the condition that stopped it."""
    condition = c.condition()
    if condition == NOT_TESTED:
        return "not tested" + (f": {c.coverage}" if c.coverage else "")
    if condition == FEW_SEEDS:
        direction = "a higher" if c.gain > 0 else "b higher"
        return f"not counted: {', '.join(_seed_text(c))} ({direction}, p {c.p:.3g} before correction)"
    if condition == DECIDED:
        return f"{labels.get(c.a if c.favours > 0 else c.b, c.a if c.favours > 0 else c.b)} better"
    return condition


def _seed_text(c: Comparison) -> list[str]:
    return [f"{'one checkpoint' if n == 1 else f'{n} seeds'} of {side}" for side, n, fixed in
            (("a", c.seeds_a, c.fixed_a), ("b", c.seeds_b, c.fixed_b)) if not fixed and n < MIN_SEEDS]
