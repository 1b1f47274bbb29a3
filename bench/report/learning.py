"""The learning curve: strategies scored after other step budgets than the grid's (stages with `steps:`), beside
their main group at the file's budget, and whether the strategies' order changes with the training length."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.protocol import DEFAULT_BEIR, HELD_OUT, SETTINGS
from bench.report.compare import score_interval
from bench.report.data import ReportData
from bench.report.style import save, trainer_colour
from bench.report.tables import DATASET_NAMES, METRIC_NAMES



def _strategy(group) -> tuple:
    """What a learning-curve point shares with its main group: trainer, alpha, base model, training data."""
    return (group.trainer, None if pd.isna(group.alpha) else float(group.alpha), group.base_model, group.train_data)


def curve_points(data: ReportData, n_resamples: int, seed: int) -> pd.DataFrame:
    """One row per (strategy, steps, dataset, setting, metric) of every strategy that has learning-curve groups:
    its main group at the file's budget and each other budget; score = mean over seeds, with a 95% interval."""
    groups = data.groups
    curve = groups[groups["kind"] == "learning-curve"]
    budget = _budget(data)
    if curve.empty or budget is None:
        return pd.DataFrame(columns=["trainer", "label", "train_data", "steps", "dataset", "setting", "metric",
                                     "score", "low", "high"])
    rows = []
    keys = [_strategy(g) for g in groups.itertuples()]
    for strategy in dict.fromkeys(_strategy(g) for g in curve.itertuples()):
        members = groups[np.array([k == strategy for k in keys]) & groups["kind"].isin(["trained", "learning-curve"])]
        # One line per strategy: every point takes the main group's label (a point's own names its steps).
        main = members[members["kind"] == "trained"]
        main_label = data.label(main["group"].iloc[0]) if len(main) else None
        for g in members.itertuples():
            label = main_label or data.label(g.group)
            steps = budget if pd.isna(g.steps) else int(g.steps)
            for dataset, setting, metric in _panels(data, g.train_data):
                score, low, high = score_interval(data, g.group, dataset, setting, metric, n_resamples, seed)
                if not np.isnan(score):
                    rows.append({"trainer": g.trainer, "label": label,
                                 "train_data": g.train_data, "steps": steps, "dataset": dataset, "setting": setting,
                                 "metric": metric, "score": score, "low": low, "high": high})
    return pd.DataFrame(rows)


def learning_curves(data: ReportData, folder: Path, notes: list[str], n_resamples: int, seed: int) -> list[Path]:
    """Per training direction, one panel per held-out setting and BEIR set: score against steps (log scale)."""
    points = curve_points(data, n_resamples, seed)
    if points.empty:
        return []
    written = []
    for train_data, part in points.groupby("train_data"):
        panels = list(dict.fromkeys(zip(part["dataset"], part["setting"], part["metric"])))
        fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 2.9), squeeze=False)
        for ax, (dataset, setting, metric) in zip(axes[0], panels):
            panel = part[(part["dataset"] == dataset) & (part["setting"] == setting) & (part["metric"] == metric)]
            for label, line in panel.sort_values("steps").groupby("label", sort=False):
                y = line["score"].to_numpy()
                ax.errorbar(line["steps"], y, yerr=[y - line["low"], line["high"] - y], marker="o", capsize=3,
                            label=label, color=trainer_colour(line["trainer"].iloc[0]))
            ax.set_xscale("log")
            ax.set_title(f"{DATASET_NAMES.get(dataset, dataset)}{' ' + setting if dataset in HELD_OUT.values() else ''}"
                         f" {METRIC_NAMES.get(metric, metric)}", fontsize=8)
            ax.set_xlabel("optimiser steps", fontsize=8)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"Learning curve: trained on {train_data} (means over seeds, 95% intervals)", fontsize=9)
        fig.tight_layout()
        written.append(save(fig, folder / f"learning_curve_{train_data}.png"))
    notes.extend(ranking_sentences(points))
    return written


def ranking_sentences(points: pd.DataFrame) -> list[str]:
    """Whether the strategies' order on each panel is the same at every step budget they share."""
    out = []
    for (train_data, dataset, setting, metric), panel in points.groupby(["train_data", "dataset", "setting", "metric"]):
        shared = panel.groupby("steps")["label"].nunique()
        shared = shared[shared == panel["label"].nunique()].index
        if len(shared) < 2 or panel["label"].nunique() < 2:
            continue
        orders = {int(n): tuple(panel[panel["steps"] == n].sort_values("score", ascending=metric == "rank_distance")
                                ["label"]) for n in shared}
        where = f"{DATASET_NAMES.get(dataset, dataset)} {setting} {METRIC_NAMES.get(metric, metric)}"
        if len(set(orders.values())) == 1:
            out.append(f"learning curve (trained on {train_data}), {where}: the strategies keep one order at "
                       f"{', '.join(map(str, sorted(orders)))} steps ({' > '.join(next(iter(orders.values())))})")
        else:
            changes = "; ".join(f"{n} steps: {' > '.join(order)}" for n, order in sorted(orders.items()))
            out.append(f"learning curve (trained on {train_data}), {where}: the order changes with training length "
                       f"({changes})")
    return out


def _budget(data: ReportData) -> int | None:
    from bench.experiment.schema import training_steps

    return training_steps((data.definition or {}).get("training") or {}) if data.definition else None


def _panels(data: ReportData, train_data: str) -> list[tuple[str, str, str]]:
    held = HELD_OUT.get(train_data)
    present = set(data.scores["dataset"])
    panels = [(held, s, "map") for s in SETTINGS if held in present]
    return panels + [(d, "mono", "ndcg@10") for d in DEFAULT_BEIR if d in present]
