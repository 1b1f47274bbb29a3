"""Figures that show the answer: the forest plot of hybrid's differences with every other strategy, difference
heatmaps over language pairs, the alpha curve and the loss curves per objective. Colours come from style.py."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.lines import Line2D

from bench.report import stats
from bench.report.compare import Comparison, compare, score_interval
from bench.protocol import DEFAULT_BEIR as BEIR, HELD_OUT, LAREQA_SETS as LAREQA, SETTINGS
from bench.report.data import ReportData
from bench.report.style import REFERENCE_COLOURS, save, trainer_colour
from bench.report.tables import DATASET_NAMES, METRIC_NAMES

MTL_PARTS = ("mono", "cross", "translation", "lid")   # mtl's objectives, as its manifests log them
HEADLINE = ("mtl", "xx-mono", "xy")                 # the forest plot's axis is fitted to these
PART_STYLES = {"retrieval": "-", "mono": "-", "cross": "--", "translation": ":", "lid": "-."}


def _hybrid_and_others(data: ReportData) -> list[tuple[str, str, list[str]]]:
    """(training data, hybrid group, the other trained groups) per training direction; hybrid at alpha 0.5."""
    from bench.report.claims_empirical import group_of

    out = []
    trained = data.trained_groups()
    for (base, train_data), part in trained.groupby(["base_model", "train_data"], sort=False):
        hybrid = group_of(data, "hybrid", base, train_data)
        if hybrid:
            out.append((train_data, hybrid, [g for g, t in zip(part["group"], part["trainer"]) if t != "hybrid"]))
    return out


def forest(data: ReportData, folder: Path, results=(), n_resamples: int = stats.N_RESAMPLES,
           seed: int = 0) -> list[Path]:
    """Hybrid minus each other strategy with the hierarchical 95% interval, per dataset and setting, one panel per
    training direction; hollow markers: fewer than 3 seeds a side (checkpoints, not counted)."""
    known = {(c.a, c.b, c.dataset, c.setting, c.metric): c for v in results for c in v.comparisons if not c.scope}
    directions = _hybrid_and_others(data)
    if not directions:
        return []
    panels = []
    for train_data, hybrid, others in directions:
        places = [(HELD_OUT.get(train_data), s, "map") for s in SETTINGS] + [(d, "mono", "ndcg@10") for d in BEIR]
        rows = []
        for dataset, setting, metric in places:
            for other in others:
                key = (hybrid, other, dataset, setting, metric)
                c = known.get(key) or compare(data, *key, n_resamples=n_resamples, seed=seed)
                if c.tested:
                    rows.append(c)
        if rows:
            panels.append((train_data, rows))
    if not panels:
        return []
    # The axis fits the research question's strategies (mtl and the paper's baselines); X-X and EN-EN can lie
    # ten times further out and would squash them, so those are drawn at the edge with their value written.
    headline = [c for _, rows in panels for c in rows if data.group_row(c.b)["trainer"] in HEADLINE]
    limit = 1.15 * max((max(abs(c.ci_low), abs(c.ci_high)) for c in headline or
                        [c for _, rows in panels for c in rows]), default=0.01)
    height = max(len(rows) for _, rows in panels) * 0.22 + 1.5
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), height), squeeze=False, sharex=True)
    for ax, (train_data, rows) in zip(axes[0], panels):
        _forest_panel(ax, data, rows, limit)
        ax.set_title(f"trained on {DATASET_NAMES.get(train_data, train_data)}", fontsize=10)
    trainers = list(dict.fromkeys(data.group_row(c.b)["trainer"] for _, rows in panels for c in rows))
    handles = [Line2D([], [], marker="o", ls="", color=trainer_colour(t), label=f"hybrid − {t}") for t in trainers]
    handles.append(Line2D([], [], marker="o", ls="", mfc="white", color="black",
                          label="fewer than 3 seeds a side (not counted)"))
    fig.legend(handles=handles, loc="lower center", ncols=min(4, len(handles)), fontsize=8,
               bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(handles) > 4)))
    fig.suptitle("Hybrid minus each other strategy, 95% interval over seeds and questions (LAReQA mAP, BEIR "
                 "nDCG@10)\nright of 0: hybrid better; ▷ ◁: off the axis, value written", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return [save(fig, folder / "forest_hybrid_differences.png")]


def _forest_panel(ax, data: ReportData, rows: list[Comparison], limit: float) -> None:
    places = list(dict.fromkeys((c.dataset, c.setting) for c in rows))
    others = list(dict.fromkeys(c.b for c in rows))
    step = 0.8 / max(len(others), 1)
    for i, (dataset, setting) in enumerate(places):
        for c in (c for c in rows if (c.dataset, c.setting) == (dataset, setting)):
            y = i + (others.index(c.b) - (len(others) - 1) / 2) * step
            colour = trainer_colour(data.group_row(c.b)["trainer"])
            face = colour if c.counts else "white"
            if abs(c.difference) > limit:
                edge = np.sign(c.difference) * limit
                ax.plot(edge, y, marker=">" if edge > 0 else "<", color=colour, mfc=face, ms=6, ls="")
                ax.annotate(f"{c.difference:+.3f}", (edge, y), xytext=(-4 if edge > 0 else 4, 0), va="center",
                            textcoords="offset points", ha="right" if edge > 0 else "left", fontsize=7,
                            color=colour)
                continue
            ax.errorbar(c.difference, y, xerr=[[c.difference - c.ci_low], [c.ci_high - c.difference]], fmt="o",
                        ms=4, color=colour, mfc=face, capsize=2, lw=1)
        if i:
            ax.axhline(i - 0.5, color="#e0e0e0", lw=0.8)
    ax.axvline(0, color="black", lw=1)
    ax.set_xlim(-limit * 1.02, limit * 1.02)
    ax.set_yticks(range(len(places)), [f"{DATASET_NAMES.get(d, d)}{' ' + s if d in LAREQA else ''}"
                                       for d, s in places], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("difference (hybrid − other)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def difference_heatmaps(data: ReportData, folder: Path) -> list[Path]:
    """Per training direction: hybrid − X-X-mono and hybrid − X-Y cross-lingual mAP per (query, document)
    language pair (means over seeds), a diverging scale centred on 0 shared by both panels."""
    written = []
    s = data.scores
    for train_data, hybrid, others in _hybrid_and_others(data):
        dataset = HELD_OUT.get(train_data)
        baselines = [g for g in others if data.group_row(g)["trainer"] in ("xx-mono", "xy")]
        part = s[(s["dataset"] == dataset) & (s["setting"] == "cross") & (s["metric"] == "map")]
        if part.empty or not baselines:
            continue
        langs = sorted(set(part["query_lang"]) | set(part["doc_lang"]))
        matrices = [(other, matrix.to_numpy(dtype=float)) for other in baselines
                    if not (matrix := pair_differences(data, hybrid, other, dataset)).empty]
        if not matrices:
            continue
        limit = max(np.nanmax(np.abs(m)) for _, m in matrices) or 1e-3
        size = 0.42 * len(langs) + 1.2
        fig, axes = plt.subplots(1, len(matrices), figsize=(size * len(matrices) + 1.2, size), squeeze=False,
                                 layout="constrained")
        for ax, (other, matrix) in zip(axes[0], matrices):
            ax.set_facecolor("#d9d9d9")
            image = ax.imshow(matrix, cmap="RdBu", norm=TwoSlopeNorm(0, -limit, limit))
            for i, j in np.ndindex(matrix.shape):
                if not np.isnan(matrix[i, j]):
                    ax.text(j, i, f"{100 * matrix[i, j]:+.1f}", ha="center", va="center", fontsize=6,
                            color="white" if abs(matrix[i, j]) > 0.6 * limit else "black")
            ax.set_xticks(range(len(langs)), langs, fontsize=8)
            ax.set_yticks(range(len(langs)), langs, fontsize=8)
            ax.set_xlabel("document language", fontsize=8)
            ax.set_ylabel("query language", fontsize=8)
            seeds = [len(data.group_row(g)["seeds"]) for g in (hybrid, other)]
            ax.set_title(f"hybrid − {data.group_row(other)['trainer']} (seeds: {seeds[0]} and {seeds[1]})",
                         fontsize=9)
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mAP difference (cells: ×100)")
        fig.suptitle(f"{DATASET_NAMES.get(dataset, dataset)} cross-lingual mAP after training on "
                     f"{DATASET_NAMES.get(train_data, train_data)}: red hybrid worse, blue hybrid better (means over "
                     "seeds; grey: not a pair)", fontsize=9)
        written.append(save(fig, folder / f"difference_heatmap_{dataset}_cross.png"))
    return written


def pair_differences(data: ReportData, a: str, b: str, dataset: str, metric: str = "map") -> pd.DataFrame:
    """query language x document language: a's cross-setting score minus b's, each the mean over its seeds
    (nan where either lacks the pair, and on the diagonal)."""
    s = data.scores
    part = s[(s["dataset"] == dataset) & (s["setting"] == "cross") & (s["metric"] == metric)]
    means = part.groupby(["group", "query_lang", "doc_lang"])["value"].mean()
    if a not in means.index.get_level_values(0) or b not in means.index.get_level_values(0):
        return pd.DataFrame()
    langs = sorted(set(part["query_lang"]) | set(part["doc_lang"]))
    return (means.loc[a] - means.loc[b]).unstack("doc_lang").reindex(index=langs, columns=langs)


ALPHA_PANELS = [("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "rank_distance")]


def alpha_groups(data: ReportData) -> pd.DataFrame:
    """The trained groups on hybrid's alpha axis, with an `alpha` each: hybrid's own, and the trainers that hybrid
    reproduces exactly at an end of alpha (xx-mono at 1, xy at 0: TrainerSpec.hybrid_alpha), which an experiment
    therefore does not train twice."""
    from bench.train.trainers import TRAINERS

    ends = {name: spec.hybrid_alpha for name, spec in TRAINERS.items() if spec.hybrid_alpha is not None}
    trained = data.trained_groups()
    on_axis = trained[(trained["trainer"] == "hybrid") | trained["trainer"].isin(list(ends))].copy()
    on_axis["alpha"] = [float(g.alpha) if g.trainer == "hybrid" else ends[g.trainer] for g in on_axis.itertuples()]
    return on_axis


def alpha_curve(data: ReportData, folder: Path, notes: list[str], n_resamples: int = stats.N_RESAMPLES,
                seed: int = 0) -> list[Path]:
    """Per training direction: hybrid's mono, cross and multi mAP, rank distance and BEIR nDCG@10 against alpha,
    means over seeds with 95% intervals; alpha 0 and 1 are the xy and xx-mono groups (alpha_groups). With fewer
    than two alphas there is no curve: a note says so."""
    written = []
    for (base, train_data), groups in alpha_groups(data).groupby(["base_model", "train_data"]):
        if "hybrid" not in set(groups["trainer"]):
            continue  # xx-mono and xy alone are no alpha sweep
        alphas = sorted(groups["alpha"].unique())
        if len(alphas) < 2:
            notes.append(f"alpha curve ({base} trained on {train_data}): only α = "
                         f"{', '.join(f'{a:g}' for a in alphas) or '?'} has results, so there is no curve (it "
                         "needs hybrid trained at two or more alphas, or xx-mono / xy for the ends)")
            continue
        twins = {float(g.alpha): g.trainer for g in groups.itertuples() if g.trainer != "hybrid"}
        ends = [f"α = {a:g} is {name}" for a, name in sorted(twins.items())]
        if ends:
            notes.append(f"alpha curve ({base} trained on {train_data}): {', '.join(ends)}, the same batches and "
                         "weights as hybrid at that alpha for the same seed (tests/train/test_alpha_ends.py)")
        dataset = HELD_OUT.get(train_data)
        beir = [d for d in BEIR if (data.scores["dataset"] == d).any()]
        panels = [(dataset, s, m) for s, m in ALPHA_PANELS] + [(d, "mono", "ndcg@10") for d in beir]
        fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
        for ax, (d, setting, metric) in zip(axes[0], panels):
            points = []
            for g in groups.itertuples():
                score, low, high = score_interval(data, g.group, d, setting, metric, n_resamples, seed)
                if not np.isnan(score):
                    points.append((float(g.alpha), score, low, high))
            points.sort()
            if points:
                x, y, low, high = map(np.array, zip(*points))
                ax.errorbar(x, y, yerr=[y - low, high - y], marker="o", capsize=3, color=trainer_colour("hybrid"))
            where = f"{DATASET_NAMES.get(d, d)} {setting}" if d in LAREQA else DATASET_NAMES.get(d, d)
            ax.set_title(f"{where} {METRIC_NAMES.get(metric, metric)}{' ↓' if metric == 'rank_distance' else ''}",
                         fontsize=8)
            ax.set_xlabel("alpha (share of mono batches)", fontsize=8)
            ax.set_xticks(alphas, [f"{a:g}" + (f"\n{twins[a]}" if a in twins else "") for a in alphas], fontsize=7)
            ax.grid(alpha=0.3)
        fig.suptitle(f"hybrid against alpha: {base} trained on {train_data} (means over seeds, 95% intervals)",
                     fontsize=9)
        fig.tight_layout()
        written.append(save(fig, folder / f"alpha_curve_{base}_{train_data}.png"))
    return written


def loss_frame(data: ReportData) -> pd.DataFrame:
    """One row per (model, step, objective) of the manifests' loss curves: mtl's logged parts, else the single
    retrieval loss; never the weighted sum an mtl run also logs as `loss`."""
    rows = []
    for model, manifest in sorted(data.manifests.items()):
        for point in manifest.get("loss_curve") or []:
            parts = [p for p in MTL_PARTS if p in point] or (["retrieval"] if "retrieval" in point else ["loss"])
            rows += [(model, manifest.get("trainer", "?"), manifest.get("train_data", "?"), point["step"], part,
                      point[part]) for part in parts if "step" in point]
    return pd.DataFrame(rows, columns=["model", "trainer", "train_data", "step", "objective", "loss"])


def loss_curves(data: ReportData, folder: Path) -> list[Path]:
    """Training loss per objective (never the weighted sum), one panel per training direction: the retrieval
    loss of each single-objective trainer, and each of mtl's parts in its own line style."""
    frame = loss_frame(data)
    if frame.empty:
        return []
    directions = list(dict.fromkeys(frame["train_data"]))
    fig, axes = plt.subplots(1, len(directions), figsize=(6 * len(directions), 4), squeeze=False, sharey=True)
    for ax, direction in zip(axes[0], directions):
        part = frame[frame["train_data"] == direction]
        # The mean over seeds per step: a line per (strategy, objective); dozens of seed lines hide each other.
        means = part.groupby(["trainer", "objective", "step"])["loss"].mean()
        for (trainer, objective), line in means.groupby(level=["trainer", "objective"]):
            ax.plot(line.index.get_level_values("step"), line.to_numpy(), color=trainer_colour(trainer),
                    ls=PART_STYLES.get(objective, "-"), lw=1.3)
        ax.set_title(f"trained on {DATASET_NAMES.get(direction, direction)}", fontsize=10)
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0][0].set_ylabel("training loss (per objective)")
    trainers = list(dict.fromkeys(frame["trainer"]))
    handles = [Line2D([], [], color=trainer_colour(t), label=f"{t}: retrieval" if t != "mtl" else "mtl")
               for t in trainers]
    handles += [Line2D([], [], color=REFERENCE_COLOURS[1], ls=PART_STYLES[p], label=f"mtl {p}")
                for p in MTL_PARTS if (frame["objective"] == p).any()]
    fig.legend(handles=handles, loc="lower center", ncols=min(5, len(handles)), fontsize=8)
    fig.suptitle("Training loss per objective, mean over seeds (mtl's parts drawn apart, not summed)", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return [save(fig, folder / "loss_curves.png")]
