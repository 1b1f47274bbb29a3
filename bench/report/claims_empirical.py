"""The research question and the empirical claims (C8-C11), tested at the level of strategies, plus the BEIR
check of fine-tuning against the untrained base scored at the same length.

Each claim is one multiple-comparison family (Holm within it, over the comparisons with at least 3 seeds a
side); verdict.py turns a family into a verdict and names the condition that decided it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bench.protocol import DEFAULT_ALPHA, DEFAULT_BEIR as BEIR, LAREQA_SETS as LAREQA, SETTINGS
from bench.report.compare import Comparison, family
from bench.report.data import ReportData
from bench.report.tables import DATASET_NAMES
from bench.report.verdict import (NOT_AS_STATED, NOT_TESTABLE, Context, Verdict, apply_rule, comparison_lines,
                                  thresholds_text)
from bench.train.trainers import uses_alpha

SUBSTANTIAL = 0.10          # C10: a "substantial" reduction of rank distance is at least 10%
BASELINES = ("xx-mono", "xy")
STRATEGY_TEST = ("strategy-level test: hierarchical bootstrap over seeds (within each strategy) and questions "
                 "(clustered across languages), 95% interval and p from its standard error with a t reference; "
                 "each seed's score and a seed-level Welch p beside it")


# --------------------------------------------------------------------------------------------- setups


def setups(data: ReportData) -> list[tuple[str, str]]:
    """(base model, training data) combinations of the trained groups."""
    trained = data.trained_groups()
    return sorted(set(zip(trained["base_model"], trained["train_data"])))


def group_of(data: ReportData, trainer: str, base: str, train_data: str) -> str | None:
    """The group of a trainer in a setup; for hybrid the default alpha (else the one with most seeds)."""
    trained = data.trained_groups(trainer)
    part = trained[(trained["base_model"] == base) & (trained["train_data"] == train_data)]
    if part.empty:
        return None
    if uses_alpha(trainer) and len(part) > 1:
        default = part[np.isclose(part["alpha"].astype(float), DEFAULT_ALPHA)]
        part = default if len(default) else part.assign(n=part["seeds"].map(len)).sort_values("n", ascending=False)
    return str(part.iloc[0]["group"])


def eval_datasets(data: ReportData, groups: list[str], train_data: str, candidates) -> list[str]:
    """Datasets every group was scored on, in `candidates` order, never the training set itself."""
    s = data.scores
    have = [set(s.loc[s["group"] == g, "dataset"]) for g in groups]
    return [d for d in candidates if d != train_data and all(d in h for h in have)]


def setup_caveat(data: ReportData, base: str, train_data: str) -> str:
    """Where this setup differs from the paper's, from the manifests: base model, training data, steps."""
    steps = sorted({int(m.get("options", {}).get("steps", m.get("steps", 0))) for m in data.manifests.values()
                    if m.get("base_model") == base and m.get("train_data") == train_data} - {0})
    step_text = f", {'/'.join(map(str, steps))} steps" if steps else ""
    return (f"our setup differs from the paper's: base model {base} (paper: XLM-R, LaBSE), trained on "
            f"{train_data}'s parallel QA and scored on other sets (paper: machine-translated QA data){step_text}")


def _has(data: ReportData, group: str, dataset: str, setting: str) -> bool:
    s = data.scores
    return bool(((s["group"] == group) & (s["dataset"] == dataset) & (s["setting"] == setting)).any())


def _where(data: ReportData, comparisons: list[Comparison]) -> str:
    """Where the comparisons were made; by training direction when there are several (SciFact is scored after
    training on either set)."""
    def place(c: Comparison) -> str:
        return f"{DATASET_NAMES.get(c.dataset, c.dataset)} {c.setting if c.dataset in LAREQA else ''}".strip()

    def trained_on(c: Comparison) -> str:
        return str(data.group_row(c.a)["train_data"])

    directions = list(dict.fromkeys(trained_on(c) for c in comparisons))
    if len(directions) < 2:
        return ", ".join(place(c) for c in comparisons)
    return "; ".join(", ".join(place(c) for c in comparisons if trained_on(c) == d)
                     + f" after training on {DATASET_NAMES.get(d, d)}" for d in directions)


def _finish(ctx: Context, verdict: Verdict, caveats: list[str], what: str) -> Verdict:
    """Holm over the family, the rule's verdict, the evidence table and the test in words."""
    family(verdict.comparisons)
    counted = sum(c.counts for c in verdict.comparisons)
    if verdict.comparisons:
        verdict.family = (f"{verdict.id}: {len(verdict.comparisons)} comparison(s), Holm over the {counted} that "
                          "may count")
    verdict.test = (f"{what}; {STRATEGY_TEST}; Holm over the {counted} comparisons with enough seeds; counts when "
                    + thresholds_text(verdict.comparisons))
    if not verdict.comparisons:
        verdict.verdict = NOT_TESTABLE
        verdict.reason = "no runs of hybrid beside the strategies it is compared with"
        verdict.evidence = [f"- {c}" for c in caveats if c]
        return verdict
    apply_rule(verdict)
    verdict.evidence = [*comparison_lines(verdict.comparisons, ctx.data), ""] + \
        [f"- {c}" for c in dict.fromkeys(caveats) if c]
    return verdict


# ------------------------------------------------------------------------------------ research question


def research_question(ctx: Context) -> Verdict:
    """hybrid against mtl on BEIR (nDCG@10) and on the held-out LAReQA set in every setting (mAP)."""
    data = ctx.data
    verdict = Verdict("RQ", "", "", "", rule="answer", other="mtl")
    caveats, missing = [], []
    for base, train_data in setups(data):
        hybrid, mtl = group_of(data, "hybrid", base, train_data), group_of(data, "mtl", base, train_data)
        if hybrid is None or mtl is None:
            lacking = " or ".join(t for t, g in (("hybrid", hybrid), ("mtl", mtl)) if g is None)
            missing.append(f"{base} on {train_data}: no runs of {lacking}")
            continue
        caveats += [setup_caveat(data, base, train_data), mtl_budget(data, mtl)]
        for dataset in eval_datasets(data, [hybrid, mtl], train_data, LAREQA):
            verdict.comparisons += [ctx.compare(hybrid, mtl, dataset, s, "map") for s in SETTINGS
                                    if _has(data, mtl, dataset, s)]
        for dataset in eval_datasets(data, [hybrid, mtl], train_data, BEIR):
            verdict.comparisons.append(ctx.compare(hybrid, mtl, dataset, "mono", "ndcg@10"))
    if not verdict.comparisons:
        reason = "; ".join(missing) if missing else "no trained runs in this experiment"
        verdict.verdict, verdict.reason = NOT_TESTABLE, f"not answerable yet: {reason}"
        return verdict
    _finish(ctx, verdict, [*caveats, *missing], "hybrid − mtl, LAReQA mAP per setting and BEIR nDCG@10")
    better = [c for c in verdict.comparisons if c.favours > 0]
    worse = [c for c in verdict.comparisons if c.favours < 0]
    verdict.reason += (f". Hybrid decidedly better: {_where(data, better) or 'nowhere'}; mtl decidedly better: "
                       f"{_where(data, worse) or 'nowhere'}")
    return verdict


def mtl_budget(data: ReportData, group: str) -> str:
    """'' when mtl saw hybrid's training pairs per optimiser step; else how many times as many it saw, which
    hybrid − mtl then mixes with the strategy. Read from its manifests: `pairs_per_step` against the batch size
    where recorded (the same-budget mtl splits one batch of pairs between its tasks), else every batch counted
    as a full one (manifests from before pairs were recorded)."""
    ratios = set()
    for model in data.group_row(group)["models"]:
        manifest = data.manifests.get(model) or {}
        batches, options = manifest.get("batches") or {}, manifest.get("options") or {}
        per_step, batch_size = batches.get("pairs_per_step") or {}, int(options.get("batch_size") or 0)
        counts, steps = batches.get("counts") or {}, int(options.get("steps") or manifest.get("steps") or 0)
        if per_step and batch_size:
            ratios.add(round(sum(per_step.values()) / batch_size, 2))
        elif counts and steps:
            ratios.add(round(sum(counts.values()) / steps, 2))
    many = sorted(r for r in ratios if r > 1)
    if not many:
        return ""
    times = "/".join(f"{r:g}" for r in many)
    return (f"{data.label(group)} saw {times}x hybrid's training pairs per optimiser step (its manifests' batch "
            f"records), so hybrid − mtl mixes the strategy with {times} times the training pairs")


# ------------------------------------------------------------------------------- empirical (C8-C11)


def _others(data: ReportData, hybrid: str, base: str, train_data: str) -> list[str]:
    trained = data.trained_groups()
    return [g for g in trained["group"] if g != hybrid and data.group_row(g)["base_model"] == base
            and data.group_row(g)["train_data"] == train_data and data.group_row(g)["trainer"] != "hybrid"]


def _hybrid_and_baselines(data: ReportData) -> Iterator[tuple[str, str, str, list[str]]]:
    """(base, training set, hybrid's group, the baselines' groups) for each setup with hybrid and a baseline."""
    for base, train_data in setups(data):
        hybrid = group_of(data, "hybrid", base, train_data)
        baselines = [g for g in (group_of(data, t, base, train_data) for t in BASELINES) if g]
        if hybrid is not None and baselines:
            yield base, train_data, hybrid, baselines


def c8_best_multilingual(ctx: Context) -> Verdict:
    """hybrid against every other trained strategy in the multi setting (mAP)."""
    data = ctx.data
    verdict, caveats = Verdict("C8", "", "", "", rule="all"), []
    for base, train_data in setups(data):
        hybrid = group_of(data, "hybrid", base, train_data)
        if hybrid is None:
            continue
        others = _others(data, hybrid, base, train_data)
        for dataset in eval_datasets(data, [hybrid], train_data, LAREQA):
            verdict.comparisons += [ctx.compare(hybrid, o, dataset, "multi", "map") for o in others
                                    if _has(data, o, dataset, "multi")]
        if others:
            caveats.append(setup_caveat(data, base, train_data))
    _finish(ctx, verdict, caveats, "hybrid − each other trained strategy, multi setting mAP")
    verdict.evidence.append(f"- the paper's own tables: {_paper_hybrid_best(ctx, ('multi',))}")
    return verdict


def c9_better_than_baselines(ctx: Context) -> Verdict:
    """Names XLM-R and LaBSE: without runs of either it is not testable as stated; our evidence on another base
    is shown beside it (tested the same way, deciding nothing)."""
    data = ctx.data
    verdict, caveats = Verdict("C9", "", "", "", rule="all"), []
    for base, train_data, hybrid, baselines in _hybrid_and_baselines(data):
        caveats.append(setup_caveat(data, base, train_data))
        for dataset in eval_datasets(data, [hybrid], train_data, LAREQA):
            verdict.comparisons += [ctx.compare(hybrid, b, dataset, s, "map") for b in baselines for s in SETTINGS
                                    if _has(data, b, dataset, s)]
    _finish(ctx, verdict, caveats, "hybrid − X-X-mono and hybrid − X-Y, mAP in the mono, cross and multi settings")
    bases = sorted({b for b, _ in setups(data)})
    paper = _paper_hybrid_best(ctx, SETTINGS)
    verdict.evidence.append(f"- the paper's own tables (XLM-R and LaBSE): {paper}")
    if {"xlm-r", "labse"} <= set(bases):
        return verdict
    evidence_verdict = verdict.verdict if verdict.comparisons else "none"
    evidence = (f"evidence on {', '.join(bases)} (another base): {verdict.verdict}, {verdict.reason}"
                if verdict.comparisons else "no runs of hybrid beside X-X-mono or X-Y here")
    verdict.replication = evidence
    verdict.about_paper = f"XLM-R and LaBSE are not available here; the paper's own numbers: {paper}"
    verdict.verdict = NOT_AS_STATED
    verdict.reason = ("the claim names XLM-R and LaBSE, neither run here; beside it: our evidence on "
                      f"{', '.join(bases) or 'no base'} ({evidence_verdict}) and the paper's own numbers")
    return verdict


def _paper_hybrid_best(ctx: Context, settings) -> str:
    """How often the paper's reported macro mAP puts hybrid above both baselines (its Tables 3-6)."""
    r = ctx.data.reported
    if r.empty:
        return "not available"
    means = r[(r["language"] == "mean") & (r["metric"] == "map") & r["setting"].isin(settings)]
    cells = means.pivot_table(index=["base_model", "dataset", "setting"], columns="strategy", values="value")
    if cells.empty or not {"hybrid", *BASELINES} <= set(cells.columns):
        return "not available"
    margin = cells["hybrid"] - cells[list(BASELINES)].max(axis=1)
    listed = ", ".join(f"{b} {d} {s} {m:+.4f}" for (b, d, s), m in margin.items())
    return (f"hybrid has the highest mean mAP in {int((margin > 0).sum())} of {len(margin)} (base model, dataset, "
            f"setting) cells; hybrid minus the better baseline: {listed} (no seeds or tests reported)")


def c10_language_bias(ctx: Context) -> Verdict:
    data = ctx.data
    verdict, caveats = Verdict("C10", "", "", "", rule="all"), []
    for base, train_data in setups(data):
        hybrid, mono = group_of(data, "hybrid", base, train_data), group_of(data, "xx-mono", base, train_data)
        if hybrid is None or mono is None:
            continue
        caveats.append(setup_caveat(data, base, train_data))
        for dataset in eval_datasets(data, [hybrid, mono], train_data, LAREQA):
            if _has(data, hybrid, dataset, "multi"):
                verdict.comparisons.append(ctx.compare(hybrid, mono, dataset, "multi", "rank_distance",
                                                       relative=SUBSTANTIAL))
    _finish(ctx, verdict, caveats, f"hybrid − X-X-mono rank distance (multi setting; lower is better); "
            f"'substantially' = a reduction of at least {SUBSTANTIAL:.0%} of X-X-mono's value")
    for c in verdict.comparisons:
        if c.tested:
            low, high = sorted((-c.ci_high / c.b_score, -c.ci_low / c.b_score))
            verdict.evidence.append(f"- {DATASET_NAMES.get(c.dataset, c.dataset)}: reduction "
                                    f"{-c.difference / c.b_score:.1%} [95% CI {low:.1%}, {high:.1%}] of X-X-mono's "
                                    f"{c.b_score:.1f}")
    verdict.evidence.append(f"- the paper's own tables: {_paper_bias_reduction(ctx)}")
    return verdict


def _paper_bias_reduction(ctx: Context) -> str:
    r = ctx.data.reported
    if r.empty:
        return "not available"
    means = r[(r["language"] == "mean") & (r["metric"] == "rank_distance")]
    cells = means.pivot_table(index=["base_model", "dataset"], columns="strategy", values="value")
    if cells.empty or not {"hybrid", "xx-mono"} <= set(cells.columns):
        return "not available"
    reduction = 1 - cells["hybrid"] / cells["xx-mono"]
    return "hybrid's rank distance is lower than X-X-mono's by " + ", ".join(
        f"{v:.0%} ({b} {d})" for (b, d), v in reduction.items())


def c11_zero_shot_languages(ctx: Context) -> Verdict:
    """hybrid against X-X-mono and X-Y on the languages unseen in fine-tuning, in every setting: units whose
    query or document language is unseen (mono: that language; cross: pairs with an unseen side; multi: queries
    in it against the pool of all languages)."""
    data = ctx.data
    verdict, caveats = Verdict("C11", "", "", "", rule="majority"), []
    for base, train_data, hybrid, baselines in _hybrid_and_baselines(data):
        seen = _training_langs(ctx, hybrid)
        if not seen:
            caveats.append(f"{data.label(hybrid)}: training languages unknown (no manifest); not tested")
            continue
        for dataset in eval_datasets(data, [hybrid], train_data, LAREQA):
            unseen = frozenset(_languages(data, hybrid, dataset) - seen)
            if not unseen:
                caveats.append(f"after training on {DATASET_NAMES.get(train_data, train_data)}: every "
                               f"{DATASET_NAMES.get(dataset, dataset)} language was seen in training")
                continue
            scope = "unseen " + ", ".join(sorted(unseen))
            caveats.append(setup_caveat(data, base, train_data))
            verdict.comparisons += [ctx.compare(hybrid, b, dataset, s, "map", langs=unseen, scope=scope)
                                    for b in baselines for s in SETTINGS if _has(data, b, dataset, s)]
    if "miracl" not in set(data.scores["dataset"]):
        caveats.append("the paper's zero-shot evidence is MIRACL, which has no results here")
    return _finish(ctx, verdict, caveats, "hybrid − X-X-mono and hybrid − X-Y on the languages unseen in "
                   "fine-tuning, mAP in every setting (units with an unseen query or document language); supported "
                   "when decided for hybrid in a majority and against it in none")


def _languages(data: ReportData, group: str, dataset: str) -> set[str]:
    s = data.scores
    return set(s.loc[(s["group"] == group) & (s["dataset"] == dataset) & (s["setting"] == "mono"), "query_lang"])


def _training_langs(ctx: Context, group: str) -> set[str]:
    langs: set[str] = set()
    for model in ctx.data.group_row(group)["models"]:
        langs |= set((ctx.data.manifests.get(model) or {}).get("langs") or [])
    return langs


# ------------------------------------------------------------------------------- BEIR against the base


def matched_reference(data: ReportData, group: str, dataset: str) -> str | None:
    """The untrained base of a trained group scored on `dataset` at the group's own length and precision."""
    from bench.report.compare import mismatch

    base = data.group_row(group)["base_model"]
    s = data.scores
    for ref in data.groups.loc[data.groups["kind"] == "reference", "group"]:
        rows = s[(s["group"] == ref) & (s["dataset"] == dataset)]
        # The base itself: its checkpoint (the model name without a run's suffix) is the trained group's base.
        if len(rows) and base in (rows["checkpoint"].iloc[0], rows["base_model"].iloc[0]) \
                and not mismatch(data, group, ref, dataset):
            return str(ref)
    return None


def beir_against_base(ctx: Context) -> Verdict:
    """Each fine-tuned strategy against its untrained base on BEIR (nDCG@10), only where the base was scored at
    the same length and precision: the drop fine-tuning costs on out-of-domain English retrieval."""
    data = ctx.data
    verdict = Verdict("BEIR", "Does fine-tuning on parallel QA change BEIR nDCG@10 against the untrained base "
                      "scored at the same length?", "", "", rule="answer", side="fine-tuned", other="untrained base")
    unmatched = []
    for group in data.trained_groups()["group"]:
        for dataset in eval_datasets(data, [group], "", BEIR):
            reference = matched_reference(data, group, dataset)
            if reference is None:
                unmatched.append(f"{data.label(group)} on {DATASET_NAMES.get(dataset, dataset)}")
                continue
            verdict.comparisons.append(ctx.compare(group, reference, dataset, "mono", "ndcg@10"))
    notes = []
    if unmatched:
        notes.append("no untrained base scored at the same length and precision (refused, not tested): "
                     + "; ".join(unmatched))
    _finish(ctx, verdict, notes, "each fine-tuned strategy − its untrained base scored at the same length, "
            "BEIR nDCG@10")
    if not verdict.comparisons:
        verdict.reason = ("not tested: no untrained base was scored at the trained models' evaluation length "
                          "(a matched reference run such as me5-small-L128 is missing)")
    else:
        refs = sorted({data.label(c.b) for c in verdict.comparisons})
        verdict.reason += f". Matched reference: {', '.join(refs)}"
    return verdict
