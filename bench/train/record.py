"""What a training run accumulates step by step: the loss curve, the pace, every batch drawn and the steps it
resumed at. One object, so that the resume state (resume.py) saves and restores it whole and the manifest
(manifest.py) reads it, instead of six loose lists kept in step by hand."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunRecord:
    curve: list[dict] = field(default_factory=list)  # the mean of each term every log_every steps: deterministic
    # [step, training seconds so far] at each logged step: the pace (bench/costs.py). Kept apart from the curve,
    # because a pause or a resume lengthens one interval.
    timeline: list[list] = field(default_factory=list)
    window: dict[str, list[float]] = field(default_factory=dict)  # each term's values since the last logged step
    batches: list[dict] = field(default_factory=list)  # per step and role: what the sampler drew (Batch.record)
    resumes: list[int] = field(default_factory=list)  # the steps a cut-off run continued from
    trained_before: float = 0.0  # training seconds before this process took over
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def resumed(cls, saved: dict) -> RunRecord:
        """The record as it was when `saved` (a resume state) was taken; this process resumes at its step."""
        return cls(curve=saved["curve"], timeline=saved.get("timeline", []), window=saved["window"],
                   batches=saved["batches"], resumes=[*saved["resumes"], saved["step"]],
                   trained_before=saved["train_seconds"])

    def state(self) -> dict:
        """The keys a resume state keeps of the record (resumed() reads them back)."""
        return {"curve": self.curve, "window": self.window, "batches": self.batches, "resumes": self.resumes,
                "timeline": self.timeline, "train_seconds": self.seconds()}

    def seconds(self) -> float:
        """Training seconds so far, over every process that worked on this run."""
        return self.trained_before + time.perf_counter() - self.started

    def add(self, terms: dict[str, float]) -> None:
        for name, value in terms.items():
            self.window.setdefault(name, []).append(value)

    def log(self, step: int, lr: float, mean: Callable[[list[float]], list[float]] | None = None) -> dict:
        """Close the window at `step` (1-based): one point on the curve and the timeline. `mean` turns this
        process's window means into the means over all ranks (DDP); a single process keeps its own."""
        names = list(self.window)
        means = [sum(self.window[n]) / len(self.window[n]) for n in names]
        if mean is not None:
            means = mean(means)
        point = {"step": step, **{n: round(float(v), 6) for n, v in zip(names, means)}, "lr": lr}
        self.curve.append(point)
        self.timeline.append([step, round(self.seconds(), 3)])
        self.window = {}
        return point
