"""What an experiment's work cost, read from where it was recorded: each checkpoint's training seconds (the
training manifest kept beside its results) and each scoring run's seconds per task (its run records). The
report's compute section shows them; the plan estimates what is left from them (`Pace`).

Times are wall-clock seconds on the machine that did the work; the records say which machine and how many
threads. A run that overlapped other work on the same cores is slower, and nothing records that. A training
manifest's timeline records the seconds at each logged step: the median seconds a step over those intervals is
its steady pace, which a pause (a stopped process, a resume after a cut) lengthens in one interval only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import ResultStore, summed_stages

TRAINING_COLUMNS = ["run_id", "trainer", "steps", "pairs", "seconds", "step_seconds", "threads", "device"]
SCORING_COLUMNS = ["run_id", "dense", "dataset", "tasks", "seconds", "threads", "device", "cached"]


def training_costs(folder: Path) -> pd.DataFrame:
    """One row per checkpoint with a training manifest under results/<experiment>/: its trainer, optimiser
    steps, pairs (steps x pairs a step), training seconds, its steady seconds a step (NaN for a manifest written
    before timelines were recorded), threads and device."""
    rows = []
    for path in sorted(Path(folder).glob("*/training_manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        seconds, steps = manifest.get("train_seconds"), manifest.get("steps")
        if not seconds or not steps:
            continue
        per_step = (manifest.get("batches") or {}).get("pairs_per_step") or {}
        batch = sum(per_step.values()) or (manifest.get("options") or {}).get("batch_size") or 0
        rows.append({"run_id": path.parent.name, "trainer": manifest.get("trainer", "?"), "steps": int(steps),
                     "pairs": int(steps) * int(batch), "seconds": float(seconds),
                     "step_seconds": steady_step_seconds(manifest.get("timeline") or []),
                     "threads": manifest.get("torch_threads"),
                     "device": manifest.get("device_name") or manifest.get("device") or "not recorded"})
    return pd.DataFrame(rows, columns=TRAINING_COLUMNS)


def steady_step_seconds(timeline: list[list]) -> float:
    """The median seconds a step over the intervals of a timeline of [step, seconds] (NaN without two points)."""
    rates = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(timeline, timeline[1:]) if s1 > s0]
    return float(np.median(rates)) if rates else float("nan")


def scoring_costs(store: ResultStore) -> pd.DataFrame:
    """One row per (run, dataset) scored: dense or BM25, tasks, seconds summed over the tasks' stages (model
    loading, paid once per run, left out), threads, device, and `cached`: some of its texts came from the
    embedding cache of an earlier run, so its seconds are not what scoring costs."""
    records = store.records()
    if records.empty:
        return pd.DataFrame(columns=SCORING_COLUMNS)
    records = records.assign(seconds=records[summed_stages(records)].sum(axis=1, min_count=1))
    grouped = records.groupby(["run_id", "dense", "dataset"], as_index=False).agg(
        tasks=("seconds", "size"), seconds=("seconds", "sum"), threads=("threads", "first"),
        device=("device", "first"), cached=("cached_texts", lambda n: bool((n > 0).any())))
    return grouped[SCORING_COLUMNS]


@dataclass
class Pace:
    """The measured pace of an experiment's store: seconds per training pair (each checkpoint's steady pace
    where its timeline is recorded), and per scored task of each dataset (dense and BM25 apart). Medians over
    runs, so that one run slowed by other work moves it little; runs served from the embedding cache, and runs
    part-way through a dataset, are left out."""

    seconds_per_pair: float | None
    seconds_per_task: dict[tuple[bool, str], float]
    checkpoints: int
    runs: int

    @classmethod
    def measure(cls, store: ResultStore) -> Pace:
        training = training_costs(store.folder)
        training = training[training["pairs"] > 0]
        scoring = scoring_costs(store)
        scoring = scoring[~scoring["cached"].astype(bool)]
        # A checkpoint's steady pace where its timeline is recorded, else its recorded seconds over its pairs.
        steady = training["step_seconds"] * training["steps"]
        per_pair = (float((steady.fillna(training["seconds"]) / training["pairs"]).median()) if len(training)
                    else None)
        per_task = {}
        if len(scoring):
            # A run part-way through a dataset paid its fixed costs (the first task of a language encodes the
            # shared passages) over few tasks: only runs with the dataset's full count of tasks set the pace.
            full = scoring.groupby(["dense", "dataset"])["tasks"].transform("max")
            scoring = scoring[scoring["tasks"] == full]
            scoring = scoring.assign(per_task=scoring["seconds"] / scoring["tasks"])
            per_task = {(bool(dense), str(dataset)): float(value) for (dense, dataset), value
                        in scoring.groupby(["dense", "dataset"])["per_task"].median().items()}
        return cls(per_pair, per_task, len(training), scoring["run_id"].nunique() if len(scoring) else 0)

    def training(self, pairs: int) -> float | None:
        """Seconds to train on `pairs` pairs (optimiser steps x pairs a step)."""
        return None if self.seconds_per_pair is None else self.seconds_per_pair * pairs

    def scoring(self, dense: bool, remaining: dict[str, int]) -> float | None:
        """Seconds for the remaining tasks (dataset -> count); None when a dataset has no measured pace yet."""
        try:
            return sum(self.seconds_per_task[(dense, dataset)] * n for dataset, n in remaining.items())
        except KeyError:
            return None


def duration(seconds: float) -> str:
    """'45 s', '27 min', '3.4 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
