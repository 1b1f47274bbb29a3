"""`python -m bench crosscheck`: our BEIR scores beside beir's and mteb's own pipelines."""

from __future__ import annotations

import argparse

from bench.cli.common import add_precision_argument, checked_precision


def handle(args: argparse.Namespace) -> int:
    from bench.eval.crosscheck import CROSSCHECK_METRICS, run_crosschecks
    from bench.models.registry import resolve_model, with_precision

    spec, precision = resolve_model(args.model), checked_precision(args)
    if precision != "fp32":
        spec = with_precision(spec, precision)
    for report, path in run_crosschecks(spec, args.datasets, args.split, args.tools, args.experiment):
        print(f"\n{report['model']} on {report['dataset']} ({report['split']}):")
        for metric in CROSSCHECK_METRICS:
            values = "  ".join(f"{tool} {report['scores'][tool][metric]:.5f}" for tool in report["scores"])
            print(f"  {metric:<11} {values}  max |diff| {report['max_abs_difference'][metric]:.1e}")
        seconds = ", ".join(f"{tool} {s} s" for tool, s in report["seconds"].items())
        print(f"  wall time: {seconds} -> {path}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("crosscheck", help="our BEIR scores beside beir's and mteb's own pipelines "
                                "(same model, same data)")
    check.add_argument("--model", default="minilm-l6", help="a dense model (default minilm-l6)")
    check.add_argument("--datasets", nargs="+", default=["scifact"], help="BEIR datasets (default scifact)")
    check.add_argument("--split", default="test")
    add_precision_argument(check, "our encoding (beir and mteb always run their fp32 path, the reference)")
    check.add_argument("--tools", nargs="+", default=["beir", "mteb"], choices=["beir", "mteb"],
                       help="independent pipelines to compare with (default both)")
    check.add_argument("--experiment", default="beir-baselines", help="where our scores are stored or computed")
    check.set_defaults(func=handle)
