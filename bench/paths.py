"""Where things live: the data mirror, the user cache, results and reports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The offline data mirror: $BENCH_DATA, else ../shared/data beside the project, else the cache."""
    if os.environ.get("BENCH_DATA"):
        return Path(os.environ["BENCH_DATA"]).expanduser()
    mirror = PROJECT_ROOT.parent / "shared" / "data"
    if mirror.is_dir():
        return mirror
    return cache_root() / "data"


def cache_root() -> Path:
    """Built models, indexes and downloads: $BENCH_CACHE, else ~/.cache/bench."""
    return Path(os.environ.get("BENCH_CACHE", "~/.cache/bench")).expanduser()


def committed_results() -> Path:
    """The committed results (results/ in the repository): the expected scores a re-run is compared with, as
    pyserini's 2CR keeps them. `run` and `experiment` never write there unless told to (--output results)."""
    return PROJECT_ROOT / "results"


def results_root() -> Path:
    """Where this process writes results: $BENCH_RESULTS (which --output sets), else outputs/results/ beside the
    project (gitignored), so that a run on a fresh clone computes its scores instead of finding the committed
    ones."""
    if os.environ.get("BENCH_RESULTS"):
        return Path(os.environ["BENCH_RESULTS"]).expanduser()
    return PROJECT_ROOT / "outputs" / "results"


def experiment_root(name: str) -> Path:
    """Where readers (show, report, export, compare, check --from-results) find the experiment `name`:
    $BENCH_RESULTS when set; else the output folder when the experiment is there (the user's own run); else
    the committed results."""
    if os.environ.get("BENCH_RESULTS"):
        return results_root()
    return results_root() if (results_root() / name).is_dir() else committed_results()


def reports_root(results: Path | None = None) -> Path:
    """Generated reports: $BENCH_REPORTS, else reports/ beside the results folder they are built from (the
    project's reports/ for the committed results, outputs/reports/ for a user's own), so that a report of
    other results never lands over the committed one."""
    if os.environ.get("BENCH_REPORTS"):
        return Path(os.environ["BENCH_REPORTS"]).expanduser()
    return (results or results_root()).parent / "reports"


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Environment variables set for the length of a block (read by stores and spawned processes), the previous
    values put back afterwards (main() also runs in-process, under tests)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
