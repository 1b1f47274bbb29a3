"""`python -m bench sweep`: tune mtl's auxiliary weights on a dev split."""

from __future__ import annotations

import argparse
import sys


def handle(args: argparse.Namespace) -> int:
    from bench.train.options import options_from_args
    from bench.train.sweep import SweepOptions, best, run_sweep

    options = options_from_args(SweepOptions, args)
    table = run_sweep(options, log=lambda message: print(message, file=sys.stderr))
    top = best(table)
    print(f"{table}: best mean dev mAP {top['value']:.4f}: {top['config']} (w_lid {top['w_lid']}, reversal "
          f"{top['reversal']}, w_translation {top['w_translation']})")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.train.options import add_option_arguments
    from bench.train.sweep import SweepOptions

    sweep = commands.add_parser("sweep", help="tune mtl's auxiliary weights on a dev split held out from the "
                                "training questions",
                                description="Trains each configuration of bench/train/sweep.py's GRID with "
                                "--dev-fraction of the training questions held out, scores it on them (LAReQA mAP "
                                "mono, cross, multi) and appends to <out>/sweep.csv; configurations already there are "
                                "skipped. Never scores on an evaluation set.")
    add_option_arguments(sweep, SweepOptions)
    sweep.set_defaults(func=handle)
