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
    from bench.models.registry import (DEFAULT_MODELS, resolve_model, with_backend, with_max_seq_length,
                                       with_precision, with_search)
    from bench.preflight import check_run
    from bench.results import ResultStore

    check_run(args)
    specs = [resolve_model(name) for name in args.model or DEFAULT_MODELS]  # bad names fail before any work
    if args.backend:
        specs = [with_backend(spec, args.backend) for spec in specs]
    precision = _checked_precision(args)
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


def _crosscheck(args: argparse.Namespace) -> int:
    import json

    from bench.data.suites import SuiteOptions, suite_tasks
    from bench.eval.crosscheck import CROSSCHECK_METRICS, crosscheck_report
    from bench.eval.runner import run_models
    from bench.models.registry import resolve_model, with_precision
    from bench.results import ResultStore, atomic_write

    spec, precision = resolve_model(args.model), _checked_precision(args)
    if precision != "fp32":
        spec = with_precision(spec, precision)
    if spec.kind != "dense":
        raise ValueError(f"crosscheck compares dense pipelines; {spec.name} is {spec.kind}")
    store = ResultStore(args.experiment)
    for task in suite_tasks("beir", SuiteOptions(datasets=tuple(args.datasets), split=args.split)):
        rows = run_models([spec], [task], args.experiment)  # reuses stored results
        ours = {m: float(v) for m, v in zip(rows["metric"], rows["value"]) if m in CROSSCHECK_METRICS}
        report = crosscheck_report(spec, task, ours, tools=args.tools)
        path = store.folder / "crosscheck" / f"{spec.key}__{task.key}.json"
        atomic_write(path, lambda p: p.write_text(json.dumps(report, indent=2)))
        print(f"\n{spec.key} on {task.dataset} ({task.split}):")
        for metric in CROSSCHECK_METRICS:
            values = "  ".join(f"{tool} {report['scores'][tool][metric]:.5f}" for tool in report["scores"])
            print(f"  {metric:<11} {values}  max |diff| {report['max_abs_difference'][metric]:.1e}")
        seconds = ", ".join(f"{tool} {s} s" for tool, s in report["seconds"].items())
        print(f"  wall time: {seconds} -> {path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from bench.eval.runner import summary_table
    from bench.fingerprint import stale_notes
    from bench.results import ResultStore

    store = ResultStore(args.experiment)
    if not store.folder.is_dir():
        raise ValueError(f"no results at {store.folder}; experiments there: "
                         f"{', '.join(sorted(p.name for p in store.folder.parent.iterdir() if p.is_dir())) or 'none'}")
    rows = store.load()
    if rows.empty:
        raise ValueError(f"no results in {store.folder}: nothing to show")
    print(summary_text(summary_table(rows, per_language=args.per_language), args.format))
    for line in stale_notes(store):
        print(line, file=sys.stderr)
    if args.timings:
        records = store.records()
        if records.empty:
            print(f"\nno run records in {store.folder}: no timings")
            return 0
        # Model loading is paid once per run, so it is not summed over tasks.
        stages = [c for c in records.columns if c.startswith("s_") and c != "s_load_model"]
        totals = records.groupby(["run_id", "suite", "setting"])[stages].sum(min_count=1)
        totals["tasks"] = records.groupby(["run_id", "suite", "setting"]).size()
        totals["peak_memory_mb"] = records.groupby(["run_id", "suite", "setting"])["peak_memory_mb"].max()
        print("\nseconds per stage, summed over tasks:")
        print(totals.rename(columns=lambda c: c.removeprefix("s_")).to_string(float_format=lambda v: f"{v:.1f}"))
    return 0


TABLE_FORMATS = ("text", "markdown", "csv", "latex")


def summary_text(table: pd.DataFrame, fmt: str = "text") -> str:
    """The 0-1 metrics' table, then the rank metrics' (rank distance) under a heading of their own."""
    from bench.eval.runner import split_rank_metrics

    scores, ranks = split_rank_metrics(table)
    parts = [format_table(scores, fmt, 4)] if not scores.empty else []
    if not ranks.empty:
        parts.append(f"rank distance (in ranks, lower is better):\n{format_table(ranks, fmt, 1)}")
    return "\n\n".join(parts)


def format_table(table: pd.DataFrame, fmt: str, digits: int) -> str:
    if fmt == "csv":
        return table.to_csv(float_format=f"%.{digits}f").rstrip("\n")
    if fmt == "latex":
        return table.to_latex(float_format=f"%.{digits}f").rstrip("\n")
    if fmt == "markdown":
        return markdown_table(table, digits)
    return table.to_string(float_format=lambda v: f"{v:.{digits}f}")


def markdown_table(table: pd.DataFrame, digits: int) -> str:
    """A GitHub pipe table, written here because pandas' to_markdown needs tabulate, which bench does not ship."""
    import pandas as pd

    flat = table.reset_index()
    header = [str(c) for c in flat.columns]
    # A model without a score for a row is left blank, as in the text table's NaN.
    cells = [["" if pd.isna(v) else f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
             for row in flat.itertuples(index=False)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _cache(args: argparse.Namespace) -> int:
    from bench.eval.cache import clear, embeddings_root, inventory, matching

    entries = inventory()
    if args.model:
        chosen = matching(entries, args.model)
        if not chosen:
            known = ", ".join(sorted({e.label for e in entries})) or "none"
            raise ValueError(f"no cached embeddings for {args.model!r} in {embeddings_root()}; cached models: {known}")
    else:
        chosen = entries
    mb = 1024 * 1024
    if args.action == "clear":
        freed = clear(chosen)
        what = args.model or "all models"
        print(f"cleared {len(chosen)} cache folder(s) of {what} in {embeddings_root()}: {freed / mb:.1f} MB freed")
        return 0
    print(f"embedding cache: {embeddings_root()}")
    if not chosen:
        print("empty")
        return 0
    width = max(len(e.label) for e in chosen)
    folder_width = max(len(e.folder.name) for e in chosen)
    print(f"{'model':<{width}}  {'folder':<{folder_width}}  {'segments':>8}  {'vectors':>9}  {'MB':>9}")
    for e in chosen:
        print(f"{e.label:<{width}}  {e.folder.name:<{folder_width}}  {e.segments:>8}  {e.vectors:>9}  "
              f"{e.bytes / mb:>9.2f}")
    print(f"{'total':<{width}}  {'':<{folder_width}}  {sum(e.segments for e in chosen):>8}  "
          f"{sum(e.vectors for e in chosen):>9}  {sum(e.bytes for e in chosen) / mb:>9.2f}")
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
    if what in ("trainers", "all"):
        from bench.train.run import list_trainers

        print("trainers (python -m bench train --trainer NAME):")
        for line in list_trainers():
            print(f"  {line}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from bench.preflight import check_train
    from bench.train.run import TrainOptions, train

    check_train(args)
    options = TrainOptions(
        trainer=args.trainer, base=args.base, train_data=args.train_data, seed=args.seed, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.max_grad_norm, max_seq_length=args.max_seq_length or None,
        freeze_embeddings=args.freeze_embeddings, alpha=args.alpha, langs=tuple(args.langs) if args.langs else None,
        hard_negatives=not args.no_hard_negatives, tatoeba=None if args.tatoeba is None else tuple(args.tatoeba),
        eval_data=tuple(args.eval_data) if args.eval_data else None, allow_leak=args.allow_leak, scale=args.scale,
        w_mono=args.w_mono, w_cross=args.w_cross, w_lid=args.w_lid, w_translation=args.w_translation,
        reversal=args.reversal, head_lr=args.head_lr, precision=args.precision, dev_fraction=args.dev_fraction,
        log_every=args.log_every, device=args.device, threads=args.threads, out_dir=args.out_dir, run_id=args.run_id,
        force=args.force,
    )
    path = train(options, log=lambda message: print(message, file=sys.stderr))
    print(path)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun the checkpoint is written and the process group destroyed by now, yet gloo's C++ threads
        # can still abort the interpreter's teardown ("terminate called without an active exception", exit -6,
        # seen once in CI): leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _checked_precision(args: argparse.Namespace) -> str:
    """--precision, refused before any work when it is unknown or would not run natively on the device."""
    from bench.precision import check_precision

    device = getattr(args, "device", None)
    if device is None and args.precision != "fp32":
        from bench.eval.encode import default_device
        device = default_device()
    return check_precision(args.precision, device)


def add_precision_argument(parser: argparse.ArgumentParser, what: str) -> None:
    from bench.precision import DEFAULT_PRECISION

    parser.add_argument("--precision", default=DEFAULT_PRECISION, metavar="fp32|bf16",
                        help=f"numerics of {what}: fp32 (default, the reference) or bf16 (autocast: bf16 matmuls, "
                        "fp32 weights, pooling and stored vectors; needs avx512_bf16/AMX or a bf16 GPU); bf16 "
                        "results get their own run id <model>+bf16")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def shard_arg(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/4, got {text!r}") from None
    if not (n >= 1 and 1 <= k <= n):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return k, n


def build_parser() -> argparse.ArgumentParser:
    from bench.data.suites import SUITES

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="library log messages")
    commands = parser.add_subparsers(dest="command", required=True)

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
    run.set_defaults(func=_run)

    check = commands.add_parser("crosscheck", help="our BEIR scores beside beir's and mteb's own pipelines "
                                "(same model, same data)")
    check.add_argument("--model", default="minilm-l6", help="a dense model (default minilm-l6)")
    check.add_argument("--datasets", nargs="+", default=["scifact"], help="BEIR datasets (default scifact)")
    check.add_argument("--split", default="test")
    add_precision_argument(check, "our encoding (beir and mteb always run their fp32 path, the reference)")
    check.add_argument("--tools", nargs="+", default=["beir", "mteb"], choices=["beir", "mteb"],
                       help="independent pipelines to compare with (default both)")
    check.add_argument("--experiment", default="beir-baselines", help="where our scores are stored or computed")
    check.set_defaults(func=_crosscheck)

    show = commands.add_parser("show", help="an experiment's stored results (macro averages per model)")
    show.add_argument("experiment", help="results/<experiment>/")
    show.add_argument("--timings", action="store_true", help="also seconds per stage and peak memory")
    show.add_argument("--per-language", action="store_true", help="one row per query / document language "
                      "instead of their macro average")
    show.add_argument("--format", choices=TABLE_FORMATS, default="text", help="table format (default text)")
    show.set_defaults(func=_show)

    cache = commands.add_parser("cache", help="the embedding cache: size per model, or clear it",
                                description="Dense embeddings are cached on disk per (model fingerprint, max "
                                "sequence length) under $BENCH_CACHE/embeddings (default ~/.cache/bench).")
    cache.add_argument("action", nargs="?", choices=["info", "clear"], default="info",
                       help="info: folders, segments, vectors, MB (default); clear: delete cached embeddings")
    cache.add_argument("--model", help="only this model: a registry name, run id, model folder or fingerprint")
    cache.set_defaults(func=_cache)

    listing = commands.add_parser("list", help="what the registries hold")
    listing.add_argument("what", nargs="?", choices=["models", "suites", "datasets", "trainers", "all"])
    listing.set_defaults(func=_list)

    _add_train_parser(commands)
    _add_sweep_parser(commands)
    _add_experiment_parsers(commands)
    _add_report_parser(commands)
    from bench.perf import add_perf_parser

    add_perf_parser(commands)
    return parser


def _add_train_parser(commands) -> None:
    from bench.train.run import TrainOptions

    d = TrainOptions(trainer="", base="")
    train = commands.add_parser(
        "train", help="fine-tune a base encoder with a registered trainer into models/<run-id>/",
        description="Fine-tune a base encoder; writes <out-dir>/<run-id>/ (a sentence-transformers folder plus "
                    "manifest.json). Under DDP: torchrun --nproc-per-node N -m bench train ... (batch size per rank).")
    train.add_argument("--trainer", required=True, help="a registered trainer (python -m bench list trainers)")
    train.add_argument("--base", required=True, help="base model: me5-small, minilm-l6, or a model folder")
    train.add_argument("--train-data", default=d.train_data, help=f"mlqa-r or xquad-r (default {d.train_data})")
    train.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    train.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    train.add_argument("--batch-size", type=int, default=d.batch_size, help=f"pairs per batch and rank "
                       f"(default {d.batch_size})")
    train.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr})")
    train.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    train.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="linear warmup share of the "
                       f"steps, then linear decay (default {d.warmup_ratio})")
    train.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="gradient clipping, 0 for "
                       f"none (default {d.max_grad_norm})")
    train.add_argument("--max-seq-length", type=int, default=d.max_seq_length, help="truncate texts to this many "
                       f"tokens, 0 for the model's own limit (default {d.max_seq_length})")
    train.add_argument("--freeze-embeddings", action="store_true", help="freeze the word-embedding matrix "
                       "(about half the step time for me5-small)")
    train.add_argument("--alpha", type=float, help=f"hybrid: probability of a mono batch (default {0.5})")
    train.add_argument("--langs", nargs="+", help="training languages (default: all of the training set)")
    train.add_argument("--no-hard-negatives", action="store_true", help="train on pairs, without the hard "
                       "negative (default: triplets; pairs whose paragraph has one sentence are left out)")
    train.add_argument("--tatoeba", nargs="*", metavar="LANG", help="mtl: add Tatoeba bitext pairs to the "
                       "translation-ranking data (no LANG: the training languages)")
    train.add_argument("--eval-data", nargs="+", help="the sets the run will be scored on, for the leakage audit "
                       "(default: the other LAReQA set + scifact nfcorpus arguana)")
    train.add_argument("--allow-leak", action="store_true", help="allow evaluating on the training set")
    train.add_argument("--scale", type=float, default=d.scale, help=f"InfoNCE scale, 1/temperature (default "
                       f"{d.scale})")
    train.add_argument("--w-mono", type=float, default=d.w_mono, help=f"mtl: mono-batch loss weight ({d.w_mono})")
    train.add_argument("--w-cross", type=float, default=d.w_cross, help=f"mtl: cross-batch loss weight "
                       f"({d.w_cross})")
    train.add_argument("--w-lid", type=float, default=d.w_lid, help=f"mtl: language-ID head weight, 0 to drop it "
                       f"({d.w_lid})")
    train.add_argument("--w-translation", type=float, default=d.w_translation, help="mtl: translation-ranking "
                       f"weight, 0 to drop it ({d.w_translation})")
    train.add_argument("--reversal", type=float, default=d.reversal, help="mtl: gradient-reversal strength lambda "
                       f"({d.reversal})")
    train.add_argument("--head-lr", type=float, default=d.head_lr, help=f"mtl: learning rate of the heads "
                       f"({d.head_lr})")
    train.add_argument("--precision", default=d.precision, help="fp32, or bf16: autocast bf16 forward and "
                       "backward with fp32 master weights, optimiser state, similarities and losses; needs native "
                       "bf16 (CPU avx512_bf16/amx_bf16, or a bf16 GPU); recorded, run id -bf16 "
                       f"(default {d.precision})")
    train.add_argument("--dev-fraction", type=float, default=d.dev_fraction, help="hold out this share of the "
                       "training set's question ids (whole paragraphs) as a dev split, left out of training "
                       "(run id -dev<F>; for tuning, e.g. the mtl sweep)")
    train.add_argument("--log-every", type=int, default=d.log_every, help="loss-curve point every N steps "
                       f"(default {d.log_every})")
    train.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: the local GPU if any, else cpu)")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: OMP_NUM_THREADS, else the cores; "
                       "on a busy machine 1 can be several times faster)")
    train.add_argument("--out-dir", help="models root (default: $BENCH_MODELS, else <project>/models)")
    train.add_argument("--run-id", help="folder name (default {trainer}[-a{alpha}]-{base}-{data}-s{seed}-{steps}steps"
                       "[-dev{fraction}][-bf16])")
    train.add_argument("--force", action="store_true", help="overwrite an existing checkpoint folder")
    train.set_defaults(func=_train)


def _sweep(args: argparse.Namespace) -> int:
    from bench.train.sweep import SweepOptions, best, run_sweep

    options = SweepOptions(trainer=args.trainer, base=args.base, train_data=args.train_data,
                           dev_fraction=args.dev_fraction, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                           precision=args.precision, freeze_embeddings=args.freeze_embeddings, threads=args.threads,
                           configs=tuple(args.configs) if args.configs else None, out=args.out,
                           models_dir=args.models_dir)
    table = run_sweep(options, log=lambda message: print(message, file=sys.stderr))
    top = best(table)
    print(f"{table}: best mean dev mAP {top['value']:.4f}: {top['config']} (w_lid {top['w_lid']}, reversal "
          f"{top['reversal']}, w_translation {top['w_translation']})")
    return 0


def _add_sweep_parser(commands) -> None:
    from bench.train.sweep import GRID, SweepOptions

    d = SweepOptions()
    sweep = commands.add_parser("sweep", help="tune mtl's auxiliary weights on a dev split held out from the "
                                "training questions",
                                description="Trains each configuration of bench/train/sweep.py's GRID with "
                                "--dev-fraction of the training questions held out, scores it on them (LAReQA mAP "
                                "mono, cross, multi) and appends to <out>/sweep.csv; configurations already there are "
                                "skipped. Never scores on an evaluation set.")
    sweep.add_argument("trainer", nargs="?", default=d.trainer, help=f"a trainer with heads (default {d.trainer})")
    sweep.add_argument("--base", default=d.base, help=f"default {d.base}")
    sweep.add_argument("--train-data", default=d.train_data, help=f"default {d.train_data}")
    sweep.add_argument("--dev-fraction", type=float, default=d.dev_fraction, help="share of the training question "
                       f"ids held out and scored (default {d.dev_fraction}; required)")
    sweep.add_argument("--steps", type=positive_int, default=d.steps, help=f"default {d.steps}")
    sweep.add_argument("--batch-size", type=positive_int, default=d.batch_size, help=f"default {d.batch_size}")
    sweep.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    sweep.add_argument("--precision", default=d.precision, help=f"training precision (default {d.precision}); "
                       "scoring is fp32")
    sweep.add_argument("--freeze-embeddings", action="store_true", help="freeze the word-embedding matrix (about "
                       "half the step time of me5-small on a CPU)")
    sweep.add_argument("--threads", type=positive_int, help="torch CPU threads")
    sweep.add_argument("--configs", nargs="+", metavar="NAME", help="only these of: "
                       + ", ".join(name for name, _ in GRID))
    sweep.add_argument("--out", default=d.out, help=f"table folder (default {d.out})")
    sweep.add_argument("--models-dir", help="checkpoints root while a configuration is scored (default: "
                       "$BENCH_MODELS, else <project>/models); each is deleted once scored")
    sweep.set_defaults(func=_sweep)


def _experiment(args: argparse.Namespace) -> int:
    from bench.experiment import load_experiment, run_experiment
    from bench.export import export_mteb
    from bench.preflight import check_models_root

    experiment = load_experiment(args.name)
    check_models_root(args.models_dir, "--models-dir")
    run_experiment(experiment, models_dir=args.models_dir, dry_run=args.dry_run, cache=not args.no_cache,
                   batch_size=args.batch_size, log=lambda message: print(message, file=sys.stderr), stages=args.stages,
                   shard=args.shard, references=args.references, device=args.device,
                   precision=args.precision)
    if args.shard:
        print(f"experiment {experiment.name}: shard {args.shard[0]}/{args.shard[1]} done; when every shard is, "
              f"`python -m bench experiment {args.name} --dry-run` shows the grid and `python -m bench export "
              f"{experiment.name}` writes the MTEB-layout results")
    elif not args.dry_run:
        files = export_mteb(experiment.name)
        print(f"experiment {experiment.name}: complete; MTEB-layout results in {files[0].parents[2]}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from bench.check import compare, expected_frame, expected_path, format_report, fresh_scores, read_expected
    from bench.results import ResultStore, atomic_write

    path = expected_path(args.experiment)
    if args.from_results:
        store = ResultStore(args.from_results)
        scores = store.load()
        if scores.empty:
            # Otherwise every expected score reads as missing: a wall of FAIL lines instead of the cause.
            raise ValueError(f"experiment {args.from_results} has no results (nothing in {store.folder}); "
                             f"run it first, or drop --from-results to re-run {args.experiment}")
    else:
        scores = fresh_scores(args.experiment, log=lambda message: print(message, file=sys.stderr))
    if args.update:
        frame = expected_frame(scores)
        atomic_write(path, lambda p: frame.to_csv(p, index=False, float_format="%.10g"))
        print(f"wrote {len(frame)} expected scores to {path}")
        return 0
    result = compare(read_expected(path), scores)
    print(format_report(result))
    return 1 if (result["status"] == "FAIL").any() else 0


def _export(args: argparse.Namespace) -> int:
    from bench.export import export_mteb

    files = export_mteb(args.experiment, Path(args.out) if args.out else None)
    print(f"wrote {len(files)} MTEB result files under {files[0].parents[2]}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from bench.preflight import check_report
    from bench.report.build import build_report

    check_report(args.experiment)
    build_report(args.experiment, Path(args.out) if args.out else None, n_resamples=args.resamples, seed=args.seed,
                 log=lambda message: print(message, file=sys.stderr))
    return 0


def _add_report_parser(commands) -> None:
    report = commands.add_parser("report", help="an experiment's report: the answer to the research question, "
                                 "paper tables beside ours, plots, claim verdicts with paired tests",
                                 description="Writes <out>/README.md (the answer first), claims.md, comparisons.csv, "
                                 "tables/*.md|tex and plots/*.png from results/<experiment>/.")
    report.add_argument("experiment", help="results/<experiment>/")
    report.add_argument("--out", help="output folder (default reports/<experiment>)")
    report.add_argument("--resamples", type=positive_int, default=10_000, help="bootstrap and randomisation "
                        "resamples per test (default 10000)")
    report.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    report.set_defaults(func=_report)


def _add_experiment_parsers(commands) -> None:
    experiment = commands.add_parser("experiment", help="run an experiment grid (trains and evaluates what is "
                                     "missing, resumable)")
    experiment.add_argument("name", help="a shipped experiment (paper, smoke) or a YAML file")
    experiment.add_argument("--dry-run", action="store_true", help="print the plan and what is done, run nothing")
    experiment.add_argument("--models-dir", help="checkpoints root (default: $BENCH_MODELS, else <project>/models)")
    experiment.add_argument("--batch-size", type=positive_int, default=32, help="encoding batch size (default 32)")
    experiment.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    experiment.add_argument("--shard", type=shard_arg, metavar="K/N", help="run every N-th cell of the grid from the "
                            "K-th (stage order), for N processes or machines sharing one grid; shard 1 also "
                            "scores the references")
    experiment.add_argument("--references", nargs="*", metavar="MODEL", help="score only these of the file's "
                            "references (none when given without names; default: all)")
    experiment.add_argument("--device", help="where training and dense encoding run: cpu, cuda, cuda:1 ... "
                            "(default: the GPU when there is one, else cpu)")
    experiment.add_argument("--stages", nargs="+", type=positive_int, metavar="N",
                            help="run only these stages (1-based, in the file's order); default all")
    experiment.add_argument("--precision", metavar="fp32|bf16", help="numerics of training and encoding for this "
                            "run (default: the file's `precision`); cells of another precision are other cells "
                            "(run ids -bf16 / +bf16)")
    experiment.set_defaults(func=_experiment)

    check = commands.add_parser("check", help="re-run the smoke experiment and compare with the stored scores "
                                "(OK / OKish / FAIL; exit 1 on FAIL)")
    check.add_argument("--experiment", default="smoke", help="experiment to re-run (default smoke); expected "
                       "scores in results/check/<experiment>-expected.csv")
    check.add_argument("--from-results", metavar="EXPERIMENT", help="compare the stored results/<EXPERIMENT>/ "
                       "instead of re-running")
    check.add_argument("--update", action="store_true", help="write the expected scores from this run")
    check.set_defaults(func=_check)

    export = commands.add_parser("export", help="write an experiment's results in MTEB's results layout")
    export.add_argument("experiment", help="results/<experiment>/")
    export.add_argument("--out", help="folder (default results/<experiment>/mteb)")
    export.set_defaults(func=_export)


def main(argv: list[str] | None = None) -> int:
    if not os.environ.get("BENCH_ONLINE"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the offline defaults: no hub look-ups
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    from bench import interrupts

    try:
        with interrupts.handled(argv):
            return args.func(args)
    except interrupts.Interrupted as e:
        print(f"\n{interrupts.message(e.signum, argv)}", file=sys.stderr)
        return e.status
    except (DataError, ValueError, OSError) as e:
        # OSError: a model that cannot be loaded (a Hugging Face id offline, a mistyped path).
        print(f"error: {e}", file=sys.stderr)
        return 2
