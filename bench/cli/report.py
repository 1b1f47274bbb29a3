"""`python -m bench report`: an experiment's report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.common import positive_int


def handle(args: argparse.Namespace) -> int:
    from bench.preflight import check_report
    from bench.report.build import build_report

    check_report(args.experiment)
    build_report(args.experiment, Path(args.out) if args.out else None, n_resamples=args.resamples, seed=args.seed,
                 log=lambda message: print(message, file=sys.stderr))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="an experiment's report: the answer to the research question, "
                                 "paper tables beside ours, plots, claim verdicts with paired tests",
                                 description="Writes <out>/README.md (the answer first), claims.md, comparisons.csv, "
                                 "tables/*.md|tex and plots/*.png from results/<experiment>/.")
    report.add_argument("experiment", help="results/<experiment>/")
    report.add_argument("--out", help="output folder (default reports/<experiment>)")
    report.add_argument("--resamples", type=positive_int, default=10_000, help="bootstrap and randomisation "
                        "resamples per test (default 10000)")
    report.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    report.set_defaults(func=handle)
