"""`python -m bench perf`: how fast the harness is, measured against the machine and against the libraries
users would otherwise run, in fp32 and bf16 side by side, all in one run on one machine. Writes
results/perf/<timestamp>.json (everything) and results/perf/summary.json (the headline figures).

Sections (each can be skipped; every precision in --precision is measured: by default fp32, and bf16
where this CPU runs it natively):
1. matmul peak (machine.py): best GFLOP/s of large torch.matmul at the encoder's thread count, fp32 and bf16.
2. encode (encode.py): passages/s, tokens/s and GFLOP/s of our encoder on a fixed BEIR slice at
   --encode-seq-length tokens, per model and precision, beside sentence-transformers' model.encode on the same
   texts, as a share of the matmul peak in the same precision.
3. e2e (pipelines.py): `bench run --suite beir` on the dataset for --e2e-model, cold in fp32 and in bf16 (empty
   embedding cache, fresh process) and warm, against beir's own pipeline and mteb.evaluate (fp32) and
   sentence-transformers' own bf16 path (weights cast to bf16), each in its own subprocess (worker.py): wall
   time measured from outside, peak memory the worker's own high-water mark (VmHWM).
4. scaling (pipelines.py): the fp32 cold pipeline on the first 1k, 2k, 4k, 8k documents of a pool of corpora.
5. train (train.py): steps/s of every registered trainer in each precision against a plain
   SentenceTransformerTrainer run (bf16=True for the bf16 row).
6. budget (budget.py; only with --section budget): the encode slice through our encoder at several padded-token
   budgets per batch (--budgets, tokens per row), in each precision, with the e2e model at its own max length.
7. scale (scale.py; only with --section scale): synthetic corpora of --scale-sizes passages through the
   large-corpus path (streamed corpus, sharded multi-process encoding with a tiny model, FAISS flat / HNSW / IVF
   over the shards, blocked exact search): seconds, docs/s and peak memory per stage, and their growth with N.
`--section NAME ...` runs only the sections named; `--skip NAME ...` leaves sections out.
Every timing is the median of --reps repetitions, interleaved across pipelines so that a slow spell of the
machine does not fall on one pipeline only. summary.py turns the report into summary.json and the targets.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.machine import usable_cores
from bench.paths import results_root
from bench.perf.data import perf_task, slice_texts
from bench.perf.encode import encode_throughput, encoder_flops
from bench.perf.machine import machine, matmul_peak
from bench.perf.options import SECTIONS, Log, PerfOptions
from bench.perf.pipelines import Pipeline, end_to_end, run_pipeline, scaling
from bench.perf.summary import HEADLINE_SECTIONS, headline, print_report, write_report
from bench.perf.train import train_throughput

__all__ = ["PerfOptions", "Pipeline", "add_perf_parser", "encoder_flops", "headline", "perf_task", "run_perf",
           "run_pipeline"]


def run_perf(options: PerfOptions, log: Log = print) -> tuple[dict, dict]:
    from bench.precision import check_precision

    for precision in options.precisions:
        check_precision(precision, "cpu")  # before any timing: a precision this CPU would emulate is refused
    for precision, why in options.precisions_left_out.items():
        log(f"{precision} left out: {why} (its rows and targets stay empty)")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report: dict = {"options": {k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
                                for k, v in asdict(options).items()},
                    "machine": machine(), "created_at": created}
    threads = usable_cores()
    if options.runs("matmul") or options.runs("encode"):
        log(f"matmul peak ({threads} threads, {' and '.join(options.precisions)}) ...")
        report["matmul"] = {p: matmul_peak(threads, p) for p in options.precisions}
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        work = Path(tmp)
        if "encode" not in options.skip:
            texts = slice_texts(options.dataset, options.docs)
            report["encode"] = []
            for name in options.models:
                for precision in options.precisions:
                    log(f"encode throughput: {name} {precision}, {len(texts)} {options.dataset} passages at "
                        f"{options.encode_seq_length} tokens ...")
                    report["encode"].append(encode_throughput(name, texts, options,
                                                              report["matmul"][precision]["gflops"], log, precision))
        if "e2e" not in options.skip:
            log(f"end to end: {options.e2e_model} on {options.dataset} ...")
            report["e2e"] = end_to_end(options, work, log)
        if "scaling" not in options.skip:
            log(f"scaling: {options.e2e_model} on {'+'.join(options.scaling_datasets)} ...")
            report["scaling"] = scaling(options, work, log)
        if "train" not in options.skip:
            log(f"training throughput: {options.train_model}, {options.train_steps} steps ...")
            report["train"] = train_throughput(options, work, log)
        if options.runs("budget"):
            from bench.perf.budget import token_budget

            log(f"token budget: {options.e2e_model}, tokens per row {' '.join(map(str, options.budgets))} ...")
            report["budget"] = token_budget(options, slice_texts(options.dataset, options.docs), log)
        if options.runs("scale"):
            from bench.perf.scale import scale  # here: `python -m bench.perf.scale` runs each size

            log(f"scale: {' '.join(map(str, sorted(options.scale_sizes)))} documents, "
                f"{options.scale_processes} encoding processes ...")
            report["scale"] = scale(options, work, log)
    summary = headline(report)
    complete = all(options.runs(section) for section in HEADLINE_SECTIONS)
    path, summary_path = write_report(report, summary, options.out or results_root() / "perf", complete)
    print_report(report, summary, log)
    log(f"\nwrote {path}" + (f" and {summary_path}" if summary_path else
                              " (its summary inside it; summary.json is left to full runs)"))
    return report, summary


def add_perf_parser(commands) -> None:
    d = PerfOptions()
    perf = commands.add_parser(
        "perf", help="throughput benchmark in fp32 and bf16: encoder vs matmul peak, end to end vs beir, mteb and "
                     "sentence-transformers' bf16, cache, scaling, training; writes results/perf/",
        description=__doc__.split("\n\n")[0])
    perf.add_argument("--models", nargs="+", default=list(d.models), help="encode-throughput models "
                      f"(default {' '.join(d.models)})")
    perf.add_argument("--dataset", default=d.dataset, help=f"BEIR dataset of the encode slice and e2e ({d.dataset})")
    perf.add_argument("--docs", type=int, default=d.docs, help=f"encode slice: first N documents by id ({d.docs})")
    perf.add_argument("--encode-seq-length", type=int, default=d.encode_seq_length,
                      help=f"max tokens in the encode section ({d.encode_seq_length})")
    perf.add_argument("--model", dest="e2e_model", default=d.e2e_model, help=f"e2e and scaling model ({d.e2e_model})")
    perf.add_argument("--e2e-docs", type=int, default=d.e2e_docs, help="e2e on the first N documents only "
                      "(default: the whole dataset)")
    perf.add_argument("--max-seq-length", type=int, help="e2e and scaling max tokens, the same for every "
                      "pipeline (default: the model's own)")
    perf.add_argument("--batch-size", type=int, default=d.batch_size, help=f"encoding batch size ({d.batch_size})")
    perf.add_argument("--reps", type=int, default=d.reps, help=f"repetitions; medians reported ({d.reps})")
    perf.add_argument("--sizes", type=int, nargs="+", default=list(d.sizes), help="scaling corpus sizes "
                      f"({' '.join(map(str, d.sizes))})")
    perf.add_argument("--scaling-datasets", nargs="+", default=list(d.scaling_datasets),
                      help=f"pooled corpora for scaling ({' '.join(d.scaling_datasets)})")
    perf.add_argument("--train-model", default=d.train_model, help=f"training base model ({d.train_model})")
    perf.add_argument("--train-steps", type=int, default=d.train_steps, help=f"steps per trainer ({d.train_steps})")
    perf.add_argument("--train-batch-size", type=int, default=d.train_batch_size, help=f"({d.train_batch_size})")
    perf.add_argument("--train-seq-length", type=int, default=d.train_seq_length, help=f"({d.train_seq_length})")
    perf.add_argument("--trainers", nargs="+", help="trainers to time (default: all registered)")
    perf.add_argument("--budgets", type=int, nargs="+", default=list(d.budgets), metavar="TOKENS",
                      help=f"budget: tokens per row timed ({' '.join(map(str, d.budgets))})")
    perf.add_argument("--precision", nargs="+", dest="precisions", metavar="fp32|bf16",
                      help="precisions measured side by side (default: fp32, and bf16 where this CPU runs it "
                           "natively; here: " + " ".join(d.precisions) + ")")
    perf.add_argument("--section", nargs="+", choices=SECTIONS, metavar="NAME",
                      help=f"run only these sections ({', '.join(SECTIONS)}); scale runs only when named here")
    perf.add_argument("--skip", nargs="+", default=[], choices=SECTIONS, help="sections to leave out")
    perf.add_argument("--scale-sizes", type=int, nargs="+", default=list(d.scale_sizes),
                      help=f"scale: corpus sizes ({' '.join(map(str, d.scale_sizes))})")
    perf.add_argument("--scale-processes", type=int, default=d.scale_processes,
                      help=f"scale: encoding processes ({d.scale_processes})")
    perf.add_argument("--scale-queries", type=int, default=d.scale_queries,
                      help=f"scale: queries drawn from the passages ({d.scale_queries})")
    perf.add_argument("--scale-shard-size", type=int, help="scale: documents per shard (default: min(65536, "
                      "N / processes))")
    perf.add_argument("--skip-mteb", action="store_true", help="same as --skip mteb")
    perf.add_argument("--skip-beir", action="store_true", help="same as --skip beir")
    perf.add_argument("--out", help="output folder (default results/perf)")
    perf.set_defaults(func=_perf)


def _perf(args) -> int:
    for name in ("docs", "reps", "batch_size", "train_steps", "train_batch_size", "encode_seq_length"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    skip = tuple(args.skip) + (("mteb",) if args.skip_mteb else ()) + (("beir",) if args.skip_beir else ())
    options = PerfOptions(
        models=tuple(args.models), dataset=args.dataset, docs=args.docs, encode_seq_length=args.encode_seq_length,
        e2e_model=args.e2e_model, e2e_docs=args.e2e_docs, max_seq_length=args.max_seq_length,
        batch_size=args.batch_size, reps=args.reps, sizes=tuple(args.sizes),
        scaling_datasets=tuple(args.scaling_datasets), train_model=args.train_model, train_steps=args.train_steps,
        train_batch_size=args.train_batch_size, train_seq_length=args.train_seq_length,
        trainers=tuple(args.trainers) if args.trainers else None, budgets=tuple(dict.fromkeys(args.budgets)),
        precisions=tuple(dict.fromkeys(args.precisions)) if args.precisions else None,
        sections=tuple(args.section) if args.section else None, skip=skip,
        scale_sizes=tuple(dict.fromkeys(args.scale_sizes)), scale_processes=args.scale_processes,
        scale_queries=args.scale_queries, scale_shard_size=args.scale_shard_size,
        out=Path(args.out) if args.out else None)
    run_perf(options, log=lambda message: print(message, flush=True))
    return 0
