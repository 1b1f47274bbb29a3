"""Claim verdicts: each of C1-C11 and the research question checked against an experiment's results.

Verdicts: supported / refuted / inconclusive / not testable here. Every verdict is computed from the loaded
results, manifests and the paper's reported numbers; nothing is decided in advance.

Empirical claims (C8-C11, the research question) rest on paired tests over queries (stats.py) with Holm's
correction within the claim's family of comparisons. A comparison counts for a side when its Holm-adjusted
p < 0.05 and the difference is at least the threshold: 0.005 for scores in [0, 1], 1% of the reference's
value for rank distance (10% for C10's "substantially"). Rules:
- "all" (C8, C9, C10): supported when every comparison counts for the claim, refuted when any counts
  against it, inconclusive otherwise;
- "majority" (C11): supported when a majority counts for it (and a majority of the languages unseen in
  training) and none against, refuted when a majority counts against it, inconclusive otherwise."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from bench.report import stats
from bench.report.compare import ALPHA, MIN_EFFECT, Comparison, compare, family, outcome
from bench.report.data import BEIR, CLAIMS_MD, LAREQA, ReportData
from bench.report.tables import DATASET_NAMES, SETTINGS

SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "refuted", "inconclusive", "not testable here"
LEAK_SHARE = 0.001          # C5: overlaps up to 0.1% of an evaluation side count as incidental duplicates
SUBSTANTIAL = 0.10          # C10: a "substantial" reduction of rank distance is at least 10%
EXPECTED_LANGS = {"xquad-r": 11, "mlqa-r": 7}          # C3, C7: the claims' own numbers
EXPECTED_PAIRS = {"xquad-r": 110, "mlqa-r": 42}
PAPER_DATASETS = ("xquad-r", "mlqa-r", "miracl")       # C2


@dataclass
class Verdict:
    id: str
    claim: str
    verdict: str
    reason: str
    test: str = ""
    evidence: list[str] = field(default_factory=list)       # Markdown lines (tables, bullet points)
    comparisons: list[Comparison] = field(default_factory=list)
    source_verdict: str = ""
    source_confidence: str = ""


@dataclass
class Context:
    data: ReportData
    n_resamples: int = stats.N_RESAMPLES
    seed: int = 0
    _cache: dict = field(default_factory=dict)

    def compare(self, a: str, b: str, dataset: str, setting: str, metric: str,
                relative: float | None = None) -> Comparison:
        key = (a, b, dataset, setting, metric, relative)
        if key not in self._cache:
            self._cache[key] = compare(self.data, a, b, dataset, setting, metric, self.n_resamples, self.seed,
                                       relative)
        return replace(self._cache[key])  # a copy: each family sets its own Holm-adjusted p


# ------------------------------------------------------------------------------------- source claims


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


# --------------------------------------------------------------------------------------------- setups


def setups(data: ReportData) -> list[tuple[str, str]]:
    """(base model, training data) combinations of the trained groups."""
    trained = data.trained_groups()
    return sorted(set(zip(trained["base_model"], trained["train_data"])))


def group_of(data: ReportData, trainer: str, base: str, train_data: str) -> str | None:
    """The group of a trainer in a setup; for hybrid the default alpha 0.5 (else the one with most seeds)."""
    trained = data.trained_groups(trainer)
    part = trained[(trained["base_model"] == base) & (trained["train_data"] == train_data)]
    if part.empty:
        return None
    if trainer == "hybrid" and len(part) > 1:
        default = part[np.isclose(part["alpha"].astype(float), 0.5)]
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


def seeds_caveat(comparisons: list[Comparison]) -> str:
    # A reference (seeds 0) has no seed; a trained side with a single seed is one checkpoint.
    one = [c for c in comparisons if c.tested and 1 in (c.seeds_a, c.seeds_b)]
    return ("one seed on a side of some comparisons: they compare checkpoints, not strategies; seed-to-seed "
            "variation is not measured there") if one else ""


def rule_verdict(comparisons: list[Comparison], claim_side: str, rule: str = "all") -> tuple[str, str]:
    """The verdict of a family where `favours > 0` means evidence for the claim."""
    tested = [c for c in comparisons if c.tested]
    if not tested:
        reasons = {c.coverage for c in comparisons if c.coverage} or {"no paired per-query scores"}
        return INCONCLUSIVE, f"no comparison could be tested ({'; '.join(sorted(reasons))})"
    favour = sum(c.favours > 0 for c in tested)
    against = sum(c.favours < 0 for c in tested)
    counts = (f"{favour} of {len(comparisons)} comparisons significantly in favour of {claim_side}, {against} "
              f"against, {len(tested) - favour - against} neither (not significant, or below the threshold)"
              + (f", {len(comparisons) - len(tested)} untested" if len(tested) < len(comparisons) else ""))
    if rule == "all":
        if against:
            return REFUTED, counts
        return (SUPPORTED if favour == len(comparisons) else INCONCLUSIVE), counts
    if against > len(comparisons) / 2:
        return REFUTED, counts
    if favour > len(comparisons) / 2 and not against:
        return SUPPORTED, counts
    return INCONCLUSIVE, counts


def comparison_lines(comparisons: list[Comparison], data: ReportData, settings: list[str] | None = None) -> list[str]:
    """A Markdown table of a family: what was compared, scores, difference [95% interval], p, Holm p.
    `settings` replaces the setting column's text (C11 names the language there)."""
    if not comparisons:
        return []
    labels = dict(zip(data.groups["group"], data.groups["label"]))
    lines = ["| a | b | dataset | setting | metric | a (± sd over seeds) | b | a − b [95% CI] | p | p (Holm) | "
             "seeds a/b | outcome |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for i, c in enumerate(comparisons):
        digits = 1 if c.metric == "rank_distance" else 4

        def cell(value: float, sd: float) -> str:
            return "–" if np.isnan(value) else f"{value:.{digits}f}" + ("" if np.isnan(sd) else f" ± {sd:.{digits}f}")

        diff = "–" if np.isnan(c.difference) else \
            f"{c.difference:+.{digits}f} [{c.ci_low:+.{digits}f}, {c.ci_high:+.{digits}f}]"
        p = "–" if np.isnan(c.p) else f"{c.p:.4f}"
        ph = "–" if np.isnan(c.p_holm) else f"{c.p_holm:.4f}"
        where = DATASET_NAMES.get(c.dataset, c.dataset)
        setting = settings[i] if settings else c.setting
        seeds = "/".join(str(n) if n else "–" for n in (c.seeds_a, c.seeds_b))
        lines.append(f"| {data.label(c.a)} | {data.label(c.b)} | {where} | {setting} | {c.metric} | "
                     f"{cell(c.a_score, c.sd_a)} | {cell(c.b_score, c.sd_b)} | {diff} | {p} | {ph} | {seeds} | "
                     f"{outcome(c, labels)}{' (' + c.coverage + ')' if c.coverage and c.tested else ''} |")
    return lines


def _thresholds_text(comparisons: list[Comparison]) -> str:
    text = f"Holm-adjusted p < {ALPHA} and |difference| ≥ {MIN_EFFECT}"
    if any(c.metric == "rank_distance" for c in comparisons):
        text += " (rank distance: a share of the reference's value)"
    return text


# ------------------------------------------------------------------------------------ research question


def research_question(ctx: Context) -> Verdict:
    """hybrid against mtl on BEIR (nDCG@10) and on the held-out LAReQA set in every setting (mAP)."""
    data = ctx.data
    comparisons: list[Comparison] = []
    caveats = []
    missing = []
    for base, train_data in setups(data):
        hybrid, mtl = group_of(data, "hybrid", base, train_data), group_of(data, "mtl", base, train_data)
        if hybrid is None or mtl is None:
            lacking = " or ".join(t for t, g in (("hybrid", hybrid), ("mtl", mtl)) if g is None)
            missing.append(f"{base} on {train_data}: no runs of {lacking}")
            continue
        caveats.append(setup_caveat(data, base, train_data))
        for dataset in eval_datasets(data, [hybrid, mtl], train_data, LAREQA):
            comparisons += [ctx.compare(hybrid, mtl, dataset, s, "map") for s in SETTINGS
                            if _has(data, mtl, dataset, s)]
        for dataset in eval_datasets(data, [hybrid, mtl], train_data, BEIR):
            comparisons.append(ctx.compare(hybrid, mtl, dataset, "mono", "ndcg@10"))
    family(comparisons)
    test = ("paired sign-flip test (p) and percentile bootstrap (95% interval) over questions, hybrid − mtl; "
            f"LAReQA mAP per setting, BEIR nDCG@10; Holm over the comparisons; counts when "
            + _thresholds_text(comparisons))
    if not comparisons:
        reason = "; ".join(missing) if missing else "no trained runs in this experiment"
        return Verdict("RQ", "", NOT_TESTABLE, f"not answerable yet: {reason}", test)
    tested = [c for c in comparisons if c.tested]
    better = [c for c in tested if c.favours > 0]
    worse = [c for c in tested if c.favours < 0]
    if not tested:
        answer = INCONCLUSIVE
    elif len(better) == len(comparisons):
        answer = "hybrid better"
    elif len(worse) == len(comparisons):
        answer = "mtl better"
    elif not better and not worse:
        answer = "no detectable difference"
    else:
        answer = "mixed"
    reason = (f"hybrid significantly better in {len(better)} of {len(comparisons)} comparisons "
              f"({_where(better) or 'none'}), mtl in {len(worse)} ({_where(worse) or 'none'}), neither in "
              f"{len(tested) - len(better) - len(worse)} (not significant, or below the threshold)")
    evidence = comparison_lines(comparisons, data) + [""] + [f"- {c}" for c in [*caveats, seeds_caveat(comparisons),
                                                                                *missing] if c]
    return Verdict("RQ", "", answer, reason, test, evidence, comparisons)


def _has(data: ReportData, group: str, dataset: str, setting: str) -> bool:
    s = data.scores
    return bool(((s["group"] == group) & (s["dataset"] == dataset) & (s["setting"] == setting)).any())


def _where(comparisons: list[Comparison]) -> str:
    """Where the comparisons were made; by training direction when there are several (SciFact is scored after
    training on either set)."""
    def place(c: Comparison) -> str:
        return f"{DATASET_NAMES.get(c.dataset, c.dataset)} {c.setting if c.dataset in LAREQA else ''}".strip()

    def trained_on(c: Comparison) -> str:
        parts = c.a.split("|")  # a trained group: trainer|alpha|base|train data|variant
        return parts[3] if len(parts) > 3 else ""

    directions = list(dict.fromkeys(trained_on(c) for c in comparisons))
    if len(directions) < 2:
        return ", ".join(place(c) for c in comparisons)
    return "; ".join(", ".join(place(c) for c in comparisons if trained_on(c) == d)
                     + f" after training on {DATASET_NAMES.get(d, d)}" for d in directions)


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


def c2_datasets(ctx: Context) -> Verdict:
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


def c6_map_reported(ctx: Context) -> Verdict:
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


def c4_separate_sets(ctx: Context) -> Verdict:
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


def c5_no_samples_seen(ctx: Context) -> Verdict:
    test = (f"leakage audit in each training manifest: training texts equal (exactly, or after normalisation) to "
            f"an evaluation question or candidate; up to {LEAK_SHARE:.1%} of a side counts as incidental")
    audit = leakage_audit(ctx)
    if not audit.audited:
        return Verdict("C5", "", NOT_TESTABLE, "no leakage audit recorded for the trained models here "
                       "(no training manifests)", test)
    evidence = ["| model | set | questions exact/normalised of n | candidates exact/normalised of n | training "
                "examples touched |", "|---|---|---:|---:|---:|", *audit.rows]
    note = f"; not audited: {', '.join(audit.not_audited)}" if audit.not_audited else ""
    if audit.worst > LEAK_SHARE:
        return Verdict("C5", "", REFUTED, f"up to {audit.worst:.2%} of an evaluation side also occurs in training "
                       f"(threshold {LEAK_SHARE:.1%}){note}", test, evidence)
    return Verdict("C5", "", INCONCLUSIVE if note else SUPPORTED,
                   f"at most {audit.worst:.3%} of any evaluation side occurs in training (exact or normalised; "
                   f"threshold {LEAK_SHARE:.1%}: incidental duplicates such as short sentences){note}", test, evidence)


# ------------------------------------------------------------------------------- empirical (C8-C11)


def c8_best_multilingual(ctx: Context) -> Verdict:
    """hybrid against every other trained strategy in the multi setting (mAP)."""
    data = ctx.data
    comparisons, caveats = [], []
    for base, train_data in setups(data):
        hybrid = group_of(data, "hybrid", base, train_data)
        if hybrid is None:
            continue
        others = [g for g in data.trained_groups()["group"] if g != hybrid
                  and data.group_row(g)["base_model"] == base and data.group_row(g)["train_data"] == train_data
                  and data.group_row(g)["trainer"] != "hybrid"]
        for dataset in eval_datasets(data, [hybrid], train_data, LAREQA):
            comparisons += [ctx.compare(hybrid, o, dataset, "multi", "map") for o in others
                            if _has(data, o, dataset, "multi")]
        if others:
            caveats.append(setup_caveat(data, base, train_data))
    verdict = _empirical(ctx, "C8", comparisons, "hybrid", "all", caveats,
                         "hybrid − each other trained strategy, multi setting mAP")
    verdict.evidence.append(f"- the paper's own tables: {_paper_hybrid_best(ctx, ('multi',))}")
    return verdict


def c9_better_than_baselines(ctx: Context) -> Verdict:
    data = ctx.data
    comparisons, caveats = [], []
    for base, train_data in setups(data):
        hybrid = group_of(data, "hybrid", base, train_data)
        baselines = [g for g in (group_of(data, t, base, train_data) for t in ("xx-mono", "xy")) if g]
        if hybrid is None or not baselines:
            continue
        caveats.append(setup_caveat(data, base, train_data))
        for dataset in eval_datasets(data, [hybrid], train_data, LAREQA):
            comparisons += [ctx.compare(hybrid, b, dataset, s, "map") for b in baselines for s in SETTINGS
                            if _has(data, b, dataset, s)]
    bases = sorted({b for b, _ in setups(data)})
    if not {"xlm-r", "labse"} & set(bases):
        caveats.append(f"the claim names XLM-R and LaBSE; no runs of either here, so it is tested on "
                       f"{', '.join(bases) or 'no base model'} instead")
    verdict = _empirical(ctx, "C9", comparisons, "hybrid", "all", caveats,
                         "hybrid − X-X-mono and hybrid − X-Y, mAP in the mono, cross and multi settings")
    verdict.evidence.append(f"- the paper's own tables: {_paper_hybrid_best(ctx, SETTINGS)}")
    return verdict


def _paper_hybrid_best(ctx: Context, settings) -> str:
    """How often the paper's reported macro mAP puts hybrid above both baselines (its Tables 3-6)."""
    r = ctx.data.reported
    if r.empty:
        return "not available"
    means = r[(r["language"] == "mean") & (r["metric"] == "map") & r["setting"].isin(settings)]
    cells = means.pivot_table(index=["base_model", "dataset", "setting"], columns="strategy", values="value")
    if cells.empty or not {"hybrid", "xx-mono", "xy"} <= set(cells.columns):
        return "not available"
    best = cells["hybrid"] > cells[["xx-mono", "xy"]].max(axis=1)
    losses = [f"{b} {d} {s}" for (b, d, s), ok in best.items() if not ok]
    return (f"hybrid has the highest mean mAP in {int(best.sum())} of {len(best)} (base model, dataset, setting) "
            f"cells" + (f"; not in {', '.join(losses)}" if losses else ""))


def c10_language_bias(ctx: Context) -> Verdict:
    data = ctx.data
    comparisons, caveats = [], []
    for base, train_data in setups(data):
        hybrid, mono = group_of(data, "hybrid", base, train_data), group_of(data, "xx-mono", base, train_data)
        if hybrid is None or mono is None:
            continue
        caveats.append(setup_caveat(data, base, train_data))
        for dataset in eval_datasets(data, [hybrid, mono], train_data, LAREQA):
            if _has(data, hybrid, dataset, "multi"):
                comparisons.append(ctx.compare(hybrid, mono, dataset, "multi", "rank_distance", relative=SUBSTANTIAL))
    verdict = _empirical(ctx, "C10", comparisons, "hybrid", "all", caveats,
                         f"hybrid − X-X-mono rank distance (multi setting; lower is better); 'substantially' = a "
                         f"reduction of at least {SUBSTANTIAL:.0%} of X-X-mono's value")
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
    """Per language, hybrid against its untrained base model in the mono setting (MIRACL-like monolingual
    retrieval), languages unseen in training marked."""
    data = ctx.data
    comparisons, caveats, unseen_flags, langs = [], [], [], []
    for base, train_data in setups(data):
        hybrid = group_of(data, "hybrid", base, train_data)
        reference = base if base in set(data.groups["group"]) else None
        if hybrid is None or reference is None:
            continue
        caveats.append(setup_caveat(data, base, train_data))
        seen = _training_langs(ctx, hybrid)
        if not seen:
            caveats.append(f"{data.label(hybrid)}: training languages unknown (no manifest); none marked unseen")
        for dataset in eval_datasets(data, [hybrid, reference], train_data, [*LAREQA, "miracl"]):
            setting = "mono"
            metric = "ndcg@10" if dataset == "miracl" else "map"
            for lang in _languages(data, hybrid, dataset, setting):
                comparisons.append(_language_comparison(ctx, hybrid, reference, dataset, setting, metric, lang))
                unseen_flags.append(bool(seen) and lang not in seen)
                langs.append(lang)
    family(comparisons)
    test = ("per language, hybrid − the untrained base model, mono setting (mAP; MIRACL nDCG@10 when present); "
            f"Holm over the {len(comparisons)} languages; counts when Holm p < {ALPHA} and |difference| ≥ "
            f"{MIN_EFFECT}; supported when better in a majority of languages and of the languages unseen in "
            "training, worse in none")
    if "miracl" not in set(data.scores["dataset"]):
        caveats.append("the paper's zero-shot evidence is MIRACL, which has no results here")
    if not comparisons:
        return Verdict("C11", "", NOT_TESTABLE, "no runs of hybrid beside its untrained base model", test,
                       [f"- {c}" for c in caveats])
    verdict, reason = rule_verdict(comparisons, "hybrid", "majority")
    unseen = [c for c, u in zip(comparisons, unseen_flags) if u]
    unseen_better = sum(c.favours > 0 for c in unseen)
    if verdict == SUPPORTED and unseen and unseen_better <= len(unseen) / 2:
        verdict = INCONCLUSIVE
    unseen_langs = [lang for lang, u in zip(langs, unseen_flags) if u]
    reason += (f"; languages unseen in training: {', '.join(unseen_langs)} (hybrid better in "
               f"{unseen_better} of {len(unseen)})" if unseen else "; every evaluated language was seen in training")
    evidence = comparison_lines(comparisons, data, [f"mono, {lang}{' (unseen)' if u else ''}"
                                                    for lang, u in zip(langs, unseen_flags)])
    evidence += [""] + [f"- {c}" for c in [*caveats, seeds_caveat(comparisons)] if c]
    return Verdict("C11", "", verdict, reason, test, evidence, comparisons)


def _language_comparison(ctx: Context, a: str, b: str, dataset: str, setting: str, metric: str,
                         lang: str) -> Comparison:
    return compare(ctx.data, a, b, dataset, setting, metric, ctx.n_resamples, ctx.seed, query_lang=lang)


def _languages(data: ReportData, group: str, dataset: str, setting: str) -> list[str]:
    s = data.scores
    return sorted(set(s.loc[(s["group"] == group) & (s["dataset"] == dataset) & (s["setting"] == setting),
                            "query_lang"]))


def _training_langs(ctx: Context, group: str) -> set[str]:
    langs: set[str] = set()
    for model in ctx.data.group_row(group)["models"]:
        langs |= set((ctx.data.manifests.get(model) or {}).get("langs") or [])
    return langs


def _empirical(ctx: Context, claim_id: str, comparisons: list[Comparison], side: str, rule: str,
               caveats: list[str], what: str) -> Verdict:
    family(comparisons)
    test = (f"{what}; paired sign-flip test (p) and percentile bootstrap (95% interval) over questions; Holm over "
            f"the {len(comparisons)} comparisons; counts when " + _thresholds_text(comparisons))
    if not comparisons:
        return Verdict(claim_id, "", NOT_TESTABLE, "no runs of hybrid beside the strategies it is compared with",
                       test, [f"- {c}" for c in caveats])
    verdict, reason = rule_verdict(comparisons, side, rule)
    evidence = [*comparison_lines(comparisons, ctx.data), ""]
    evidence += [f"- {c}" for c in [*dict.fromkeys(caveats), seeds_caveat(comparisons)] if c]
    return Verdict(claim_id, "", verdict, reason, test, evidence, comparisons)


CHECKS = {
    "C1": c1_mixed_batches, "C2": c2_datasets, "C3": c3_languages, "C4": c4_separate_sets,
    "C5": c5_no_samples_seen, "C6": c6_map_reported, "C7": c7_pairs, "C8": c8_best_multilingual,
    "C9": c9_better_than_baselines, "C10": c10_language_bias, "C11": c11_zero_shot_languages,
}


def verdicts(data: ReportData, n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Verdict]:
    """The research question first, then C1-C11, each with the source report's verdict beside it."""
    ctx = Context(data, n_resamples, seed)
    question, source = source_claims()
    out = [research_question(ctx)]
    out[0].claim = question
    for claim_id, check in CHECKS.items():
        verdict = check(ctx)
        text, report, confidence = source.get(claim_id, ("", "", ""))
        verdict.claim, verdict.source_verdict, verdict.source_confidence = text, report, confidence
        out.append(verdict)
    return out
