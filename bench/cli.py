"""`python -m bench ...`: run suites, list the registries."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from bench.data.task import DataError


def _run(args: argparse.Namespace) -> int:
    from bench.data.suites import SUITES, SuiteOptions, suite_tasks
    from bench.eval.runner import run_models, summary_table
    from bench.models.registry import DEFAULT_MODELS

    suite = SUITES[args.suite]
    options = SuiteOptions(
        datasets=tuple(args.datasets) if args.datasets else None, split=args.split,
        langs=tuple(args.langs) if args.langs else None, settings=tuple(args.settings) if args.settings else None,
        corpus=Path(args.corpus) if args.corpus else None,
    )
    start = time.perf_counter()
    tasks = suite_tasks(args.suite, options)
    for task in tasks:
        for warning in task.warnings:
            print(f"warning: {task.dataset} {task.key}: {warning}", file=sys.stderr)
    experiment = args.experiment or suite.default_experiment
    rows = run_models(args.model or list(DEFAULT_MODELS), tasks, experiment, force=args.force, k=args.k,
                      batch_size=args.batch_size)
    table = summary_table(rows)
    print()
    print(table.to_string(float_format=lambda v: f"{v:.4f}") if not table.empty else "no results")
    print(f"\n{len(rows)} rows in results/{experiment}/ ({time.perf_counter() - start:.0f} s)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from bench.data.beir import BEIR_DATASETS
    from bench.data.suites import SUITES
    from bench.models.registry import MODELS

    what = args.what or "all"
    if what in ("models", "all"):
        print("models (or a sentence-transformers folder path, or a Hugging Face id):")
        for spec in MODELS.values():
            print(f"  {spec.name:<12} {spec.kind:<6} {spec.description}")
    if what in ("suites", "all"):
        print("suites:")
        for suite in SUITES.values():
            print(f"  {suite.name:<12} {suite.description}")
    if what in ("datasets", "all"):
        print("BEIR datasets (offline mirror: scifact, nfcorpus, arguana):")
        for dataset in BEIR_DATASETS.values():
            print(f"  {dataset.name:<18} splits: {', '.join(dataset.splits)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bench.data.suites import SUITES

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="library log messages")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="evaluate models on a suite; tidy rows land in results/<experiment>/")
    run.add_argument("--suite", required=True, choices=list(SUITES), help="which benchmark suite")
    run.add_argument("--model", nargs="+", help="registry names, model folders or Hugging Face ids "
                     "(default: bm25 minilm-l6 me5-small)")
    run.add_argument("--datasets", nargs="+", help="datasets of the suite (BEIR default: scifact nfcorpus arguana)")
    run.add_argument("--split", help="split to evaluate (BEIR default: test)")
    run.add_argument("--langs", nargs="+", help="languages (multilingual suites)")
    run.add_argument("--settings", nargs="+", help="settings (LAReQA: mono cross multi)")
    run.add_argument("--corpus", help="corpus folder (MIRACL)")
    run.add_argument("--experiment", help="results/<experiment>/ (default per suite, e.g. beir-baselines)")
    run.add_argument("--force", action="store_true", help="recompute tasks whose results exist")
    run.add_argument("--k", type=int, default=1000, help="ranking depth for top-k tasks (default 1000)")
    run.add_argument("--batch-size", type=int, default=32, help="encoding batch size (default 32)")
    run.set_defaults(func=_run)

    listing = commands.add_parser("list", help="what the registries hold")
    listing.add_argument("what", nargs="?", choices=["models", "suites", "datasets", "all"])
    listing.set_defaults(func=_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if not os.environ.get("BENCH_ONLINE") else None
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except (DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
