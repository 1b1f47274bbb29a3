"""`python -m bench check`: re-run an experiment and compare with the stored expected scores."""

from __future__ import annotations

import argparse
import sys


def handle(args: argparse.Namespace) -> int:
    from bench.check import (compare, expected_path, format_report, fresh_scores, read_expected, stored_scores,
                             write_expected)

    path = expected_path(args.experiment)
    if args.from_results:
        scores = stored_scores(args.from_results, args.experiment)
    else:
        scores = fresh_scores(args.experiment, log=lambda message: print(message, file=sys.stderr))
    if args.update:
        print(f"wrote {write_expected(path, scores)} expected scores to {path}")
        return 0
    result = compare(read_expected(path), scores)
    print(format_report(result))
    return 1 if (result["status"] == "FAIL").any() else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("check", help="re-run the smoke experiment and compare with the stored scores "
                                "(OK / OKish / FAIL; exit 1 on FAIL)")
    check.add_argument("--experiment", default="smoke", help="experiment to re-run (default smoke); expected "
                       "scores in results/check/<experiment>-expected.csv")
    check.add_argument("--from-results", metavar="EXPERIMENT", help="compare the stored results/<EXPERIMENT>/ "
                       "instead of re-running")
    check.add_argument("--update", action="store_true", help="write the expected scores from this run")
    check.set_defaults(func=handle)
