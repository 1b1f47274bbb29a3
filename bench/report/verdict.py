"""Verdict machinery shared by the claim checks: the verdict record, the rules that turn a family of comparisons
into a verdict, the condition that decided it, the sensitivity of each verdict to the thresholds, and the
Markdown table of a family.

Rules over the comparisons that may count (compare.Comparison.counts: at least MIN_SEEDS seeds a side):
- "all" (C8, C10, C9's evidence): supported when every comparison is decided for the claim, refuted when any is
  decided against it, inconclusive otherwise;
- "majority" (C11): supported when a majority is decided for it and none against, refuted when a majority is
  decided against it, inconclusive otherwise;
- "answer" (the research question): hybrid better / mtl better / mixed / no detectable difference.
A comparison with fewer seeds is shown beside the others and never moves a verdict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from bench.report import stats
from bench.report.compare import (ALPHA, BELOW_THRESHOLD, DECIDED, FEW_SEEDS, MIN_EFFECT, NOT_SIGNIFICANT,
                                  NOT_TESTED, Comparison, compare, outcome)
from bench.report.data import ReportData
from bench.report.tables import DATASET_NAMES

SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "refuted", "inconclusive", "not testable here"
NOT_AS_STATED = "not testable as stated"
# The sensitivity grid (issue 11): effect thresholds for scores in [0, 1] and significance levels. A relative
# threshold (rank distance) is scaled by the same factor as the absolute one (0.5x, 1x, 2x).
SENSITIVITY_EFFECTS = (0.0025, 0.005, 0.01)
SENSITIVITY_ALPHAS = (0.05, 0.01)
CONDITION_ORDER = (DECIDED, BELOW_THRESHOLD, NOT_SIGNIFICANT, FEW_SEEDS, NOT_TESTED)


@dataclass
class Verdict:
    id: str
    claim: str
    verdict: str
    reason: str
    test: str = ""
    evidence: list[str] = field(default_factory=list)       # Markdown lines (tables, bullet points)
    comparisons: list[Comparison] = field(default_factory=list)
    rule: str = ""                  # "all", "majority", "answer" for empirical claims; "" otherwise
    side: str = "hybrid"            # whose advantage counts for the claim (a in every comparison) ...
    other: str = "the other side"   # ... and the other side, in words
    deciding: str = ""              # the condition that decided the verdict
    family: str = ""                # the multiple-comparison family, in words
    replication: str = ""           # C2, C4, C5, C6: what is true of this replication ...
    about_paper: str = ""           # ... and what the claim says about the paper that cannot be checked here
    source_verdict: str = ""
    source_confidence: str = ""


@dataclass
class Context:
    data: ReportData
    n_resamples: int = stats.N_RESAMPLES
    seed: int = 0
    _cache: dict = field(default_factory=dict)

    def compare(self, a: str, b: str, dataset: str, setting: str, metric: str, relative: float | None = None,
                langs: frozenset[str] | None = None, scope: str = "") -> Comparison:
        key = (a, b, dataset, setting, metric, relative, langs)
        if key not in self._cache:
            self._cache[key] = compare(self.data, a, b, dataset, setting, metric, self.n_resamples, self.seed,
                                       relative, langs, scope)
        return replace(self._cache[key])  # a copy: each family sets its own Holm-adjusted p


def decide(comparisons: list[Comparison], rule: str, alpha: float = ALPHA, scale: float = 1.0,
           p_field: str = "p_holm", side: str = "hybrid", other: str = "the other side") -> tuple[str, str, str]:
    """(verdict, deciding condition, counts in words) of a family under `rule` at one setting of the thresholds."""
    conditions = [c.condition(alpha, scale, p_field) for c in comparisons]
    favour = sum(c.favours_at(alpha, scale, p_field) > 0 for c in comparisons)
    against = sum(c.favours_at(alpha, scale, p_field) < 0 for c in comparisons)
    counted = sum(cond not in (FEW_SEEDS, NOT_TESTED) for cond in conditions)
    counts = condition_counts(conditions, favour, against, side, other)
    blocked = Counter(cond for cond in conditions if cond != DECIDED and cond not in (FEW_SEEDS, NOT_TESTED))
    blocking = "; ".join(f"{cond} ({n})" for cond, n in sorted(blocked.items(), key=lambda x: -x[1]))
    if counted == 0:
        return INCONCLUSIVE, f"no comparison may count ({_first(conditions)})", counts
    if rule == "answer":
        if favour == counted:
            return f"{side} better", DECIDED, counts
        if against == counted:
            return f"{other} better", DECIDED, counts
        if favour and against:
            return "mixed", f"{DECIDED} both ways", counts
        if favour or against:  # one way where decided, nothing detectable elsewhere
            who, n = (side, favour) if favour else (other, against)
            return f"{who} better in {n} of {counted}", f"{DECIDED}; elsewhere {blocking}", counts
        return "no detectable difference", blocking, counts
    if rule == "all":
        if against:
            return REFUTED, DECIDED + f" ({against} against)", counts
        if favour == len(comparisons):
            return SUPPORTED, DECIDED, counts
        return INCONCLUSIVE, blocking or _first(conditions), counts
    if against > counted / 2:
        return REFUTED, DECIDED + f" ({against} of {counted} against)", counts
    if favour > counted / 2 and not against:
        return SUPPORTED, DECIDED + f" ({favour} of {counted} for)", counts
    return INCONCLUSIVE, (f"{DECIDED} against in {against}; " if against else "") + (blocking or "no majority"), \
        counts


def _first(conditions: list[str]) -> str:
    left = [c for c in CONDITION_ORDER if c in conditions]
    return left[-1] if left else NOT_TESTED


def condition_counts(conditions: list[str], favour: int, against: int, side: str, other: str) -> str:
    """'2 decided for hybrid, 1 decided against (mtl better), 3 not significant, ...' over a family."""
    counter = Counter(conditions)
    parts = [f"{favour} decided for {side}", f"{against} decided against"]
    parts += [f"{counter[c]} {c}" for c in (BELOW_THRESHOLD, NOT_SIGNIFICANT) if counter[c]]
    if counter[FEW_SEEDS]:
        parts.append(f"{counter[FEW_SEEDS]} with {FEW_SEEDS} (shown, not counted)")
    if counter[NOT_TESTED]:
        parts.append(f"{counter[NOT_TESTED]} not tested")
    return f"of {len(conditions)} comparison{'' if len(conditions) == 1 else 's'}: " + ", ".join(parts)


def apply_rule(verdict: Verdict) -> Verdict:
    """Fills the verdict, its deciding condition and its reason from the comparisons at the default thresholds."""
    result, deciding, counts = decide(verdict.comparisons, verdict.rule, side=verdict.side, other=verdict.other)
    verdict.verdict, verdict.deciding = result, deciding
    verdict.reason = f"deciding condition: {deciding}; {counts}"
    return verdict


def sensitivity(verdicts: list[Verdict]) -> tuple[list[str], list[str]]:
    """A Markdown table of each empirical verdict at every (effect threshold, alpha) of the grid and under the
    report-wide Holm correction; a verdict that differs from the default is marked ⚑. Returns (table, flips)."""
    cells = [(e, a) for e in SENSITIVITY_EFFECTS for a in SENSITIVITY_ALPHAS]
    header = ["claim", *[f"effect {e:g}, α {a:g}" for e, a in cells], "report-wide Holm (default thresholds)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    flips = []
    for v in verdicts:
        if not v.rule or not v.comparisons:
            continue
        default = decide(v.comparisons, v.rule, side=v.side, other=v.other)[0]
        row = []
        for effect, alpha in [*cells, (MIN_EFFECT, ALPHA)]:
            p_field = "p_report" if len(row) == len(cells) else "p_holm"
            value = decide(v.comparisons, v.rule, alpha, effect / MIN_EFFECT, p_field, v.side, v.other)[0]
            if value != default:
                flips.append(f"{v.id}: {default} → {value} at "
                             + ("the report-wide Holm correction" if p_field == "p_report"
                                else f"effect {effect:g}, α {alpha:g}"))
                value = f"⚑ {value}"
            row.append(value)
        name = v.id + (" (me5-small evidence)" if v.verdict == NOT_AS_STATED else "")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return lines, flips


def comparison_lines(comparisons: list[Comparison], data: ReportData) -> list[str]:
    """A Markdown table of a family: what was compared, each side's seeds, the difference with its hierarchical
    95% interval, p (before and after Holm), the seed-level Welch p and what decided it."""
    if not comparisons:
        return []
    labels = dict(zip(data.groups["group"], data.groups["label"]))
    lines = ["| a | b | dataset | setting | metric | a: mean (seeds) | b: mean (seeds) | a − b [95% CI] | p | "
             "p (Holm) | Welch p (seeds) | outcome |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in comparisons:
        digits = 1 if c.metric == "rank_distance" else 4

        def side(score: float, values: tuple, fixed: bool) -> str:
            if np.isnan(score):
                return "–"
            seeds = "fixed model" if fixed else ", ".join(f"{v:.{digits}f}" for v in values)
            return f"{score:.{digits}f} ({seeds})"

        diff = "–" if np.isnan(c.difference) else \
            f"{c.difference:+.{digits}f} [{c.ci_low:+.{digits}f}, {c.ci_high:+.{digits}f}]"
        fmt = lambda p: "–" if np.isnan(p) else f"{p:.4f}"  # noqa: E731
        setting = c.setting + (f", {c.scope}" if c.scope else "")
        lines.append(f"| {data.label(c.a)} | {data.label(c.b)} | {DATASET_NAMES.get(c.dataset, c.dataset)} | "
                     f"{setting} | {c.metric} | {side(c.a_score, c.seed_values_a, c.fixed_a)} | "
                     f"{side(c.b_score, c.seed_values_b, c.fixed_b)} | {diff} | {fmt(c.p)} | {fmt(c.p_holm)} | "
                     f"{fmt(c.welch_p)} | {outcome(c, labels)}"
                     f"{' (' + c.coverage + ')' if c.coverage and c.tested else ''} |")
    return lines


def thresholds_text(comparisons: list[Comparison]) -> str:
    text = f"Holm-adjusted p < {ALPHA} and |difference| ≥ {MIN_EFFECT}"
    if any(c.metric == "rank_distance" for c in comparisons):
        text += " (rank distance: a share of the reference's value)"
    return text + ", each side with at least 3 seeds (or a fixed untrained model)"
