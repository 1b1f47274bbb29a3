"""Where things live: the data mirror, the user cache, results and reports."""

from __future__ import annotations

import os
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


def results_root() -> Path:
    return Path(os.environ.get("BENCH_RESULTS", PROJECT_ROOT / "results"))


def reports_root() -> Path:
    """Generated reports: $BENCH_REPORTS, else reports/ beside the results folder (the project's reports/ by
    default), so that a report of another project's results never lands in this one."""
    if os.environ.get("BENCH_REPORTS"):
        return Path(os.environ["BENCH_REPORTS"]).expanduser()
    return results_root().parent / "reports"
