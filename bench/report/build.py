"""`python -m bench report NAME`: reports/NAME/ with README.md (the answer first), claims.md, tables/ (Markdown
and LaTeX), plots/ (PNG) and comparisons.csv (every paired test behind a verdict)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.paths import PROJECT_ROOT
from bench.results import safe_name
from bench.report import stats
from bench.report.claims import verdicts
from bench.report.cost import cost_lines
from bench.report.compare import ALPHA, MIN_EFFECT, MIN_SEEDS
from bench.protocol import DEFAULT_BEIR as BEIR, HELD_OUT, LAREQA_SETS as LAREQA
from bench.report.data import ReportData, load_report_data
from bench.report.missing import missing_section
from bench.report.lengths import length_lines, length_summary
from bench.report.plots import all_plots
from bench.report.stability import stability
from bench.report.verdict import SENSITIVITY_ALPHAS, SENSITIVITY_EFFECTS, Verdict, sensitivity
from bench.report.tables import DATASET_NAMES, Table, all_tables, to_markdown, write_table

README_TABLES = ("table1_map", "table2_rank_distance", "table_beir")


def build_report(name: str, out: Path | None = None, n_resamples: int = stats.N_RESAMPLES, seed: int = 0,
                 log=print) -> Path:
    from bench.preflight import report_folder

    out = report_folder(name, out)  # never the project root, whatever the name
    data = load_report_data(name)
    log(f"report {name}: {data.scores['run_id'].nunique()} runs, {len(data.scores)} scores, "
        f"{len(data.per_query)} per-query scores")
    tables = all_tables(data)
    for table in tables:
        write_table(table, out / "tables")
    log(f"  {len(tables)} tables")
    results = verdicts(data, n_resamples, seed)
    plots, plot_notes = all_plots(data, out / "plots", results, n_resamples, seed)
    log(f"  {len(plots)} plots")
    log("  verdicts: " + ", ".join(f"{v.id} {v.verdict}" for v in results))
    comparisons_frame(results, data).to_csv(out / "comparisons.csv", index=False, float_format="%.6g")
    (out / "claims.md").write_text(claims_markdown(results, data))
    stable = stability(data, results, lambda part: verdicts(part, n_resamples, seed))
    (out / "README.md").write_text(readme(data, results, tables, plots, out, n_resamples, seed, plot_notes, stable))
    log(f"  wrote {out}")
    return out


# ---------------------------------------------------------------------------------------------- claims


def claims_markdown(results: list[Verdict], data: ReportData) -> str:
    lines = [f"# Claims checked against `results/{data.name}`", "",
             "Each claim of the source report (a synthesis of arXiv:2408.10536) with our verdict, the condition that "
             "decided it, what it rests on, and the source report's own verdict beside it. Verdicts are computed "
             "from the results, the training manifests and the paper's reported numbers every time the report is "
             "built.", "", *glance_table([v for v in results if v.id != "BEIR"]), "",
             "## Sensitivity of the verdicts", "", *sensitivity_section(results), ""]
    for v in results:
        title = "Research question" if v.id == "RQ" else "BEIR against the untrained base" if v.id == "BEIR" \
            else v.id
        lines += [f"## {title}: {v.claim}", "", f"**Ours: {v.verdict}.** {_sentence(v.reason)}", ""]
        if v.replication:
            lines += [f"- This replication: {_sentence(v.replication)}",
                      f"- About the paper (not checkable here): {_sentence(v.about_paper)}", ""]
        if v.source_verdict:
            lines += [f"Source report: {v.source_verdict} (confidence {v.source_confidence or '–'}).", ""]
        if v.test:
            lines += [f"Test: {_sentence(v.test)}", ""]
        if v.evidence:
            lines += [*v.evidence, ""]
    return "\n".join(lines).rstrip() + "\n"


def sensitivity_section(results: list[Verdict]) -> list[str]:
    """The families, the sensitivity table and what flips."""
    table, flips = sensitivity(results)
    families = [f"- {v.family}" for v in results if v.family]
    counted = {(c.a, c.b, c.dataset, c.setting, c.metric, c.scope) for v in results for c in v.comparisons
               if c.counts}
    lines = [f"Multiple-comparison families: Holm within each claim (and the research question), over the "
             f"comparisons with at least {MIN_SEEDS} seeds a side:", "", *families, "",
             f"As a check, Holm over all {len(counted)} distinct comparisons of the report at once (the last column "
             f"below; `p_report` in comparisons.csv). Each empirical verdict at effect thresholds "
             f"{', '.join(f'{e:g}' for e in SENSITIVITY_EFFECTS)} (a relative threshold scaled alike: rank "
             f"distance) and alpha {', '.join(f'{a:g}' for a in SENSITIVITY_ALPHAS)}; the default is effect "
             f"{MIN_EFFECT:g}, alpha {ALPHA:g}; ⚑ marks a verdict that differs from the default.", ""]
    if len(table) > 2:
        lines += [*table, ""]
    lines.append(f"Verdicts that flip: {'; '.join(flips)}." if flips else
                 "No verdict flips anywhere on the grid or under the report-wide correction.")
    return lines


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def glance_table(results: list[Verdict]) -> list[str]:
    lines = ["| id | claim | ours | why | source report (confidence) |", "|---|---|---|---|---|"]
    for v in results:
        claim = v.claim if len(v.claim) < 90 else v.claim[:87] + "..."
        source = f"{v.source_verdict} ({v.source_confidence})" if v.source_verdict else "–"
        lines.append(f"| {v.id} | {claim} | **{v.verdict}** | {v.reason} | {source} |")
    return lines


def comparisons_frame(results: list[Verdict], data: ReportData) -> pd.DataFrame:
    rows = []
    for v in results:
        for c in v.comparisons:
            rows.append({"claim": v.id, "a": data.label(c.a), "b": data.label(c.b), "dataset": c.dataset,
                         "setting": c.setting, "scope": c.scope, "metric": c.metric, "a_score": c.a_score,
                         "b_score": c.b_score, "difference": c.difference, "ci_low": c.ci_low, "ci_high": c.ci_high,
                         "se": c.se, "df": c.df, "p": c.p, "p_holm": c.p_holm, "p_report": c.p_report,
                         "welch_p": c.welch_p, "threshold": c.threshold, "condition": c.condition(),
                         "favours_a": c.favours, "counts": c.counts, "units": c.n_units, "questions": c.n_clusters,
                         "seeds_a": "fixed" if c.fixed_a else c.seeds_a,
                         "seeds_b": "fixed" if c.fixed_b else c.seeds_b,
                         "seed_values_a": " ".join(f"{x:.6g}" for x in c.seed_values_a),
                         "seed_values_b": " ".join(f"{x:.6g}" for x in c.seed_values_b),
                         "coverage": c.coverage})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- README


def readme(data: ReportData, results: list[Verdict], tables: list[Table], plots: list[Path], out: Path,
           n_resamples: int, seed: int, plot_notes: list[str] = (), stable: list[str] = ()) -> str:
    rq = results[0]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shas = ", ".join(sorted(set(data.scores["git_sha"].astype(str)))) if len(data.scores) else "–"
    lines = [f"# Report: {data.name}", "",
             f"Built by `python -m bench report {data.name}` on {created} from `results/{data.name}/` "
             f"({data.scores['run_id'].nunique()} runs; code {shas}).", "",
             "## Answer: hybrid batches against multi-task learning", "",
             f"*{rq.claim}*", "", f"**{_sentence(rq.verdict)}** {_sentence(rq.reason)}", ""]
    lines += [*rq.evidence, ""] if rq.evidence else []
    lines += [f"Test: {_sentence(rq.test)}" if rq.test else "", "",
              "## Claims at a glance", "", *glance_table([v for v in results[1:] if v.id != "BEIR"]), "",
              "Details, the numbers behind each verdict and the tests: [claims.md](claims.md); every comparison: "
              "[comparisons.csv](comparisons.csv).", "",
              "## Sensitivity of the verdicts", "", *sensitivity_section(results), ""]
    if stable:
        lines += ["## The verdicts on part of the results", "", *stable, ""]
    beir = next((v for v in results if v.id == "BEIR"), None)
    if beir is not None:
        lines += ["## BEIR: fine-tuned against the untrained base at the same length", "",
                  f"**{_sentence(beir.verdict)}** {_sentence(beir.reason)}", "", *beir.evidence, ""]
    lines += ["## Evaluation lengths and precision", "", *length_lines(data), ""]
    lines += ["## Tables", ""]
    by_name = {t.name: t for t in tables}
    for name in README_TABLES:
        if name in by_name:
            lines += [to_markdown(by_name[name]), ""]
    others = [t for t in tables if t.name not in README_TABLES]
    if others:
        lines += ["More tables (Markdown, and LaTeX with booktabs beside each):", ""]
        lines += [f"- [{t.title}](tables/{t.name}.md) ([tex](tables/{t.name}.tex))" for t in others]
        lines += [""]
    shown = [name for name in README_TABLES if name in by_name]
    if shown:
        lines += [f"LaTeX (booktabs) of the tables above: {', '.join(f'[{n}.tex](tables/{n}.tex)' for n in shown)}.",
                  ""]
    if plots or plot_notes:
        lines += ["## Plots", "", *[f"- {_sentence(n)}" for n in plot_notes], ""]
        for path in plots:
            rel = path.relative_to(out)
            lines += [f"![{path.stem}]({rel.as_posix()})", ""]
    lines += ["## What differs from the paper", "", *differences(data), ""]
    lines += ["## Missing and partial", "", *missing_section(data), ""]
    lines += ["## Compute", "", *cost_lines(data), ""]
    lines += ["## How the numbers were computed", "", *method_notes(n_resamples, seed), ""]
    notes = list(data.notes)
    others = sorted(set(data.scores["dataset"]) - {*LAREQA, *BEIR, "miracl"})
    if others:
        notes.append(f"results on {', '.join(others)} are in the experiment but not part of this report")
    if notes:
        lines += ["## Notes from loading the results", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines).rstrip() + "\n"


def method_notes(n_resamples: int, seed: int) -> list[str]:
    return [
        "- A setting's score is the macro average the paper reports: mean over languages (mono, multi) or ordered "
        "language pairs (cross) of the mean over queries. Several seeds: the mean over seeds, ± the sample "
        "standard deviation.",
        f"- Strategies, not checkpoints, are compared: a hierarchical bootstrap ({n_resamples:,} resamples, seed "
        f"{seed}) resamples the seeds within each strategy and the questions of the test set (clustered by question "
        "across languages, macro weights 1/(groups × queries in the group)). The 95% interval and p use its "
        "standard error with a t reference (Welch-Satterthwaite degrees of freedom over the seed and question "
        "components; a t, not a normal, because three seeds say little about their own spread). Each seed's score "
        "and a seed-level Welch p stand beside it.",
        f"- A comparison counts toward a verdict only with at least {MIN_SEEDS} seeds a side (an untrained model "
        "is one fixed model and counts as it is); comparisons of fewer seeds are shown, marked 'not counted', and "
        "left out of the Holm families.",
        f"- Holm's step-down correction within each family (one claim, or the research question); a report-wide "
        f"Holm as a check. A comparison is decided when the Holm-adjusted p < {ALPHA} and the difference is at "
        f"least {MIN_EFFECT} (scores in [0, 1]) or 1% of the reference's value (rank distance; 10% for C10's "
        "'substantially'); every verdict names the condition that decided it.",
        "- Two models scored at different evaluation lengths or precisions on a dataset (run records) are not "
        "compared.",
    ]


def differences(data: ReportData) -> list[str]:
    """What differs from the paper's setup, from the manifests, the run ids and the experiment file."""
    definition = data.definition or {}
    training = definition.get("training") or {}
    options = [m.get("options") or {} for m in data.manifests.values()]

    def values(key: str, fallback=None) -> str:
        found = sorted({str(o[key]) for o in options if o.get(key) is not None})
        if not found and fallback is not None:
            found = [str(fallback)]
        return ", ".join(found) if found else "not recorded"

    trained = data.trained_groups()
    bases = ", ".join(sorted(set(trained["base_model"]))) or "none trained"
    train_data = ", ".join(f"{d} (scored on {HELD_OUT.get(d, '?')} and BEIR)"
                           for d in sorted(set(trained["train_data"])))
    evaluated = [d for d in [*LAREQA, *BEIR, "miracl"] if d in set(data.scores["dataset"])]
    cuts = length_summary(data)
    strategies = ", ".join(sorted(set(trained["trainer"]))) or "none trained"
    if "mtl" in set(trained["trainer"]):
        strategies += " (mtl is our added baseline)"
    rows = [
        ("Base model", "XLM-R, LaBSE", bases),
        ("Training data", "machine-translated QA pairs (not available offline)",
         f"the parallel QA of {train_data}" if train_data else "none trained"),
        ("Strategies", "X-X-mono, X-Y, hybrid", strategies),
        ("Training steps", "full fine-tuning (see the paper)", values("steps", training.get("steps"))),
        ("Batch size", "see the paper", values("batch_size", training.get("batch_size"))),
        ("Learning rate", "3e-5 (AdamW, weight decay 0.01)", values("lr", training.get("lr"))),
        ("Training sequence length", "see the paper", values("max_seq_length", training.get("max_seq_length"))),
        ("Frozen word embeddings", "not stated", values("freeze_embeddings", training.get("freeze_embeddings"))
         .replace("True", "yes").replace("False", "no")),
        ("Seeds per strategy", "not stated", ", ".join(f"{r.label}: {len(r.seeds)}" for r in trained.itertuples())
         or "–"),
        ("Evaluation sets", "XQuAD-R, MLQA-R, MIRACL", ", ".join(DATASET_NAMES.get(d, d) for d in evaluated) or "none"),
        ("Evaluation sequence length (run records)", "the model's own", cuts),
    ]
    evaluation = definition.get("evaluation") or {}
    lareqa_langs = (evaluation.get("lareqa") or {}).get("langs")
    if lareqa_langs:
        rows.append(("LAReQA languages", "all (11 / 7)", ", ".join(map(str, lareqa_langs))))
    stated = _stated_cuts(training, evaluation)
    if stated:
        rows.append(("Cuts stated in the experiment file", "–", stated))
    rows.append(("Hardware", "see the paper", _hardware(data)))
    lines = ["| | paper (arXiv:2408.10536) | here |", "|---|---|---|"]
    lines += [f"| {what} | {paper} | {ours} |" for what, paper, ours in rows]
    lines += ["", "BEIR is the research question's extension (the paper does not evaluate on it). MIRACL is only "
              "evaluated when its corpus is available" + ("." if "miracl" in evaluated else ": not here.")]
    notes = [" ".join(str(n).split()) for n in definition.get("notes") or []]
    if notes:
        lines += ["", "Notes in the experiment file (its own words; the lengths the runs used are in 'Evaluation "
                  "lengths and precision', from the run records):", "", *[f"- {n}" for n in notes]]
    if data.definition_path:
        lines += ["", f"Experiment definition: `{_relative(data.definition_path)}`."]
    return lines


def _hardware(data: ReportData) -> str:
    """What trained the checkpoints (their manifests) and what encoded for the scores (the run records)."""
    def counted(names: list[str]) -> str:
        return ", ".join(f"{name} ({names.count(name)})" for name in sorted(set(names)))

    trained = [str(m.get("device_name") or m.get("device") or "not recorded") for m in data.manifests.values()]
    scored = []
    for run in sorted(set(data.scores["run_id"])):
        record = next((data.folder / safe_name(run)).glob("*.record.json"), None)
        details = json.loads(record.read_text()) if record else {}
        scored.append(str(details.get("model_device_name") or (details.get("machine") or {}).get("processor")
                          or "not recorded"))
    parts = [f"training: {counted(trained)} checkpoints"] if trained else []
    return "; ".join(parts + [f"scoring: {counted(scored)} models"])


def _stated_cuts(training: dict, evaluation: dict) -> str:
    """The budget cuts an experiment file states (its comments say why), whatever the runs recorded."""
    parts = [f"training {key.replace('_', ' ')} {training[key]}" for key in ("steps", "batch_size", "max_seq_length")
             if key in training]
    for suite in ("lareqa", "beir"):
        block = evaluation.get(suite) or {}
        if block.get("datasets"):
            parts.append(f"{suite} sets {', '.join(map(str, block['datasets']))}")
        if block.get("settings"):
            parts.append(f"{suite} settings {', '.join(map(str, block['settings']))}")
        if block.get("max_seq_length"):
            parts.append(f"{suite} inputs truncated to {block['max_seq_length']} tokens")
    return "; ".join(parts)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
