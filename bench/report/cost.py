"""The report's compute section: what each group's training and scoring took, per checkpoint and per dataset,
and the experiment's total, from the training manifests and run records (bench/costs.py)."""

from __future__ import annotations

import pandas as pd

from bench.costs import scoring_costs, training_costs
from bench.report.data import ReportData
from bench.report.tables import DATASET_NAMES
from bench.results import ResultStore, safe_name


def cost_frames(data: ReportData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, scoring) costs of the report's kept runs, each row with its group."""
    group_of = {safe_name(str(run)): group for run, group in zip(data.scores["run_id"], data.scores["group"])}
    training = training_costs(data.folder)
    scoring = scoring_costs(ResultStore(data.name, data.folder.parent, note=lambda _: None))
    return (training.assign(group=training["run_id"].map(group_of)).dropna(subset=["group"]),
            scoring.assign(group=scoring["run_id"].map(group_of)).dropna(subset=["group"]))


def _minutes(values: pd.Series) -> str:
    """Mean minutes, with the range when the runs differ by more than a minute."""
    minutes = values / 60
    digits = 1 if minutes.mean() < 1 else 0  # BM25 scores a set in seconds
    text = f"{minutes.mean():.{digits}f}"
    return text + (f" ({minutes.min():.0f}–{minutes.max():.0f})" if minutes.max() - minutes.min() >= 1 else "")


def cost_lines(data: ReportData) -> list[str]:
    training, scoring = cost_frames(data)
    if training.empty and scoring.empty:
        return ["No timings recorded."]
    datasets = [d for d in DATASET_NAMES if d in set(scoring["dataset"])]
    datasets += sorted(set(scoring["dataset"]) - set(datasets))
    lines = ["Wall-clock minutes per run, mean over the group's seeds (range when they differ by a minute or more): "
             "training from each checkpoint's manifest, scoring summed over each dataset's tasks from the run "
             "records (model loading left out). These minutes include any time a run shared the cores with other "
             "work or was paused, so the range is the honest spread of what was spent. 's a step': the median over the group's checkpoints "
             "of each one's median seconds a training step (its timeline; a pause lengthens one interval only), "
             "'–' for checkpoints trained before timelines were recorded.", "",
             "| model | runs | training | s a step | " + " | ".join(DATASET_NAMES.get(d, d) for d in datasets)
             + " | per run in all |", "|---|---:|---:|---:|" + "---:|" * (len(datasets) + 1)]
    for group in data.groups["group"]:
        mine = training[training["group"] == group]
        trained, steady = mine["seconds"], mine["step_seconds"].dropna()
        scored = scoring[scoring["group"] == group]
        if trained.empty and scored.empty:
            continue
        runs = max(len(trained), scored["run_id"].nunique())
        cells = [_cell(scored[scored["dataset"] == d]) for d in datasets]
        measured = scored[~scored["cached"]]
        whole = len(measured) == len(scored)
        per_run = (trained.sum() + measured["seconds"].sum()) / runs
        lines.append(f"| {data.label(group)} | {runs} | {_minutes(trained) if len(trained) else '–'} | "
                     f"{f'{steady.median():.2f}' if len(steady) else '–'} | "
                     + " | ".join(cells) + f" | {per_run / 60:.0f}{'' if whole else ' (cached left out)'} |")
    cached = scoring[scoring["cached"]]
    scoring = scoring[~scoring["cached"]]
    train_h, score_h = training["seconds"].sum() / 3600, scoring["seconds"].sum() / 3600
    core_h = ((training["seconds"] * training["threads"].fillna(1)).sum()
              + (scoring["seconds"] * scoring["threads"].fillna(1)).sum()) / 3600
    devices = sorted(set(training["device"]) | set(scoring["device"]))
    threads = sorted({int(t) for t in pd.concat([training["threads"], scoring["threads"]]).dropna()})
    lines += ["", f"In all: {train_h + score_h:.1f} h of wall-clock time ({len(training)} checkpoints trained in "
              f"{train_h:.1f} h, {scoring['run_id'].nunique()} runs scored in {score_h:.1f} h), {core_h:.1f} "
              f"core-hours, on {', '.join(devices)}"
              + (f" with {'/'.join(map(str, threads))} threads" if threads else "") + "."]
    if len(cached):
        lines.append(f"- 'cached': {len(cached)} (run, dataset) scorings read their embeddings from the cache of an "
                     "earlier run of the same weights (a re-score), so their recorded seconds are not a cost and are "
                     "left out of the totals.")
    return lines


def _cell(scored: pd.DataFrame) -> str:
    if scored.empty:
        return "–"
    measured = scored.loc[~scored["cached"], "seconds"]
    return _minutes(measured) if len(measured) else "cached"
