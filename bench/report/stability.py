"""How the verdicts move with the evidence: each verdict recomputed on part of the results beside the verdict on
all of them. The parts: the first MIN_SEEDS seeds of every strategy (what three seeds a side said before more
were run), and each training direction alone (what one direction says without the other). A verdict that holds
on every part rests on more than one slice of the data; one that flips is named."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from bench.report.compare import MIN_SEEDS
from bench.report.data import ReportData, group_table
from bench.report.verdict import Verdict

EMPIRICAL = ("RQ", "C8", "C9", "C10", "C11", "BEIR")  # the verdicts that rest on our runs' scores


@dataclass
class Part:
    name: str
    keep: Callable[[pd.DataFrame], pd.Series]  # rows of scores (or per-query rows) -> kept


def parts(data: ReportData) -> list[Part]:
    """The parts worth recomputing on: only those that leave out something."""
    trained = data.scores[data.scores["trainer"] != "none"]
    found: list[Part] = []
    seeds = sorted({int(s) for s in trained["seed"].dropna()})
    if len(seeds) > MIN_SEEDS:
        first = set(seeds[:MIN_SEEDS])
        found.append(Part(f"seeds {', '.join(map(str, sorted(first)))}",
                          lambda rows, first=first: rows["seed"].isna() | rows["seed"].isin(first)))
    directions = sorted(set(trained["train_data"]) - {""})
    if len(directions) > 1:
        for direction in directions:
            models = set(data.scores.loc[(data.scores["trainer"] == "none")
                                         | (data.scores["train_data"] == direction), "model"])
            found.append(Part(f"trained on {direction} only",
                              lambda rows, models=models: rows["model"].isin(models)))
    return found


def subset(data: ReportData, part: Part) -> ReportData:
    """The report's data with only `part`'s runs: groups, seeds and per-query rows recomputed from them."""
    scores = data.scores[part.keep(data.scores)]
    models = set(scores["model"])
    per_query = data.per_query[data.per_query["model"].isin(models)]
    return replace(data, scores=scores, groups=group_table(scores), per_query=per_query,
                   manifests={m: v for m, v in data.manifests.items() if m in models}, _units=None)


def stability(data: ReportData, results: list[Verdict], verdicts_of: Callable[[ReportData], list[Verdict]]) \
        -> list[str]:
    """The README section: a table of verdicts, all results against each part, ⚑ where one differs."""
    found = parts(data)
    trained = data.trained_groups()
    if not found:
        most = max((len(s) for s in trained["seeds"]), default=0)
        directions = sorted(set(trained["train_data"]))
        return [f"Each verdict is recomputed on the first {MIN_SEEDS} seeds of every strategy once some strategy "
                f"has more, and on each training direction alone once there are two; here at most {most} "
                f"seed{'s' * (most != 1)} a strategy and {len(directions)} direction"
                f"{'s' * (len(directions) != 1)} ({', '.join(directions) or 'none'}): nothing to recompute yet."]
    on_all = {v.id: v.verdict for v in results}
    columns = {part.name: {v.id: v.verdict for v in verdicts_of(subset(data, part))} for part in found}
    lines = ["Each verdict on all the results, and recomputed on part of them (the same tests and thresholds); "
             "⚑ marks a part whose verdict differs from the verdict on all.", "",
             "| claim | all results | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    flips = []
    for claim in (c for c in EMPIRICAL if c in on_all):
        cells = []
        for name, verdicts in columns.items():
            verdict = verdicts.get(claim, "–")
            if verdict != on_all[claim]:
                flips.append(f"{claim} on {name}: {verdict} (all: {on_all[claim]})")
                verdict += " ⚑"
            cells.append(verdict)
        lines.append(f"| {claim} | {on_all[claim]} | " + " | ".join(cells) + " |")
    lines += ["", f"Verdicts that differ on a part: {'; '.join(flips)}." if flips
              else "Every verdict is the same on every part."]
    return lines
