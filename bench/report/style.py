"""What every figure shares: one colour per strategy (the only place colours are chosen), greys for the untrained
references, the resolution and how a figure is saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.report.data import ReportData  # noqa: E402

TRAINER_COLOURS = {"hybrid": "#d62728", "mtl": "#1f77b4", "xx-mono": "#2ca02c", "xy": "#ff7f0e", "x-x": "#9467bd",
                   "en-en": "#8c564b"}
OTHER_TRAINER = "#17becf"
REFERENCE_COLOURS = ("#7f7f7f", "#555555", "#a0a0a0", "#bcbcbc")
# The second training direction of one strategy keeps its colour and is hatched (bars) or hollow (markers).
SECOND_DIRECTION_HATCH = "//"
DPI = 130


def trainer_colour(trainer: str) -> str:
    return TRAINER_COLOURS.get(trainer, OTHER_TRAINER)


def colours(data: ReportData) -> dict[str, str]:
    """group -> colour: a trained group takes its strategy's colour in every figure; references are greys."""
    out, refs = {}, iter(REFERENCE_COLOURS * 4)
    for g in data.groups.itertuples():
        out[g.group] = next(refs) if g.kind == "reference" else trainer_colour(g.trainer)
    return out


def second_direction(data: ReportData) -> set[str]:
    """Trained groups not on the experiment's first training set: drawn hatched / hollow beside the first."""
    trained = data.trained_groups()
    directions = list(dict.fromkeys(trained["train_data"]))
    return set(trained.loc[trained["train_data"].isin(directions[1:]), "group"])


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path
