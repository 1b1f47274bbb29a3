"""`bench experiment --until WHEN`: a grid run that ends by a given time and starts only the cells that can
finish before it.

Made for machines whose checkpoints do not outlive the session (a lent machine, a job with a wall-clock
limit): a cell trained but cut off before it is scored must be trained again, so starting a 45-minute cell
with 20 minutes left wastes the 20 minutes. A cell starts only when what it still needs (training and
scoring, at the pace measured on the experiment's own results, times MARGIN) fits in the time left; cells
that do not fit are left for a later run and the next cell that fits goes first. At WHEN the run stops as
Ctrl-C stops it: a training in progress saves its state, finished work is kept.

Where the models folder does outlive the run, `--fill` spends the time that no cell fits in on those left,
in order: the training under way at WHEN stops with its state saved and the next run resumes it (plan.py
counts the steps saved), so a cell longer than any one session (a 3000-step learning-curve point) still gets
done."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from typing import TYPE_CHECKING

from bench.costs import Pace, duration

if TYPE_CHECKING:
    from bench.experiment.plan import Step

# The pace is a median over runs on the machine's own results; a test suite or another job sharing the cores
# slows a cell by 20-40%, so a cell is started only when it fits with this much to spare.
MARGIN = 1.25

# --fill starts a cell only with this much time left: loading the model and data takes a few minutes of it.
FILL_MIN = 600.0

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


class DeadlineError(ValueError):
    """A --until that is not a time or a duration, or is already past."""


@dataclass(frozen=True)
class Deadline:
    at: float  # seconds since the epoch
    text: str  # as the user gave it, for messages

    def left(self, now: float | None = None) -> float:
        return self.at - (time.time() if now is None else now)

    def fits(self, seconds: float | None, now: float | None = None) -> bool:
        """Whether work estimated at `seconds` ends before the deadline with MARGIN to spare. Work with no
        estimate (nothing like it measured yet) is started: the stop at the deadline still holds. Nothing left
        to do always fits."""
        return seconds is None or seconds <= 0 or seconds * MARGIN <= self.left(now)

    def describe(self, now: float | None = None) -> str:
        clock = datetime.fromtimestamp(self.at).strftime("%H:%M")
        return f"--until {self.text} ({clock}, {duration(max(0.0, self.left(now)))} from now)"


def parse_until(text: str, now: datetime | None = None) -> Deadline:
    """HH:MM (today), YYYY-MM-DD HH:MM or YYYY-MM-DDTHH:MM (local time), or a duration from now: 2h30m, 90m,
    1.5h, 45s."""
    now = now or datetime.now()
    value = text.strip()
    when = None
    match = _DURATION.match(value)
    if value and match and any(match.groups()):
        hours, minutes, seconds = (float(g or 0) for g in match.groups())
        when = now + timedelta(hours=hours, minutes=minutes, seconds=seconds)
    else:
        for form in ("%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
            try:
                parsed = datetime.strptime(value, form)
            except ValueError:
                continue
            when = datetime.combine(now.date(), parsed.time()) if form == "%H:%M" else parsed
            break
    if when is None:
        raise DeadlineError(f"--until {text!r}: expected a time (21:15, 2026-12-05 21:15) or a duration from now "
                            "(2h30m, 90m, 1.5h)")
    if when <= now:
        raise DeadlineError(f"--until {text}: {when:%Y-%m-%d %H:%M} is already past (now {now:%H:%M}); give a "
                            "later time, a date and time, or a duration such as 2h30m")
    return Deadline(when.timestamp(), value)


def work_left(steps: list[Step], cell: int | None, pace: Pace) -> float | None:
    """Seconds the plan's steps of one cell (None: the references) still need at `pace`. A step with no measured
    pace yet (the first scoring on a new set) counts as nothing, since it cannot be known before it first runs;
    None when no step has one."""
    estimates = [step.estimate(pace) for step in steps if step.cell == cell and not step.done]
    known = [e for e in estimates if e is not None]
    return sum(known) if known or not estimates else None


def fitting(work: list[tuple[str, float | None]], deadline: Deadline, now: float | None = None
            ) -> tuple[list[str], list[str]]:
    """(started, later): which of the (name, seconds needed) in order a run starting now would start before the
    deadline, taking each in turn when it fits in what is left after those before it, as the run does."""
    clock = time.time() if now is None else now
    started, later = [], []
    for name, seconds in work:
        if deadline.fits(seconds, now=clock):
            started.append(name)
            clock += seconds or 0.0
        else:
            later.append(name)
    return started, later


@contextmanager
def stop_at(deadline: Deadline | None) -> Iterator[None]:
    """Send this process SIGINT at the deadline, so that the run stops the way Ctrl-C stops it (inside
    bench.interrupts.handled: a training step finishes and saves its state); the closing line says why."""
    if deadline is None:
        yield
        return

    def stop() -> None:
        from bench import interrupts

        interrupts.progress.notes.append(f"stopped by --until {deadline.text}")
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(max(0.0, deadline.left()), stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
