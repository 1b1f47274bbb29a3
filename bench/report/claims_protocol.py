"""Claims about the method, the data, the protocol and isolation (C1-C7), checked against the training
manifests, the tidy results and the leakage audit.

C2, C4, C5 and C6 are statements about the paper. What this replication did is checked; what the paper did
cannot be (its training data, its base models' training data and its runs are not here), so their verdict is
"not testable as stated", with the verdict on this replication beside it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.protocol import LAREQA_SETS as LAREQA
from bench.report.tables import DATASET_NAMES
from bench.report.verdict import INCONCLUSIVE, NOT_AS_STATED, NOT_TESTABLE, REFUTED, SUPPORTED, Context, Verdict

LEAK_SHARE = 0.001          # C5: overlaps up to 0.1% of an evaluation side count as incidental duplicates
EXPECTED_LANGS = {"xquad-r": 11, "mlqa-r": 7}          # C3, C7: the claims' own numbers
EXPECTED_PAIRS = {"xquad-r": 110, "mlqa-r": 42}
PAPER_DATASETS = ("xquad-r", "mlqa-r", "miracl")       # C2
# C5: what no audit here covers. The base model's own training data is outside every manifest; multilingual-e5
# was trained on, among much else, the train splits of MIRACL and Mr.TyDi (Wang et al. 2024, arXiv:2402.05672).
NOT_AUDITED = ("the base model's own training data (not in any manifest; multilingual-e5 was trained on, among "
               "others, the MIRACL and Mr.TyDi train splits, so a MIRACL score of it is not zero-shot)")


def split_verdict(verdict: Verdict, about_paper: str) -> Verdict:
    """A claim about the paper: the check above is about this replication; the claim itself is not testable as
    stated."""
    verdict.replication = f"{verdict.verdict}: {verdict.reason}"
    verdict.about_paper = about_paper
    verdict.verdict = NOT_AS_STATED
    verdict.reason = f"this replication: {verdict.replication}. The paper: {about_paper}"
    return verdict


# ------------------------------------------------------------------------------------- method (C1)


def c1_mixed_batches(ctx: Context) -> Verdict:
    """Hybrid runs' recorded batch kinds: both mono and cross batches, in the share alpha asks for."""
    from scipy.stats import binomtest

    hybrid = {m: man for m, man in ctx.data.manifests.items() if man.get("trainer") == "hybrid"}
    test = ("batch kinds recorded in each hybrid run's training manifest (batches.counts); the mono share against "
            "alpha with an exact two-sided binomial test")
    if not hybrid:
        return Verdict("C1", "", NOT_TESTABLE, "no training manifest of a hybrid run in this experiment", test)
    evidence = ["| model | alpha | mono batches | cross batches | mono share | binomial p (share = alpha) | "
                "pairs mono/cross | kinds agree across ranks |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    mixed = []
    for model, manifest in sorted(hybrid.items()):
        counts = (manifest.get("batches") or {}).get("counts") or {}
        mono = sum(v for k, v in counts.items() if k.split(":")[-1] == "mono")
        cross = sum(v for k, v in counts.items() if k.split(":")[-1] == "cross")
        alpha = float(manifest.get("alpha", 0.5))
        p = binomtest(mono, mono + cross, alpha).pvalue if mono + cross else np.nan
        pairs = manifest.get("data") or {}
        agree = (manifest.get("batches") or {}).get("kinds_agree_across_ranks")
        agree = "–" if agree is None else agree  # None: a single process
        evidence.append(f"| {model} | {alpha:g} | {mono} | {cross} | {mono / max(mono + cross, 1):.2f} | {p:.3f} | "
                        f"{pairs.get('mono_pairs', '–')}/{pairs.get('cross_pairs', '–')} | {agree} |")
        mixed.append(mono > 0 and cross > 0 or alpha in (0.0, 1.0))
    all_mixed = all(mixed)
    reason = (f"{sum(mixed)} of {len(mixed)} hybrid runs drew both monolingual and cross-lingual batches"
              + ("" if all_mixed else "; a run with 0 < alpha < 1 drew only one kind"))
    # alpha 0 or 1 is a pure baseline by construction, so it does not count against the claim.
    return Verdict("C1", "", SUPPORTED if all_mixed else REFUTED, reason, test, evidence)


# ------------------------------------------------------------------------------ data and protocol (C2, C3, C6, C7)


def _c2_replication(ctx: Context) -> Verdict:
    present = set(ctx.data.scores["dataset"])
    have = [d for d in PAPER_DATASETS if d in present]
    lacking = [d for d in PAPER_DATASETS if d not in present]
    test = "which of XQuAD-R, MLQA-R and MIRACL have results in this experiment"
    evidence = [f"- {DATASET_NAMES[d]}: {'evaluated' if d in present else 'no results'}" for d in PAPER_DATASETS]
    if not have:
        return Verdict("C2", "", NOT_TESTABLE, "none of the paper's sets was evaluated in this experiment", test,
                       evidence)
    if lacking:
        why = " (MIRACL needs its corpus, which the offline mirror lacks)" if "miracl" in lacking else ""
        return Verdict("C2", "", INCONCLUSIVE, f"{', '.join(DATASET_NAMES[d] for d in have)} evaluated here; "
                       f"{', '.join(DATASET_NAMES[d] for d in lacking)} not evaluated{why}", test, evidence)
    return Verdict("C2", "", SUPPORTED, "all three sets were evaluated with the paper's protocol", test, evidence)


def _observed(ctx: Context, dataset: str, setting: str) -> set:
    s = ctx.data.scores
    part = s[(s["dataset"] == dataset) & (s["setting"] == setting)]
    return set(zip(part["query_lang"], part["doc_lang"]))


def _lang_restriction(ctx: Context) -> list[str] | None:
    definition = ctx.data.definition or {}
    langs = ((definition.get("evaluation") or {}).get("lareqa") or {}).get("langs")
    return list(langs) if langs else None


def _count_verdict(observed: dict[str, int], expected: dict[str, int], what: str,
                   restricted: list[str] | None) -> tuple[str, str]:
    """Counts against the claim's numbers: more than claimed refutes; fewer is a cut or partial results."""
    if not observed:
        return NOT_TESTABLE, "no XQuAD-R or MLQA-R results in this experiment"
    parts, verdicts = [], []
    for dataset, n in observed.items():
        want = expected[dataset]
        parts.append(f"{DATASET_NAMES[dataset]}: {n} {what} (claim: {want})")
        verdicts.append(SUPPORTED if n == want else REFUTED if n > want else INCONCLUSIVE)
    lacking = [DATASET_NAMES[d] for d in expected if d not in observed]
    text = "; ".join(parts)
    if INCONCLUSIVE in verdicts:
        text += (f" (the experiment evaluates only {', '.join(restricted)})" if restricted
                 else " (fewer than claimed: results are partial)")
    if lacking:
        text += f"; {', '.join(lacking)} not evaluated here"
    if REFUTED in verdicts:
        return REFUTED, text
    if INCONCLUSIVE in verdicts or lacking:
        return INCONCLUSIVE, text
    return SUPPORTED, text


def c3_languages(ctx: Context) -> Verdict:
    observed = {d: len({q for q, _ in _observed(ctx, d, "mono")}) for d in LAREQA if _observed(ctx, d, "mono")}
    verdict, reason = _count_verdict(observed, EXPECTED_LANGS, "languages", _lang_restriction(ctx))
    evidence = [f"- {DATASET_NAMES[d]}: {', '.join(sorted({q for q, _ in _observed(ctx, d, 'mono')}))}; "
                f"{_parallel_share(ctx, d)}" for d in observed]
    return Verdict("C3", "", verdict, reason, "languages of the mono setting in the tidy results; question ids "
                   "shared across languages in the per-query scores (parallel questions)", evidence)


def _parallel_share(ctx: Context, dataset: str) -> str:
    pq = ctx.data.per_query
    part = pq[(pq["dataset"] == dataset) & (pq["setting"] == "mono")][["query_lang", "query_id"]].astype(str) \
        .drop_duplicates()
    if part.empty:
        return "no per-query scores"
    langs_per_question = part.groupby("query_id")["query_lang"].nunique()
    n_langs = part["query_lang"].nunique()
    return (f"{len(langs_per_question)} questions, {np.mean(langs_per_question >= 2):.0%} asked in two or more "
            f"languages, {np.mean(langs_per_question == n_langs):.0%} in all {n_langs}")


def _c6_replication(ctx: Context) -> Verdict:
    s = ctx.data.scores
    lareqa = s[s["dataset"].isin(LAREQA)]
    test = "metrics produced for every XQuAD-R / MLQA-R setting in the tidy results"
    if lareqa.empty:
        return Verdict("C6", "", NOT_TESTABLE, "no XQuAD-R or MLQA-R results in this experiment", test)
    by_setting = lareqa.groupby(["dataset", "setting"])["metric"].agg(lambda m: sorted(set(m)))
    evidence = [f"- {DATASET_NAMES[d]} {st}: {', '.join(m)}" for (d, st), m in by_setting.items()]
    lacking = [f"{d} {st}" for (d, st), m in by_setting.items() if "map" not in m]
    if lacking:
        return Verdict("C6", "", REFUTED, f"no mAP for {', '.join(lacking)}", test, evidence)
    return Verdict("C6", "", SUPPORTED, f"mAP (over the full ranking) is produced for all {len(by_setting)} "
                   f"(dataset, setting) cells evaluated", test, evidence)


def c7_pairs(ctx: Context) -> Verdict:
    cross = {d: _observed(ctx, d, "cross") for d in LAREQA if _observed(ctx, d, "cross")}
    mono = {d: _observed(ctx, d, "mono") for d in LAREQA if _observed(ctx, d, "mono")}
    restricted = _lang_restriction(ctx)
    v_cross, r_cross = _count_verdict({d: len(p) for d, p in cross.items()}, EXPECTED_PAIRS, "ordered cross pairs",
                                      restricted)
    v_mono, r_mono = _count_verdict({d: len(p) for d, p in mono.items()}, EXPECTED_LANGS, "mono pairs", restricted)
    evidence = []
    for d, pairs in cross.items():
        langs = {q for q, _ in pairs} | {x for _, x in pairs}
        self_pairs = sum(q == x for q, x in pairs)
        evidence.append(f"- {DATASET_NAMES[d]}: {len(pairs)} cross pairs over {len(langs)} languages "
                        f"(n(n−1) = {len(langs) * (len(langs) - 1)}), {self_pairs} with query = document language")
    order = [REFUTED, INCONCLUSIVE, NOT_TESTABLE, SUPPORTED]
    verdict = min((v_cross, v_mono), key=order.index)
    return Verdict("C7", "", verdict, f"cross: {r_cross}. mono: {r_mono}", "distinct (query language, document "
                   "language) pairs of the cross and mono settings in the tidy results", evidence)


# --------------------------------------------------------------------------------- isolation (C4, C5)


def _trained_evaluations(ctx: Context) -> dict[str, set[str]]:
    s = ctx.data.scores
    trained = s[s["trainer"] != "none"]
    return trained.groupby("model")["dataset"].agg(set).to_dict()


def _c4_replication(ctx: Context) -> Verdict:
    """Separate sets: no model scored on its training set, and no more than incidental text overlap."""
    evaluated = _trained_evaluations(ctx)
    test = ("each trained model's training set (manifest) against the sets it was scored on (tidy results), and "
            f"the leakage audit's largest overlap (see C5; up to {LEAK_SHARE:.1%} of a side counts as incidental)")
    if not evaluated:
        return Verdict("C4", "", NOT_TESTABLE, "no trained models in this experiment", test)
    evidence, own_set = [], []
    for model, datasets in sorted(evaluated.items()):
        train = ctx.data.manifests.get(model, {}).get("train_data") or _train_data(ctx, model)
        evidence.append(f"- {model}: trained on {train}; scored on {', '.join(sorted(datasets))}")
        if train in datasets:
            own_set.append(model)
    audit = leakage_audit(ctx)
    overlap = (f"largest text overlap {audit.worst:.3%} of an evaluation side" if audit.audited
               else "no leakage audit recorded")
    if own_set:
        return Verdict("C4", "", REFUTED, f"{len(own_set)} model(s) scored on their own training set: "
                       f"{', '.join(own_set)}; {overlap}", test, evidence)
    if audit.audited and audit.worst > LEAK_SHARE:
        return Verdict("C4", "", REFUTED, f"the sets are distinct by name but overlap in text: {overlap}", test,
                       evidence)
    return Verdict("C4", "", SUPPORTED, f"none of the {len(evaluated)} trained models was scored on its training "
                   f"set; {overlap} (our cross-dataset protocol; the paper's own separation is not checked here)",
                   test, evidence)


def _train_data(ctx: Context, model: str) -> str:
    s = ctx.data.scores
    return str(s.loc[s["model"] == model, "train_data"].iloc[0])


@dataclass
class LeakageAudit:
    rows: list[str]          # Markdown table rows, one per (model, evaluated set)
    worst: float             # the largest share of an evaluation side also found in training (normalised match)
    audited: int             # models with an audit
    not_audited: list[str]   # models, or (model, set) pairs, without one


def leakage_audit(ctx: Context) -> LeakageAudit:
    """The training manifests' leakage counts for every set each trained model was scored on."""
    evaluated = _trained_evaluations(ctx)
    audits = {m: (ctx.data.manifests.get(m) or {}).get("leakage") for m in evaluated}
    rows, worst, not_audited = [], 0.0, sorted(m for m, a in audits.items() if not a)
    for model, audit in sorted((m, a) for m, a in audits.items() if a):
        sets = audit.get("sets") or {}
        for dataset in sorted(evaluated[model]):
            entry = sets.get(dataset)
            if entry is None:
                not_audited.append(f"{model} on {dataset}")
                continue
            q, c = entry.get("questions", {}), entry.get("candidates", {})
            worst = max([worst] + [side.get("normalised", 0) / side["n"] for side in (q, c) if side.get("n")])
            rows.append(f"| {model} | {dataset} | {q.get('exact', 0)}/{q.get('normalised', 0)} of {q.get('n', 0)} | "
                        f"{c.get('exact', 0)}/{c.get('normalised', 0)} of {c.get('n', 0)} | "
                        f"{entry.get('examples', 0)} |")
    return LeakageAudit(rows, worst, sum(1 for a in audits.values() if a), not_audited)


def _c5_replication(ctx: Context) -> Verdict:
    test = (f"leakage audit in each training manifest: training texts equal (exactly, or after normalisation) to "
            f"an evaluation question or candidate; up to {LEAK_SHARE:.1%} of a side counts as incidental")
    audit = leakage_audit(ctx)
    if not audit.audited:
        return Verdict("C5", "", NOT_TESTABLE, "no leakage audit recorded for the trained models here "
                       "(no training manifests)", test)
    evidence = ["| model | set | questions exact/normalised of n | candidates exact/normalised of n | training "
                "examples touched |", "|---|---|---:|---:|---:|", *audit.rows]
    note = f"; no audit recorded for {', '.join(audit.not_audited)}" if audit.not_audited else ""
    if audit.worst > LEAK_SHARE:
        return Verdict("C5", "", REFUTED, f"up to {audit.worst:.2%} of an evaluation side also occurs in training "
                       f"(threshold {LEAK_SHARE:.1%}){note}", test, evidence)
    return Verdict("C5", "", INCONCLUSIVE if note else SUPPORTED,
                   f"at most {audit.worst:.3%} of any evaluation side occurs in training (exact or normalised; "
                   f"threshold {LEAK_SHARE:.1%}: incidental duplicates such as short sentences){note}", test, evidence)


def _reported_datasets(ctx: Context, metric: str | None = None) -> list[str]:
    r = ctx.data.reported
    if r.empty:
        return []
    part = r if metric is None else r[r["metric"] == metric]
    return sorted(set(part["dataset"]))


def c2_datasets(ctx: Context) -> Verdict:
    reported = _reported_datasets(ctx)
    return split_verdict(_c2_replication(ctx), "its runs are not repeated here; the numbers it reports (our "
                         f"transcription of its tables) cover {', '.join(reported) or 'no dataset'}")


def c4_separate_sets(ctx: Context) -> Verdict:
    return split_verdict(_c4_replication(ctx), "its training data (machine-translated QA pairs) is not available "
                         "offline, so its separation from the evaluation sets cannot be checked")


def c5_no_samples_seen(ctx: Context) -> Verdict:
    verdict = _c5_replication(ctx)
    verdict.reason += f"; not audited: {NOT_AUDITED}"
    verdict.evidence.append(f"- Not audited: {NOT_AUDITED}.")
    return split_verdict(verdict, "neither its training data (machine-translated QA) nor the training data of "
                         "its base models (XLM-R, LaBSE) is available here")


def c6_map_reported(ctx: Context) -> Verdict:
    reported = _reported_datasets(ctx, "map")
    return split_verdict(_c6_replication(ctx), "our transcription of its tables holds mAP for "
                         f"{', '.join(reported) or 'no dataset'}; the transcription, not the paper itself, is what "
                         "is checked here")
