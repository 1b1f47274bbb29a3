"""Report figures (matplotlib, Agg, PNG): strategy bars with 95% intervals, cross-lingual heatmaps, rank
distance per language, the alpha sweep and the training loss curves. Every function returns the files it
wrote (none when the experiment lacks the data)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report import stats  # noqa: E402
from bench.report.compare import macro_scores, score_interval  # noqa: E402
from bench.report.data import BEIR, LAREQA, ReportData  # noqa: E402
from bench.report.tables import DATASET_NAMES, METRIC_NAMES, SETTINGS  # noqa: E402

TRAINER_COLOURS = {"hybrid": "#d62728", "mtl": "#1f77b4", "xx-mono": "#2ca02c", "xy": "#ff7f0e", "x-x": "#9467bd",
                   "en-en": "#8c564b"}
REFERENCE_COLOURS = ["#7f7f7f", "#bcbcbc", "#555555", "#a0a0a0"]
DPI = 130


def colours(data: ReportData) -> dict[str, str]:
    """group -> colour: trainers keep theirs across figures; a second group of one trainer gets a spare."""
    spare = iter(["#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"] * 4)
    refs = iter(REFERENCE_COLOURS * 4)
    used: set[str] = set()
    out = {}
    # The default alpha claims hybrid's colour first; other alphas of an alpha sweep get spares.
    primary_first = sorted(data.groups.itertuples(), key=lambda g: not (pd.isna(g.alpha) or float(g.alpha) == 0.5))
    for g in primary_first:
        if g.kind == "reference":
            out[g.group] = next(refs)
            continue
        colour = TRAINER_COLOURS.get(g.trainer)
        out[g.group] = colour if colour and colour not in used else next(spare)
        used.add(out[g.group])
    return out


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _bar_panel(ax, data: ReportData, dataset: str, setting: str, metric: str, palette: dict[str, str],
               n_resamples: int, seed: int) -> bool:
    """One panel: a bar per group with its 95% bootstrap interval and its seeds as dots. False when empty."""
    macro = macro_scores(data)
    macro = macro[(macro["dataset"] == dataset) & (macro["setting"] == setting) & (macro["metric"] == metric)]
    groups = [g for g in data.groups["group"] if g in set(macro["group"])]
    if not groups:
        return False
    labels = []
    for x, group in enumerate(groups):
        score, low, high = score_interval(data, group, dataset, setting, metric, n_resamples, seed)
        rows = macro[macro["group"] == group]
        seeds = rows["value"].to_numpy()
        height = score if not np.isnan(score) else seeds.mean()
        partial = bool((rows["cells"] < rows["cells_expected"]).any())
        # A partial model (some languages or pairs not yet scored) is hatched and its label says how much it has.
        ax.bar(x, height, color=palette[group], width=0.7, hatch="//" if partial else None, edgecolor="white")
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
            fig.suptitle(f"{DATASET_NAMES[dataset]}: macro mAP per setting (bars: 95% bootstrap interval over "
                         f"questions{dots})", fontsize=10)
            written.append(_save(fig, folder / f"bars_{dataset}_map.png"))
        else:
            plt.close(fig)
    beir = [d for d in BEIR if d in present]
    if beir:
        fig, axes = plt.subplots(1, len(beir), figsize=(4 * len(beir) + 0.5, 4.2), sharey=True, squeeze=False)
        for ax, dataset in zip(axes[0], beir):
            _bar_panel(ax, data, dataset, "mono", "ndcg@10", palette, n_resamples, seed)
        fig.suptitle(f"BEIR: nDCG@10 (bars: 95% bootstrap interval over queries{dots})", fontsize=10)
        written.append(_save(fig, folder / "bars_beir_ndcg10.png"))
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
        written.append(_save(fig, folder / f"heatmap_{dataset}_cross_map.png"))
    return written


def rank_distance_by_language(data: ReportData, folder: Path) -> list[Path]:
    """Per LAReQA set: rank distance per query language, a bar (or a dot, on a log axis) per group."""
    written = []
    palette = colours(data)
    s = data.scores
    for dataset in LAREQA:
        part = s[(s["dataset"] == dataset) & (s["setting"] == "multi") & (s["metric"] == "rank_distance")]
        if part.empty:
            continue
        values = part.groupby(["group", "model", "query_lang"])["value"].mean().groupby(["query_lang", "group"]) \
            .mean().unstack("group")
        groups = [g for g in data.groups["group"] if g in values.columns]
        langs = list(values.index)
        width = 0.8 / len(groups)
        finite = values[groups].to_numpy(dtype=float)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        # BM25's distances can be 30 times a dense model's: a linear axis would flatten the rest to nothing, so
        # such spreads get a log axis, drawn as dots (a bar's length from an arbitrary log floor means nothing).
        log = len(finite) > 0 and finite.max() / finite.min() > 10
        fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(langs) * max(1, len(groups) / 4) + 2), 4))
        for k, group in enumerate(groups):
            x = np.arange(len(langs)) + (k - (len(groups) - 1) / 2) * width
            if log:
                ax.scatter(x, values[group].to_numpy(), s=22, color=palette[group], label=data.label(group), zorder=3)
            else:
                ax.bar(x, values[group].to_numpy(), width, color=palette[group], label=data.label(group))
        ax.set_xticks(range(len(langs)), langs)
        ax.set_xlabel("query language")
        if log:
            ax.set_yscale("log")
            for boundary in np.arange(len(langs) - 1) + 0.5:
                ax.axvline(boundary, color="#e0e0e0", lw=0.8)
        ax.set_ylabel("rank distance, lower is better" + (" (log scale)" if log else ""))
        ax.set_title(f"{DATASET_NAMES[dataset]} multi setting: language bias per query language (mean over seeds)",
                     fontsize=10)
        ax.legend(fontsize=7, ncols=min(4, len(groups)), loc="upper center", bbox_to_anchor=(0.5, -0.14))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        written.append(_save(fig, folder / f"rank_distance_{dataset}.png"))
    return written


def alpha_sweep(data: ReportData, folder: Path) -> list[Path]:
    """Macro scores of hybrid against alpha (share of mono batches), when the experiment has several alphas for
    one base model and training set: mean over seeds, bars one sample std."""
    written = []
    hybrid = data.trained_groups("hybrid")
    macro = macro_scores(data)
    for (base, train_data), groups in hybrid.groupby(["base_model", "train_data"]):
        if groups["alpha"].nunique() < 2:
            continue
        part = macro[macro["group"].isin(groups["group"])].merge(groups[["group", "alpha"]], on="group")
        panels = [(d, s, "map") for d in LAREQA for s in SETTINGS] + [(d, "mono", "ndcg@10") for d in BEIR]
        panels = [p for p in panels if ((part["dataset"] == p[0]) & (part["setting"] == p[1])
                                        & (part["metric"] == p[2])).any()]
        if not panels:
            continue
        lareqa = [p for p in panels if p[2] == "map"]
        beir = [p for p in panels if p[2] != "map"]
        fig, axes = plt.subplots(1, 1 + bool(beir) if lareqa else 1, figsize=(11 if lareqa and beir else 6, 4),
                                 squeeze=False)
        for ax, chosen, ylabel in ((axes[0][0], lareqa or beir, "mAP" if lareqa else "nDCG@10"),
                                   *(((axes[0][1], beir, "nDCG@10"),) if lareqa and beir else ())):
            for dataset, setting, metric in chosen:
                line = part[(part["dataset"] == dataset) & (part["setting"] == setting) & (part["metric"] == metric)]
                by_alpha = line.groupby("alpha")["value"].agg(["mean", "std"]).sort_index()
                ax.errorbar(by_alpha.index, by_alpha["mean"], yerr=by_alpha["std"].fillna(0), marker="o", capsize=3,
                            label=f"{DATASET_NAMES.get(dataset, dataset)} {setting}" if metric == "map"
                            else DATASET_NAMES.get(dataset, dataset))
            ax.set_xlabel("alpha (probability of a mono batch)")
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, 1)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        fig.suptitle(f"hybrid alpha sweep: {base} trained on {train_data} (mean over seeds, bars: std)", fontsize=10)
        written.append(_save(fig, folder / f"alpha_sweep_{base}_{train_data}.png"))
    return written


def loss_curves(data: ReportData, folder: Path) -> list[Path]:
    """Training loss against step from each trained model's manifest, coloured by trainer."""
    points = [(model, manifest.get("trainer", "?"), p["step"], p["loss"])
              for model, manifest in sorted(data.manifests.items())
              for p in manifest.get("loss_curve") or [] if "step" in p and "loss" in p]
    if not points:
        return []
    frame = pd.DataFrame(points, columns=["model", "trainer", "step", "loss"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    runs = frame.groupby("trainer")["model"].nunique()
    labelled: set[str] = set()
    # One legend entry per trainer (a paper grid has dozens of runs); each run is its own line.
    for model, part in frame.groupby("model", sort=True):
        trainer = part["trainer"].iloc[0]
        label = None if trainer in labelled else f"{trainer} ({runs[trainer]} run{'s' if runs[trainer] > 1 else ''})"
        labelled.add(trainer)
        ax.plot(part["step"], part["loss"], color=TRAINER_COLOURS.get(trainer, "#7f7f7f"), lw=1.1, marker=".",
                alpha=0.8, label=label)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_ylim(bottom=0)
    title = "Training loss"
    if (frame["trainer"] == "mtl").any():
        title += " (mtl: the weighted sum of its retrieval and auxiliary losses)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return [_save(fig, folder / "loss_curves.png")]


def all_plots(data: ReportData, folder: Path, n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> list[Path]:
    return [*strategy_bars(data, folder, n_resamples, seed), *cross_heatmaps(data, folder),
            *rank_distance_by_language(data, folder), *alpha_sweep(data, folder), *loss_curves(data, folder)]
