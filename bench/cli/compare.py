"""`python -m bench compare RUN_A RUN_B`: paired per-query tests of two runs on the tasks they share."""

from __future__ import annotations

import argparse
import sys

from bench.cli.tables import TABLE_FORMATS


def handle(args: argparse.Namespace) -> int:
    from bench.report.pairwise import compare, render

    comparison = compare(args.run_a, args.run_b, experiment=args.experiment, metrics=args.metric, test=args.test,
                         n_resamples=args.resamples, seed=args.seed)
    table, notes = render(comparison, args.format)
    print(table)
    for line in notes:
        print(line, file=sys.stderr)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.cli.common import positive_int
    from bench.report.pairwise import TESTS

    compare = commands.add_parser(
        "compare", help="paired per-query significance tests of two runs on the tasks they share",
        description="For each task both runs were scored on (same data, checked by content): mean A, mean B, "
        "delta, a paired test's p-value, the paired-bootstrap 95%% interval of the mean delta, n queries and "
        "wins/ties/losses, Holm-corrected across the tasks; settings split into languages or pairs also get a "
        "macro row.")
    compare.add_argument("run_a", metavar="RUN_A", help="a run id as `bench show` lists it (bm25, me5-small, "
                         "minilm-l6+bf16), or EXPERIMENT/RUN")
    compare.add_argument("run_b", metavar="RUN_B", help="the run compared with (same forms)")
    compare.add_argument("--experiment", help="the experiment of runs named without one")
    compare.add_argument("--metric", action="append", metavar="METRIC",
                         help="a per-query metric to compare (repeatable; default: each task's main metric, nDCG@10 "
                         "for BEIR and MIRACL, mAP for LAReQA); top-k metrics missing from the stored per-query "
                         "scores are computed from the TREC run files")
    compare.add_argument("--test", choices=tuple(TESTS), default="permutation",
                         help="paired test (default permutation: the sign-flip randomisation test)")
    compare.add_argument("--resamples", type=positive_int, default=10_000,
                         help="randomisation and bootstrap resamples (default 10000)")
    compare.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    compare.add_argument("--format", choices=TABLE_FORMATS, default="text", help="table format (default text)")
    compare.set_defaults(func=handle)
