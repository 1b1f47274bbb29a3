"""`python -m bench run`: evaluate models on a suite."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.cli.common import add_output_argument, add_precision_argument, checked_precision, positive_int
from bench.cli.tables import summary_text


def handle(args: argparse.Namespace) -> int:
    from bench.data.suites import SUITES, SuiteOptions, suite_tasks
    from bench.eval.runner import run_models, summary_table
    from bench.models.registry import (DEFAULT_MODELS, resolve_model, with_backend, with_bm25_parameters,
                                       with_max_seq_length, with_precision, with_prompts, with_search)
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
    if args.query_prompt is not None or args.doc_prompt is not None:
        specs = [with_prompts(spec, args.query_prompt, args.doc_prompt) for spec in specs]
    if args.bm25_k1 is not None or args.bm25_b is not None:
        specs = [with_bm25_parameters(spec, args.bm25_k1, args.bm25_b) for spec in specs]
    dense_options = _dense_options(args, specs)
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
    if args.dry_run:
        from bench.reproduce import format_plan, plan

        todo = plan(specs, tasks, experiment, args.k or 1000, args.force, log=lambda m: print(m, file=sys.stderr),
                    dense_options=dense_options)
        print(format_plan(todo, str(ResultStore(experiment).folder)))
        return 0
    rows = run_models(specs, tasks, experiment, force=args.force, k=args.k or 1000, batch_size=args.batch_size,
                      # --force recomputes from the model itself: a damaged embedding cache must not survive it.
                      cache=not (args.no_cache or args.force), device=args.device,
                      **({"dense_options": dense_options} if dense_options is not None else {}))
    print()
    print(summary_text(summary_table(rows)) if not rows.empty else "no results")
    print(f"\n{len(rows)} rows in {ResultStore(experiment).folder} ({time.perf_counter() - start:.0f} s)")
    return _compare_with_committed(experiment, specs, tasks, rows)


# Options of the sharded path and of FAISS search (issue 17): None when not given.
DENSE_SCALE = ("shard_size", "encode_processes", "encode_devices", "embedding_dtype", "ivf_nlist", "ivf_nprobe",
               "hnsw_m", "hnsw_ef_search", "faiss_index")


def _dense_options(args: argparse.Namespace, specs: list):
    """DenseOptions from the command line (None when no option of it is given); ValueError for ANN parameters
    that do not apply to a dense model's --search, or with BM25 alone."""
    given = {name: getattr(args, name, None) for name in DENSE_SCALE if getattr(args, name, None) is not None}
    if not given:
        return None
    from bench.retrieval.dense.options import DenseOptions

    dense = [spec for spec in specs if spec.kind == "dense"]
    if not dense:
        raise ValueError(f"{', '.join('--' + n.replace('_', '-') for n in given)} only apply to dense models; "
                         "--model names BM25 alone")
    if "encode_devices" in given:
        given["encode_devices"] = tuple(given["encode_devices"])
    options = DenseOptions(**given)
    for spec in dense:
        options.check_search(spec.search)
    return options


def _compare_with_committed(experiment: str, specs: list, tasks: list, rows) -> int:
    """The 2CR ending: obtained beside the committed scores of the same run ids and tasks; 1 on any FAIL."""
    from bench.reproduce import compare, expected_scores, expected_store, format_summary, summary

    expected, notes = expected_scores(experiment, [spec.key for spec in specs], tasks) if not rows.empty \
        else (None, [])
    for note in notes:
        print(note)
    if expected is None or expected.empty:
        store = expected_store(experiment)
        print("no committed scores to compare with" + (f" in {store.folder}" if store else
              " (this run wrote the committed results themselves, or the experiment has none)"))
        return 0
    table = summary(compare(expected, rows))
    print()
    print(format_summary(table, str(expected_store(experiment).folder)))
    return 1 if (table["status"] == "FAIL").any() else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.data.suites import SUITES

    run = commands.add_parser("run", help="evaluate models on a suite; tidy rows land in <output>/<experiment>/, "
                              "then beside the committed scores: OK / OKish / FAIL",
                              description="Scores models on a suite into the output folder (default outputs/results, "
                              "gitignored; --output or $BENCH_RESULTS to choose), then compares every score with the "
                              "committed results/<experiment>/ of the same run id and task, as pyserini's two-click "
                              "reproductions: OK (within 1e-6), OKish (within 1e-4 untrained, 2e-3 trained), FAIL "
                              "(exit status 1).")
    # Short flags as mteb's CLI has them (-m model, -t tasks, -l languages); -d for datasets too.
    run.add_argument("--suite", required=True, choices=list(SUITES), help="which benchmark suite")
    run.add_argument("-m", "--model", nargs="+", help="registry names, model folders or Hugging Face ids "
                     "(default: bm25 minilm-l6 me5-small)")
    run.add_argument("-d", "-t", "--datasets", "--tasks", dest="datasets", nargs="+", help="datasets of the suite "
                     "(BEIR default: scifact nfcorpus arguana; -t/--tasks as in mteb)")
    run.add_argument("--split", help="split to evaluate (BEIR default: test)")
    run.add_argument("-l", "--langs", nargs="+", help="languages (multilingual suites)")
    run.add_argument("--settings", nargs="+", help="settings (LAReQA: mono cross multi)")
    run.add_argument("--corpus", help="corpus folder (MIRACL)")
    run.add_argument("--experiment", help="<output>/<experiment>/ (default per suite, e.g. beir-baselines)")
    add_output_argument(run)
    run.add_argument("--dry-run", action="store_true", help="print what would be computed and how long it took "
                     "when the committed results were made; compute nothing")
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
    run.add_argument("--search", choices=["exact", "faiss", "faiss-ivf", "faiss-hnsw"], help="dense top-k: exact "
                     "(chunked matrix products, default), faiss (IndexFlatIP, exact), faiss-ivf (inverted lists, "
                     "approximate; run id <model>+ivf), faiss-hnsw (HNSW graph, approximate; run id <model>+hnsw); "
                     "approximate runs record search_recall, their recall@k against exact search on up to 100 "
                     "queries")
    # Large corpora (issue 17): sharded encoding and saved FAISS indexes.
    run.add_argument("--shard-size", type=positive_int, metavar="N", help="encode the corpus in shards of N "
                     "documents, each written to disk when done (resumable) and searched through memory maps; "
                     "default: in memory up to 500,000 documents, shards of 65,536 above")
    run.add_argument("--encode-processes", type=positive_int, metavar="N", help="encode shards in N processes "
                     "(sentence-transformers' multi-process pool, whole shards each; fp32 torch only; implies "
                     "shards)")
    run.add_argument("--encode-devices", nargs="+", metavar="DEVICE", help="the pool's devices, one process each "
                     "(cuda:0 cuda:1 ..., cpu cpu); implies shards")
    run.add_argument("--embedding-dtype", choices=["float32", "float16"], help="how document embeddings are "
                     "stored and searched (default float32; float16 halves the disk and memory, scores move by "
                     "about 1e-3, recorded)")
    run.add_argument("--ivf-nlist", type=positive_int, metavar="N", help="faiss-ivf: inverted lists (default "
                     "min(4 sqrt(n), n/39))")
    run.add_argument("--ivf-nprobe", type=positive_int, metavar="N", help="faiss-ivf: lists searched per query "
                     "(default 32)")
    run.add_argument("--hnsw-m", type=positive_int, metavar="M", help="faiss-hnsw: links per node (default 32)")
    run.add_argument("--hnsw-ef-search", type=positive_int, metavar="N", help="faiss-hnsw: search breadth "
                     "(default max(2k, 128))")
    run.add_argument("--faiss-index", metavar="PATH", help="use this saved FAISS index (a .index file with its "
                     ".json beside); an error if it was built for another model, corpus or parameters")
    run.add_argument("--device", help="where dense models run: cpu, cuda, cuda:1 ... (default: the GPU when there "
                     "is one, else cpu; the run record names it)")
    add_precision_argument(run, "dense encoding")
    # Model options (issue 15): each changes the numbers, so each non-default value is part of the run id.
    run.add_argument("--query-prompt", metavar="TEXT", help="prompt put before every query instead of the model's "
                     "own (\"\" for none; me5-small's is \"query: \"); run id <model>+p<8 hex>, prompts recorded")
    run.add_argument("--doc-prompt", metavar="TEXT", help="prompt put before every document instead of the "
                     "model's own (\"\" for none; me5-small's is \"passage: \"); run id <model>+p<8 hex>")
    run.add_argument("--bm25-k1", type=float, metavar="K1", help="BM25 term-frequency saturation (default 0.9, "
                     "Anserini's BEIR setting); other values: run id bm25-k<k1>-b<b>, e.g. bm25-k1.2-b0.75")
    run.add_argument("--bm25-b", type=float, metavar="B", help="BM25 length normalisation, 0 to 1 (default 0.4)")
    run.set_defaults(func=handle)
