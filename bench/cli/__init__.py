"""`python -m bench ...`: one module per command, each with `add_parser(commands)` and `handle(args)`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bench.cli import (cache, check, compare, crosscheck, experiment, export, listing, report, run, show, sweep,
                       train)
from bench.cli.common import output_folder
from bench.cli.tables import summary_text
from bench.data.task import DataError

__all__ = ["build_parser", "main", "summary_text"]

# In the order `--help` lists them.
COMMANDS = (run, crosscheck, show, compare, cache, listing, train, sweep, experiment, check, export, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run suites, train, report; list the "
                                     "registries.")
    parser.add_argument("-v", "--verbose", action="store_true", help="library log messages")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    from bench.perf import add_perf_parser

    add_perf_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    if not os.environ.get("BENCH_ONLINE"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the offline defaults: no hub look-ups
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    from bench import interrupts

    try:
        with interrupts.handled(argv), output_folder(args):
            return args.func(args)
    except interrupts.Interrupted as e:
        print(f"\n{interrupts.message(e.signum, argv)}", file=sys.stderr)
        return e.status
    except (DataError, ValueError, OSError) as e:
        # OSError: a model that cannot be loaded (a Hugging Face id offline, a mistyped path).
        print(f"error: {e}", file=sys.stderr)
        return 2
