"""`python -m bench show`: an experiment's stored results."""

from __future__ import annotations

import argparse
import fnmatch
import sys
from typing import TYPE_CHECKING

from bench.cli.tables import TABLE_FORMATS, summary_text

if TYPE_CHECKING:
    import pandas as pd


def handle(args: argparse.Namespace) -> int:
    from bench.eval.runner import summary_table
    from bench.fingerprint import stale_notes
    from bench.results import ResultStore

    store = ResultStore.find(args.experiment)
    if not store.folder.is_dir():
        raise ValueError(f"no results at {store.folder}; experiments there: "
                         f"{', '.join(sorted(p.name for p in store.folder.parent.iterdir() if p.is_dir())) or 'none'}")
    rows = store.load()
    if rows.empty:
        raise ValueError(f"no results in {store.folder}: nothing to show")
    rows = selected(rows, "run_id", args.runs, "--runs")
    rows = selected(rows, "dataset", args.datasets, "--datasets")
    print(summary_text(summary_table(rows, per_language=args.per_language), args.format))
    for line in stale_notes(store):
        print(line, file=sys.stderr)
    if args.options:
        options = store.run_options()
        print("\nrun options (from the run records):")
        print(options.to_string() if not options.empty else "no run records")
    if args.timings:
        totals = store.stage_totals()
        if totals.empty:
            print(f"\nno run records in {store.folder}: no timings")
            return 0
        print("\nseconds per stage, summed over tasks:")
        print(totals.to_string(float_format=lambda v: f"{v:.1f}"))
    return 0


def selected(rows: pd.DataFrame, column: str, patterns: list[str] | None, flag: str) -> pd.DataFrame:
    """The rows whose `column` matches one of the shell-style patterns (all rows without patterns)."""
    if not patterns:
        return rows
    keep = rows[column].astype(str).map(lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns))
    if not keep.any():
        known = ", ".join(sorted(rows[column].astype(str).unique()))
        raise ValueError(f"{flag} {' '.join(patterns)} matches nothing; there are: {known}")
    return rows[keep]


def add_parser(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser("show", help="an experiment's stored results (macro averages per model)")
    show.add_argument("experiment", help="results/<experiment>/")
    show.add_argument("--timings", action="store_true", help="also seconds per stage and peak memory")
    show.add_argument("--options", action="store_true", help="also the options each run was made with (depth, "
                      "length, precision, backend, search, prompts, BM25 k1/b, batch size, cache, device)")
    show.add_argument("--per-language", action="store_true", help="one row per query / document language "
                      "instead of their macro average")
    show.add_argument("--runs", nargs="+", metavar="GLOB", help="only the runs whose id matches one of these "
                      "shell-style patterns, e.g. 'hybrid-*-s1-*' 'me5-small*'")
    show.add_argument("--datasets", nargs="+", metavar="GLOB", help="only these datasets (patterns as for --runs)")
    show.add_argument("--format", choices=TABLE_FORMATS, default="text", help="table format (default text)")
    show.set_defaults(func=handle)
