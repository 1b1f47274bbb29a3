"""The evaluation length and precision behind every score, as the run records state them (data.with_records):
per model and dataset, where two models on one dataset differ (their comparison is refused), and how the
trained checkpoints' training cut relates to their evaluation length."""

from __future__ import annotations

import pandas as pd

from bench.report.data import ReportData
from bench.report.tables import DATASET_NAMES
from bench.protocol import DEFAULT_BEIR


def setup_text(lengths: set[int], precisions: set[str]) -> str:
    """'128 tokens, fp32'; '–' for BM25 (whole texts, no model numerics)."""
    if not lengths and not precisions:
        return "–"
    length = "/".join(map(str, sorted(lengths))) + " tokens" if lengths else "length not recorded"
    if len(lengths) > 1:
        length += " (mixed)"
    return f"{length}, {'/'.join(sorted(precisions)) or 'fp32'}"


def setups(data: ReportData) -> pd.DataFrame:
    """group x dataset: what the records state (see setup_text)."""
    s = data.scores
    if s.empty:
        return pd.DataFrame()
    rows = {}
    for (group, dataset), part in s.groupby(["group", "dataset"], sort=False):
        lengths = {int(v) for v in part["eval_length"].dropna()}
        precisions = set(part["precision"]) - {"", "not recorded"}
        rows.setdefault(group, {})[dataset] = setup_text(lengths, precisions)
    order = [g for g in data.groups["group"] if g in rows]
    return pd.DataFrame.from_dict(rows, orient="index").reindex(order)


def mixed_datasets(data: ReportData) -> dict[str, list[str]]:
    """dataset -> the distinct setups of the dense models scored on it, where there is more than one."""
    table = setups(data)
    out = {}
    for dataset in table.columns:
        found = sorted({v for v in table[dataset].dropna() if v != "–"})
        if len(found) > 1:
            out[dataset] = found
    return out


def training_cuts(data: ReportData) -> list[int]:
    return sorted({int(m["options"]["max_seq_length"]) for m in data.manifests.values()
                   if (m.get("options") or {}).get("max_seq_length")})


def length_summary(data: ReportData) -> str:
    """One line per dataset for the 'what differs from the paper' table, from the records."""
    table = setups(data)
    if table.empty:
        return "–"
    parts = []
    for dataset in table.columns:
        values = table[dataset].dropna()
        by_setup: dict[str, list[str]] = {}
        for group, value in values.items():
            if value != "–":
                by_setup.setdefault(value, []).append(data.label(group))
        text = "; ".join(f"{value}: {_names(names)}" for value, names in by_setup.items())
        parts.append(f"{DATASET_NAMES.get(dataset, dataset)}: {text or 'BM25 only'}")
    return ". ".join(parts)


def _names(labels: list[str]) -> str:
    trained = [label for label in labels if "untrained" not in label and label != "bm25"]
    others = [label for label in labels if label not in trained]
    return ", ".join(([f"{len(trained)} trained groups"] if trained else []) + others)


def length_lines(data: ReportData) -> list[str]:
    """The README section: the table of lengths and precisions, and what the report does about mixed ones."""
    table = setups(data)
    if table.empty:
        return ["No results."]
    datasets = list(table.columns)
    lines = ["Read from each run's record (`model_max_seq_length`, `precision`; a record without `precision` is "
             "fp32); BM25 reads whole texts. Two models scored at different lengths or precisions on a dataset are "
             "never compared: such comparisons are refused and marked, not tested.", "",
             "| model | " + " | ".join(DATASET_NAMES.get(d, d) for d in datasets) + " |",
             "|---|" + "---|" * len(datasets)]
    for group, row in table.iterrows():
        lines.append(f"| {data.label(group)} | " + " | ".join("" if pd.isna(row[d]) else row[d] for d in datasets)
                     + " |")
    cuts = training_cuts(data)
    mixed = mixed_datasets(data)
    lines.append("")
    if cuts:
        lines.append(f"- The trained checkpoints were trained with texts cut to {'/'.join(map(str, cuts))} tokens "
                     "(their manifests); the lengths above are what they were scored at.")
    for dataset, found in mixed.items():
        lines.append(f"- {DATASET_NAMES.get(dataset, dataset)}: scored at {' and '.join(found)}; numbers from "
                     "different setups sit in one table but are not compared.")
    beir_trained = [d for d in datasets if d in DEFAULT_BEIR and d in mixed]
    if beir_trained:
        lines.append(_matched_reference_line(data, beir_trained))
    return lines


def _matched_reference_line(data: ReportData, datasets: list[str]) -> str:
    from bench.report.claims_empirical import matched_reference

    trained = list(data.trained_groups()["group"])
    found = {d: matched_reference(data, trained[0], d) for d in datasets} if trained else {}
    present = {d: r for d, r in found.items() if r}
    names = ", ".join(DATASET_NAMES.get(d, d) for d in datasets)
    if present and len(present) == len(datasets):
        refs = ", ".join(sorted({data.label(r) for r in present.values()}))
        return (f"- Matched reference on {names}: {refs}, scored at the trained models' length; the BEIR "
                "comparison with the untrained base uses it (claims.md, 'BEIR against the untrained base').")
    lacking = ", ".join(DATASET_NAMES.get(d, d) for d in datasets if d not in present)
    return (f"- No matched reference on {lacking}: the untrained base was not scored at the trained models' length "
            "there, so fine-tuning's effect on BEIR is not tested (the base's own number is not comparable).")
