"""Report figures (matplotlib, Agg, PNG) that show scores: strategy bars with 95% intervals, cross-lingual
heatmaps and rank distance. figures.py draws the differences (forest plot, difference heatmaps), the alpha curve
and the loss curves; all_plots gathers both. Every function returns the files it wrote (none when the
experiment lacks the data)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bench.report import stats
from bench.report.compare import MIN_SEEDS, macro_scores, score_interval
from bench.protocol import DEFAULT_BEIR as BEIR, LAREQA_SETS as LAREQA, SETTINGS
from bench.report.data import ReportData
from bench.report.style import SECOND_DIRECTION_HATCH, colours, save, second_direction
from bench.report.tables import DATASET_NAMES, METRIC_NAMES


def _bar_panel(ax, data: ReportData, dataset: str, setting: str, metric: str, palette: dict[str, str],
               n_resamples: int, seed: int) -> bool:
    """One panel: a bar per group with its 95% interval over seeds and questions and its seeds as dots; a
    model of the second training direction hatched. False when empty."""
    macro = macro_scores(data)
    macro = macro[(macro["dataset"] == dataset) & (macro["setting"] == setting) & (macro["metric"] == metric)]
    groups = [g for g in data.groups["group"] if g in set(macro["group"])]
    if not groups:
        return False
    labels, second = [], second_direction(data)
    for x, group in enumerate(groups):
        score, low, high = score_interval(data, group, dataset, setting, metric, n_resamples, seed)
        rows = macro[macro["group"] == group]
        seeds = rows["value"].to_numpy()
        height = score if not np.isnan(score) else seeds.mean()
        partial = bool((rows["cells"] < rows["cells_expected"]).any())
        # A partial model (some languages or pairs not yet scored) is hatched and its label says how much it has.
        hatched = partial or group in second
        ax.bar(x, height, color=palette[group], width=0.7, hatch=SECOND_DIRECTION_HATCH if hatched else None,
               edgecolor="white")
        top = height
        if not np.isnan(low):
            ax.errorbar(x, height, yerr=[[height - low], [high - height]], color="black", capsize=3, lw=1)
            top = high
        if len(seeds) > 1:
            ax.scatter(np.full(len(seeds), x) + np.linspace(-0.15, 0.15, len(seeds)), seeds, s=10, color="black",
                       zorder=3)
            top = max(top, seeds.max())
        # Side by side, more than 8 three-decimal labels run into each other: stand them up.
        ax.annotate(f"{height:.3f}", (x, top), xytext=(0, 2), textcoords="offset points", ha="center",
                    va="bottom", fontsize=7, rotation=90 if len(groups) > 8 else 0)
        label = data.label(group)
        if partial:
            label += f" ({int(rows['cells'].min())}/{int(rows['cells_expected'].max())})"
        labels.append(label)
    ax.set_xticks(range(len(groups)), labels, rotation=35, ha="right", fontsize=8)
    ax.set_title(DATASET_NAMES.get(dataset, dataset) + (f" {setting}" if dataset in LAREQA else ""), fontsize=10)
    if ax.get_subplotspec().is_first_col():  # panels share the y axis
        ax.set_ylabel(METRIC_NAMES.get(metric, metric), fontsize=9)
    headroom = 1.12 if len(groups) > 8 else 1.05
    ax.set_ylim(0, min(1.0, max(ax.get_ylim()[1], 0.05) * headroom) if metric != "rank_distance" else None)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return True


def strategy_bars(data: ReportData, folder: Path, n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Path]:
    """Per LAReQA set: mAP per setting; and BEIR nDCG@10 per dataset; bars with 95% intervals."""
    palette = colours(data)
    written = []
    present = set(data.scores["dataset"])
    dots = "; dots: seeds" if any(len(seeds) > 1 for seeds in data.groups["seeds"]) else ""
    for dataset in (d for d in LAREQA if d in present):
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharey=True)
        drawn = [_bar_panel(ax, data, dataset, s, "map", palette, n_resamples, seed) for ax, s in zip(axes, SETTINGS)]
        if any(drawn):
            for ax, ok in zip(axes, drawn):
                ax.set_visible(ok)
            fig.suptitle(f"{DATASET_NAMES[dataset]}: macro mAP per setting (bars: 95% interval over seeds and "
                         f"questions{dots})", fontsize=10)
            written.append(save(fig, folder / f"bars_{dataset}_map.png"))
        else:
            plt.close(fig)
    beir = [d for d in BEIR if d in present]
    if beir:
        fig, axes = plt.subplots(1, len(beir), figsize=(4 * len(beir) + 0.5, 4.2), sharey=True, squeeze=False)
        for ax, dataset in zip(axes[0], beir):
            _bar_panel(ax, data, dataset, "mono", "ndcg@10", palette, n_resamples, seed)
        fig.suptitle(f"BEIR: nDCG@10 (bars: 95% interval over seeds and queries{dots}; hatched: trained on the "
                     f"second set). Models scored at different lengths: see the lengths table", fontsize=9)
        written.append(save(fig, folder / "bars_beir_ndcg10.png"))
    return written


def cross_heatmaps(data: ReportData, folder: Path) -> list[Path]:
    """Per LAReQA set: query language x document language mAP of each group in the cross setting, one colour
    scale (0 to 1) for every panel."""
    written = []
    s = data.scores
    for dataset in LAREQA:
        part = s[(s["dataset"] == dataset) & (s["setting"] == "cross") & (s["metric"] == "map")]
        if part.empty:
            continue
        groups = [g for g in data.groups["group"] if g in set(part["group"])]
        langs = sorted(set(part["query_lang"]) | set(part["doc_lang"]))
        ncols = min(3, len(groups))
        nrows = int(np.ceil(len(groups) / ncols))
        size = 0.36 * len(langs) + 1.0
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.0, size * nrows + 0.5), squeeze=False,
                                 layout="constrained")
        image = None
        for ax, group in zip(axes.flat, groups):
            per_model = part[part["group"] == group].groupby(["model", "query_lang", "doc_lang"])["value"].mean()
            matrix = per_model.groupby(["query_lang", "doc_lang"]).mean().unstack("doc_lang") \
                .reindex(index=langs, columns=langs)
            values = matrix.to_numpy(dtype=float)
            ax.set_facecolor("#d9d9d9")  # nan cells: the diagonal, and pairs not scored (marked "–")
            image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
            for i, j in np.ndindex(values.shape):
                if np.isnan(values[i, j]):
                    if i != j:
                        ax.text(j, i, "–", ha="center", va="center", fontsize=7)
                    continue
                ax.text(j, i, f"{values[i, j]:.2f}"[1:] if values[i, j] < 1 else "1.0", ha="center", va="center",
                        fontsize=5.5, color="black" if values[i, j] > 0.6 else "white")
            ax.set_xticks(range(len(langs)), langs, fontsize=7)
            ax.set_yticks(range(len(langs)), langs, fontsize=7)
            ax.set_xlabel("document language", fontsize=8)
            ax.set_ylabel("query language", fontsize=8)
            ax.set_title(data.label(group), fontsize=9)
        for ax in list(axes.flat)[len(groups):]:
            ax.set_visible(False)
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mAP")
        fig.suptitle(f"{DATASET_NAMES[dataset]} cross-lingual mAP, mean over seeds (grey diagonal: not a cross "
                     "pair; –: not scored)", fontsize=10)
        written.append(save(fig, folder / f"heatmap_{dataset}_cross_map.png"))
    return written


def rank_distance(data: ReportData, folder: Path, n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Path]:
    """Per LAReQA set: the trained groups' macro rank distance (multi setting) on a linear axis with their 95%
    intervals over seeds and questions; BM25 and the untrained base, often ten times larger, are written beside
    the axis as reference values instead of bars that would squash the rest."""
    written = []
    palette = colours(data)
    s = data.scores
    for dataset in LAREQA:
        part = s[(s["dataset"] == dataset) & (s["setting"] == "multi") & (s["metric"] == "rank_distance")]
        if part.empty:
            continue
        groups = [g for g in data.groups["group"] if g in set(part["group"])]
        trained = [g for g in groups if data.group_row(g)["kind"] == "trained"]
        references = [g for g in groups if g not in trained]
        if not trained:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(trained) + 1.6))
        for y, group in enumerate(trained):
            score, low, high = score_interval(data, group, dataset, "multi", "rank_distance", n_resamples, seed)
            hollow = len(data.group_row(group)["seeds"]) < MIN_SEEDS  # as in the forest plot: not a strategy
            ax.errorbar(score, y, xerr=[[score - low], [high - score]], fmt="o", color=palette[group], capsize=3,
                        mfc="white" if hollow else palette[group], ms=6)
            ax.annotate(f"{score:.1f}", (high, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_yticks(range(len(trained)), [data.label(g) for g in trained], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("rank distance (multi setting, macro over query languages), lower is better", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        refs = "; ".join(f"{data.label(g)}: {part.loc[part['group'] == g, 'value'].mean():.1f}" for g in references)
        ax.set_title(f"{DATASET_NAMES[dataset]}: language bias of the trained models (95% interval over seeds and "
                     f"questions; hollow: fewer than {MIN_SEEDS} seeds)"
                     + (f"\nreferences, off this axis: {refs}" if refs else ""), fontsize=9)
        written.append(save(fig, folder / f"rank_distance_{dataset}.png"))
    return written


def all_plots(data: ReportData, folder: Path, results=(), n_resamples: int = stats.N_RESAMPLES,
              seed: int = 0) -> tuple[list[Path], list[str]]:
    """Every figure, and the messages of those that could not be drawn (e.g. an alpha curve of one point)."""
    from bench.report import figures, learning

    notes: list[str] = []
    paths = [*figures.forest(data, folder, results, n_resamples, seed),
             *strategy_bars(data, folder, n_resamples, seed),
             *figures.difference_heatmaps(data, folder), *cross_heatmaps(data, folder),
             *rank_distance(data, folder, n_resamples, seed),
             *figures.alpha_curve(data, folder, notes, n_resamples, seed),
             *learning.learning_curves(data, folder, notes, n_resamples, seed), *figures.loss_curves(data, folder)]
    return paths, notes
