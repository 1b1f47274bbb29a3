"""`python -m bench run`: evaluate models on a suite."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.cli.common import add_precision_argument, checked_precision, positive_int
from bench.cli.tables import summary_text


def handle(args: argparse.Namespace) -> int:
    from bench.data.suites import SUITES, SuiteOptions, suite_tasks
    from bench.eval.runner import run_models, summary_table
    from bench.models.registry import (DEFAULT_MODELS, resolve_model, with_backend, with_max_seq_length,
                                       with_precision, with_search)
    from bench.preflight import check_run
    from bench.results import ResultStore

    check_run(args)
    specs = [resolve_model(name) for name in args.model or DEFAULT_MODELS]  # bad names fail before any work
    if args.backend:
        specs = [with_backend(spec, args.backend) for spec in specs]
    precision = checked_precision(args)
    if precision != "fp32":
        specs = [with_precision(spec, precision) for spec in specs]
    if args.search:
        specs = [with_search(spec, args.search) for spec in specs]
    if args.max_seq_length:
        specs = [with_max_seq_length(spec, args.max_seq_length) for spec in specs]
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
    rows = run_models(specs, tasks, experiment, force=args.force, k=args.k or 1000, batch_size=args.batch_size,
                      # --force recomputes from the model itself: a damaged embedding cache must not survive it.
                      cache=not (args.no_cache or args.force), device=args.device)
    print()
    print(summary_text(summary_table(rows)) if not rows.empty else "no results")
    print(f"\n{len(rows)} rows in {ResultStore(experiment).folder} ({time.perf_counter() - start:.0f} s)")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.data.suites import SUITES

    run = commands.add_parser("run", help="evaluate models on a suite; tidy rows land in results/<experiment>/")
    # Short flags as mteb's CLI has them (-m model, -l languages); -d for datasets, free in both.
    run.add_argument("--suite", required=True, choices=list(SUITES), help="which benchmark suite")
    run.add_argument("-m", "--model", nargs="+", help="registry names, model folders or Hugging Face ids "
                     "(default: bm25 minilm-l6 me5-small)")
    run.add_argument("-d", "--datasets", nargs="+", help="datasets of the suite (BEIR default: scifact nfcorpus arguana)")
    run.add_argument("--split", help="split to evaluate (BEIR default: test)")
    run.add_argument("-l", "--langs", nargs="+", help="languages (multilingual suites)")
    run.add_argument("--settings", nargs="+", help="settings (LAReQA: mono cross multi)")
    run.add_argument("--corpus", help="corpus folder (MIRACL)")
    run.add_argument("--experiment", help="results/<experiment>/ (default per suite, e.g. beir-baselines)")
    run.add_argument("--force", action="store_true", help="recompute tasks whose results exist")
    run.add_argument("--max-seq-length", type=positive_int, help="truncate dense-model inputs to this many tokens "
                     "(a recorded cut: the run id gets an -L<N> suffix; default: the model's own limit)")
    run.add_argument("--k", type=positive_int, help="ranking depth of top-k suites: beir, miracl (default 1000)")
    run.add_argument("--batch-size", type=positive_int, default=32, help="encoding batch size (default 32)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache "
                     "(<cache>/embeddings; see python -m bench cache)")
    run.add_argument("--backend", choices=["torch", "int8", "onnx"], help="dense encoder backend: torch (fp32, "
                     "default), int8 (dynamic quantisation), onnx (ONNX Runtime); a non-fp32 backend gets its own run "
                     "id <model>+<backend>, reported beside the fp32 one (also: --model me5-small+int8)")
    run.add_argument("--search", choices=["exact", "faiss", "faiss-hnsw"], help="dense top-k: exact (chunked "
                     "matrix products, default), faiss (IndexFlatIP, exact), faiss-hnsw (approximate, for large "
                     "corpora; run id <model>+hnsw)")
    run.add_argument("--device", help="where dense models run: cpu, cuda, cuda:1 ... (default: the GPU when there "
                     "is one, else cpu; the run record names it)")
    add_precision_argument(run, "dense encoding")
    run.set_defaults(func=handle)
