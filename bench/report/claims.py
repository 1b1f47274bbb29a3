"""Claim verdicts: the research question and C1-C11 checked against an experiment's results, in the order the
report shows them, with the source report's own verdicts beside ours and a report-wide correction as a check.

Verdicts: supported / refuted / inconclusive / not testable here / not testable as stated (a claim about a setup
we cannot run, with our evidence beside it). The checks live in claims_protocol.py (C1-C7: method, data,
protocol, isolation) and claims_empirical.py (RQ, C8-C11: strategy-level tests); verdict.py holds the rules."""

from __future__ import annotations

import re

from bench.report import stats
from bench.report.claims_empirical import (beir_against_base, c8_best_multilingual, c9_better_than_baselines,
                                           c10_language_bias, c11_zero_shot_languages, research_question)
from bench.report.claims_protocol import (c1_mixed_batches, c2_datasets, c3_languages, c4_separate_sets,
                                          c5_no_samples_seen, c6_map_reported, c7_pairs)
from bench.report.compare import Comparison
from bench.report.data import CLAIMS_MD, ReportData
from bench.report.verdict import Context, Verdict

CHECKS = {
    "C1": c1_mixed_batches, "C2": c2_datasets, "C3": c3_languages, "C4": c4_separate_sets,
    "C5": c5_no_samples_seen, "C6": c6_map_reported, "C7": c7_pairs, "C8": c8_best_multilingual,
    "C9": c9_better_than_baselines, "C10": c10_language_bias, "C11": c11_zero_shot_languages,
}


def source_claims() -> tuple[str, dict[str, tuple[str, str, str]]]:
    """The research question and id -> (claim, the source report's verdict, its confidence) from claims.md."""
    text = CLAIMS_MD.read_text() if CLAIMS_MD.is_file() else ""
    question = ""
    match = re.search(r"## Research question\n(.+?)\n\n", text, re.S)
    if match:
        question = " ".join(match.group(1).split())
    claims = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"C\d+", cells[0]):
            claims[cells[0]] = (cells[1], cells[2], cells[3])
    return question, claims


def verdicts(data: ReportData, n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Verdict]:
    """The research question first, then C1-C11 with the source report's verdict beside each, then the BEIR
    check against the untrained base; every comparison also carries its report-wide Holm p (p_report)."""
    ctx = Context(data, n_resamples, seed)
    question, source = source_claims()
    out = [research_question(ctx)]
    out[0].claim = question
    for claim_id, check in CHECKS.items():
        verdict = check(ctx)
        text, report, confidence = source.get(claim_id, ("", "", ""))
        verdict.claim, verdict.source_verdict, verdict.source_confidence = text, report, confidence
        out.append(verdict)
    out.append(beir_against_base(ctx))
    report_wide(out)
    return out


def report_wide(results: list[Verdict]) -> list[Comparison]:
    """Holm over every distinct comparison that may count in the whole report (one test counted once, however
    many claims show it): fills p_report on every copy. A check on the per-family Holm, not the verdicts' basis."""
    key = lambda c: (c.a, c.b, c.dataset, c.setting, c.metric, c.scope)  # noqa: E731
    unique = {key(c): c.p for v in results for c in v.comparisons if c.counts}
    adjusted = dict(zip(unique, stats.holm(list(unique.values()))))
    for v in results:
        for c in v.comparisons:
            c.p_report = float(adjusted.get(key(c), float("nan")))
    return [c for v in results for c in v.comparisons]
