"""`python -m bench perf`: how fast the harness is, measured against the machine and against the libraries
users would otherwise run, all in one run on one machine. Writes results/perf/<timestamp>.json (everything)
and results/perf/summary.json (the headline figures).

Sections (each can be skipped):
1. matmul peak: best GFLOP/s of large fp32 torch.matmul at the encoder's thread count.
2. encode: passages/s, tokens/s and GFLOP/s of our encoder on a fixed BEIR slice (the first --docs documents
   of the dataset sorted by id) at --encode-seq-length tokens, for each --models entry, beside
   sentence-transformers' own model.encode on the same texts. FLOPs of a BERT-like encoder: 2 x
   non-embedding linear weights per token + 4 x layers x length^2 x hidden per sequence (attention), counted
   on real tokens and on padded tokens (the work the matmuls actually did).
3. e2e: `bench run --suite beir` on the dataset for --e2e-model, cold (empty embedding cache, fresh process)
   and warm (the cache the cold run filled, fresh process), against beir's own pipeline (SentenceBERT +
   DenseRetrievalExactSearch + EvaluateRetrieval) and mteb.evaluate, all on the same model, data, max length,
   batch size and prompts. Each pipeline runs in its own subprocess (bench/perf_worker.py); its wall time is
   measured from outside and its peak memory is the worker's own high-water mark (VmHWM), so pipelines never
   share a process or a memory high-water mark.
4. scaling: the cold pipeline on the first 1k, 2k, 4k, 8k documents of a pool of BEIR corpora.
5. train: steps/s of every registered trainer against a plain SentenceTransformerTrainer run with
   MultipleNegativesRankingLoss (same model, batch size, max length, triplets).
Every timing is the median of --reps repetitions (repetitions of different pipelines are interleaved, so
that a slow spell of the machine does not fall on one pipeline only).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from bench.machine import cpu_model, usable_cores
from bench.paths import results_root

Log = Callable[[str], None]
NDCG_TOLERANCE = 1e-4
TARGETS = {"cold_speedup": 1.3, "warm_speedup": 10.0, "matmul_peak_fraction": 0.6, "trainer_overhead": 0.10}


@dataclass
class PerfOptions:
    models: tuple[str, ...] = ("minilm-l6", "me5-small")  # encode throughput
    dataset: str = "scifact"
    docs: int = 512  # encode slice: the first N documents sorted by id
    encode_seq_length: int = 256
    e2e_model: str = "minilm-l6"
    e2e_docs: int = 0  # 0: the whole dataset
    max_seq_length: int | None = None  # e2e and scaling; None: the model's own limit
    batch_size: int = 32
    reps: int = 3
    sizes: tuple[int, ...] = (1000, 2000, 4000, 8000)
    scaling_datasets: tuple[str, ...] = ("scifact", "nfcorpus")  # pooled: scifact alone has 5,183 documents
    train_model: str = "me5-small"
    train_data: str = "mlqa-r"
    train_steps: int = 8
    train_batch_size: int = 32
    train_seq_length: int = 64
    trainers: tuple[str, ...] | None = None  # None: every registered trainer
    skip: tuple[str, ...] = ()  # sections: encode, e2e, beir, mteb, warm, scaling, train
    out: Path | None = None


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


# ------------------------------------------------------------------------------------------- data


def perf_task(datasets: tuple[str, ...] | list[str], docs: int = 0):
    """The BEIR test task of datasets[0]; with more datasets, their corpora are pooled in as distractors (ids
    prefixed `<dataset>/`). docs > 0 keeps the first `docs` documents: datasets[0]'s sorted by id, then the
    others'; queries keep only the judgements on kept documents, and queries left with none are dropped."""
    from bench.data.beir import beir_task

    first = beir_task(datasets[0], "test")
    corpus, queries, qrels = first.corpus, first.queries, first.qrels
    if len(datasets) > 1:
        corpus = {f"{datasets[0]}/{d}": doc for d, doc in corpus.items()}
        for name in datasets[1:]:
            corpus.update({f"{name}/{d}": doc for d, doc in beir_task(name, "test").corpus.items()})
        queries = {f"{datasets[0]}/{q}": text for q, text in queries.items()}
        qrels = {f"{datasets[0]}/{q}": {f"{datasets[0]}/{d}": g for d, g in judged.items()}
                 for q, judged in qrels.items()}
    if docs:
        if docs > len(corpus):
            raise ValueError(f"asked for {docs} documents; {'+'.join(datasets)} has {len(corpus)}")
        first_ids = sorted(d for d in corpus if not any(d.startswith(f"{n}/") for n in datasets[1:]))
        other_ids = sorted(d for d in corpus if d not in set(first_ids))
        keep = set((first_ids + other_ids)[:docs])
        corpus = {d: corpus[d] for d in first_ids + other_ids if d in keep}
        qrels = {q: {d: g for d, g in judged.items() if d in keep} for q, judged in qrels.items()}
        qrels = {q: judged for q, judged in qrels.items() if judged}
        queries = {q: t for q, t in queries.items() if q in qrels}
    return replace(first, dataset="+".join(datasets) if len(datasets) > 1 else first.dataset,
                   corpus=corpus, queries=queries, qrels=qrels)


def slice_texts(dataset: str, docs: int) -> list[str]:
    """The fixed encode slice: the first `docs` documents of the dataset sorted by id, as the runner joins
    title and text."""
    from bench.data.beir import beir_task
    from bench.eval.encode import document_text

    corpus = beir_task(dataset, "test").corpus
    return [document_text(corpus[d]) for d in sorted(corpus)[:docs]]


# ------------------------------------------------------------------------------------------- machine


def matmul_peak(threads: int, sizes: tuple[int, ...] = (1024, 2048), reps: int = 5) -> dict:
    """The best fp32 torch.matmul rate on this machine at `threads` threads (square matrices, best of reps)."""
    import torch

    torch.set_num_threads(threads)
    best: dict[int, float] = {}
    with torch.inference_mode():
        for n in sizes:
            a, b = torch.randn(n, n), torch.randn(n, n)
            torch.matmul(a, b)  # warm-up
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                torch.matmul(a, b)
                times.append(time.perf_counter() - start)
            best[n] = 2 * n ** 3 / min(times) / 1e9
    return {"gflops": round(max(best.values()), 2), "by_size": {str(n): round(g, 2) for n, g in best.items()},
            "threads": threads, "reps": reps}


def machine() -> dict:
    import torch

    return {"cores": usable_cores(), "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


# ------------------------------------------------------------------------------------------- encode


def encoder_flops(config, lengths_sum: int, lengths_sq_sum: int) -> float:
    """FLOPs of a BERT-like encoder: every token passes 4 h x h attention projections and two h x i
    feed-forward matrices per layer (2 FLOPs per multiply-add); attention scores and their weighted sum
    cost 2 x 2 x length^2 x h per sequence and layer. Embedding look-ups, norms and softmax are left out."""
    layers, hidden = config.num_hidden_layers, config.hidden_size
    per_token = 2 * layers * (4 * hidden * hidden + 2 * hidden * config.intermediate_size)
    return per_token * lengths_sum + 4 * layers * hidden * lengths_sq_sum


def encode_throughput(name: str, texts: list[str], options: PerfOptions, peak_gflops: float | None, log: Log) -> dict:
    """Our encoder (length-sorted token-budget batches) and sentence-transformers' model.encode on the same
    texts, medians over reps."""
    from bench.eval.encode import DenseEncoder
    from bench.models.registry import resolve_model, with_max_seq_length

    spec = with_max_seq_length(resolve_model(name), options.encode_seq_length)
    encoder = DenseEncoder(spec, batch_size=options.batch_size, cache=False)
    config = encoder.model[0].auto_model.config
    encoder.embed(texts[:8], "document")  # warm-up: first-call allocations
    runs, st_seconds = [], []
    for rep in range(options.reps):
        before = asdict(encoder.stats)
        encoder.embed(texts, "document")
        stats = {k: v - before[k] for k, v in asdict(encoder.stats).items()}
        runs.append(stats)
        start = time.perf_counter()
        encoder.model.encode_document(texts, batch_size=options.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        st_seconds.append(time.perf_counter() - start)
        log(f"  {name} rep {rep + 1}/{options.reps}: ours {stats['seconds']:.1f} s, "
            f"sentence-transformers encode {st_seconds[-1]:.1f} s")
    seconds = median([r["seconds"] for r in runs])
    last = runs[-1]  # token counts are the same every rep
    flops_real = encoder_flops(config, last["real_tokens"], last["real_sq_tokens"])
    flops_padded = encoder_flops(config, last["padded_tokens"], last["padded_sq_tokens"])
    result = {
        "model": name, "max_seq_length": options.encode_seq_length, "passages": len(texts),
        "batch_size": options.batch_size, "batches": last["batches"], "threads": encoder.threads,
        "seconds": round(seconds, 3), "seconds_per_rep": [round(r["seconds"], 3) for r in runs],
        "passages_per_second": round(len(texts) / seconds, 2),
        "real_tokens": last["real_tokens"], "padded_tokens": last["padded_tokens"],
        "padding_fraction": round(1 - last["real_tokens"] / last["padded_tokens"], 4),
        "tokens_per_second": round(last["real_tokens"] / seconds, 1),
        "gflops_real_tokens": round(flops_real / seconds / 1e9, 2),
        "gflops_padded_tokens": round(flops_padded / seconds / 1e9, 2),
        "sentence_transformers_encode_seconds": round(median(st_seconds), 3),
        "speedup_vs_sentence_transformers_encode": ratio(median(st_seconds), seconds),
    }
    if peak_gflops:
        result["matmul_peak_fraction"] = round(result["gflops_padded_tokens"] / peak_gflops, 3)
        result["matmul_peak_fraction_real_tokens"] = round(result["gflops_real_tokens"] / peak_gflops, 3)
    return result


# ------------------------------------------------------------------------------------------- pipelines


@dataclass
class Pipeline:
    """One `python -m bench.perf_worker` invocation."""

    name: str  # ours | beir | mteb
    model: str
    model_path: str
    datasets: tuple[str, ...]
    docs: int = 0
    max_seq_length: int | None = None
    batch_size: int = 32
    env: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "bench.perf_worker", self.name, "--model", self.model, "--model-path",
                   self.model_path, "--datasets", *self.datasets, "--docs", str(self.docs),
                   "--batch-size", str(self.batch_size)]
        if self.max_seq_length:
            command += ["--max-seq-length", str(self.max_seq_length)]
        return command


def run_pipeline(pipeline: Pipeline, log_file: Path) -> dict:
    """Run the worker; wall time from outside (process start to exit), peak memory as the worker reports its
    own (VmHWM: see perf_worker.peak_rss_mb for why not the child's ru_maxrss)."""
    env = {**os.environ, **pipeline.env}
    start = time.perf_counter()
    with open(log_file, "ab") as log:
        child = subprocess.run(pipeline.command(), stdout=subprocess.PIPE, stderr=log, env=env, check=False)
    wall = time.perf_counter() - start
    out = child.stdout
    if child.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"perf worker {pipeline.name} failed (exit {child.returncode}); log {log_file}:\n{tail}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    return {**report, "wall_seconds": round(wall, 3), "peak_memory_mb": report["peak_rss_mb"]}


def summarise(runs: list[dict]) -> dict:
    return {"wall_seconds": median([r["wall_seconds"] for r in runs]),
            "inside_seconds": median([r["seconds"] for r in runs]),
            "peak_memory_mb": median([r["peak_memory_mb"] for r in runs]),
            "ndcg@10": runs[-1]["ndcg@10"] if runs else None,
            "wall_seconds_per_rep": [r["wall_seconds"] for r in runs],
            "peak_memory_mb_per_rep": [r["peak_memory_mb"] for r in runs]}


def model_path(name: str) -> str:
    """The model's folder, resolved (and, for me5-small, built) once here, outside any timed process."""
    from bench.models.registry import resolve_model

    return resolve_model(name).locate()


def end_to_end(options: PerfOptions, work: Path, log: Log) -> dict:
    """Cold, warm, beir and mteb pipelines on the same task, interleaved per repetition."""
    path = model_path(options.e2e_model)
    base = Pipeline("ours", options.e2e_model, path, (options.dataset,), options.e2e_docs, options.max_seq_length,
                    options.batch_size)
    names = ["cold"] + [n for n in ("warm", "beir", "mteb") if n not in options.skip]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for rep in range(options.reps):
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
        for name in names:
            pipeline = replace(base, name="ours" if name in ("cold", "warm") else name, env={
                "BENCH_CACHE": str(cache), "BENCH_RESULTS": tempfile.mkdtemp(prefix="results-", dir=work)})
            runs[name].append(run_pipeline(pipeline, work / f"{name}.log"))
            log(f"  e2e rep {rep + 1}/{options.reps} {name}: {runs[name][-1]['wall_seconds']:.1f} s wall, "
                f"{runs[name][-1]['peak_memory_mb']:.0f} MB peak, nDCG@10 {runs[name][-1]['ndcg@10']:.5f}")
    result = {"model": options.e2e_model, "dataset": options.dataset, "docs": options.e2e_docs or "all",
              "max_seq_length": options.max_seq_length, "batch_size": options.batch_size,
              **{name: summarise(r) for name, r in runs.items()}}
    if "warm" in runs:
        result["warm"]["encoded_texts"] = runs["warm"][-1].get("encoded_texts")
    return result


def scaling(options: PerfOptions, work: Path, log: Log) -> list[dict]:
    """The cold pipeline (fresh cache, fresh process) on growing corpora."""
    path = model_path(options.e2e_model)
    rows = []
    for size in options.sizes:
        runs = []
        for rep in range(options.reps):
            pipeline = Pipeline("ours", options.e2e_model, path, options.scaling_datasets, size, options.max_seq_length,
                                options.batch_size, env={"BENCH_CACHE": tempfile.mkdtemp(prefix="cache-", dir=work),
                                                         "BENCH_RESULTS": tempfile.mkdtemp(prefix="results-", dir=work)})
            runs.append(run_pipeline(pipeline, work / f"scaling-{size}.log"))
            log(f"  scaling {size} docs rep {rep + 1}/{options.reps}: {runs[-1]['wall_seconds']:.1f} s, "
                f"{runs[-1]['peak_memory_mb']:.0f} MB")
        summary = summarise(runs)
        rows.append({"docs": size, "queries": runs[-1].get("queries"), **summary,
                     "encode_corpus_seconds": median([r.get("encode_corpus_seconds") or 0 for r in runs])})
    return rows


# ------------------------------------------------------------------------------------------- training


def train_throughput(options: PerfOptions, work: Path, log: Log) -> dict:
    from bench.train.trainers import TRAINERS

    trainers = list(options.trainers or TRAINERS)
    results: dict[str, list[float]] = {name: [] for name in ["plain-sentence-transformers", *trainers]}
    for rep in range(options.reps):
        results["plain-sentence-transformers"].append(plain_st_steps_per_second(options, work))
        for name in trainers:
            results[name].append(trainer_steps_per_second(name, options, work / f"models-{rep}"))
        log(f"  train rep {rep + 1}/{options.reps}: " + ", ".join(f"{n} {v[-1]:.3f}" for n, v in results.items()))
    plain = median(results["plain-sentence-transformers"])
    rows = {}
    for name, values in results.items():
        sps = median(values)
        rows[name] = {"steps_per_second": round(sps, 4), "per_rep": [round(v, 4) for v in values],
                      "overhead_vs_plain": round(plain / sps - 1, 3) if name != "plain-sentence-transformers" else 0.0,
                      # mtl encodes three batches per step (mono, cross, parallel pairs) by design.
                      "more_work_per_step": name == "mtl"}
    return {"model": options.train_model, "train_data": options.train_data, "steps": options.train_steps,
            "batch_size": options.train_batch_size, "max_seq_length": options.train_seq_length, "trainers": rows}


def _train_options(trainer: str, options: PerfOptions, out_dir: Path):
    from bench.data.lareqa import LAREQA_LANGS
    from bench.train.run import TrainOptions

    other = next(name for name in LAREQA_LANGS if name != options.train_data)
    return TrainOptions(trainer=trainer, base=options.train_model, train_data=options.train_data,
                        steps=options.train_steps, batch_size=options.train_batch_size,
                        max_seq_length=options.train_seq_length, eval_data=(other,), out_dir=str(out_dir),
                        run_id=f"perf-{trainer}", force=True)


def trainer_steps_per_second(trainer: str, options: PerfOptions, out_dir: Path) -> float:
    """Steps/s of the step loop as the trainer's manifest records it (data preparation and saving left out)."""
    from bench.train.run import train

    target = train(_train_options(trainer, options, out_dir), log=lambda message: None)
    return float(json.loads((target / "manifest.json").read_text())["steps_per_second"])


def plain_st_steps_per_second(options: PerfOptions, work: Path) -> float:
    """A plain SentenceTransformerTrainer run with MultipleNegativesRankingLoss on (query, positive, hard
    negative) triplets of the same training data, same model, batch size, max length, prompts and optimiser
    settings; steps/s over the step loop (first step begin to train end)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import TrainerCallback

    from bench.data.pairs import training_examples
    from bench.train.objectives import model_prompts

    opts = _train_options("xx-mono", options, work)
    examples = [ex for ex in training_examples(opts.train_data, seed=opts.seed) if ex.negative is not None]
    examples = examples[:options.train_steps * options.train_batch_size]
    data = Dataset.from_dict({"anchor": [e.query for e in examples], "positive": [e.positive for e in examples],
                              "negative": [e.negative for e in examples]})
    model = SentenceTransformer(model_path(options.train_model), device="cpu")
    model.max_seq_length = options.train_seq_length
    query, document = model_prompts(model)
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            marks.setdefault("start", time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            marks["end"] = time.perf_counter()

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "plain-st"), max_steps=options.train_steps,
        per_device_train_batch_size=options.train_batch_size, learning_rate=opts.lr, weight_decay=opts.weight_decay,
        warmup_steps=opts.warmup_ratio, max_grad_norm=opts.max_grad_norm, seed=opts.seed, report_to="none",
        save_strategy="no", logging_steps=max(1, options.train_steps), use_cpu=True, dataloader_drop_last=True,
        prompts={"anchor": query, "positive": document, "negative": document} if query or document else None)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model, scale=opts.scale), callbacks=[Clock()])
    trainer.train()
    return options.train_steps / (marks["end"] - marks["start"])


# ------------------------------------------------------------------------------------------- report


def headline(report: dict) -> dict:
    """summary.json: the figures the issue asks for, with the targets beside them."""
    e2e = report.get("e2e") or {}
    cold = (e2e.get("cold") or {}).get("wall_seconds")
    me5 = next((r for r in report.get("encode", []) if r["model"] == "me5-small"), {})
    summary = {
        "cold_speedup_vs_beir": ratio((e2e.get("beir") or {}).get("wall_seconds"), cold),
        "cold_speedup_vs_mteb": ratio((e2e.get("mteb") or {}).get("wall_seconds"), cold),
        "peak_memory_ratio_vs_beir": ratio((e2e.get("cold") or {}).get("peak_memory_mb"),
                                           (e2e.get("beir") or {}).get("peak_memory_mb")),
        "peak_memory_ratio_vs_mteb": ratio((e2e.get("cold") or {}).get("peak_memory_mb"),
                                           (e2e.get("mteb") or {}).get("peak_memory_mb")),
        "warm_speedup": ratio(cold, (e2e.get("warm") or {}).get("wall_seconds")),
        "matmul_peak_fraction": me5.get("matmul_peak_fraction"),
        "matmul_peak_fraction_real_tokens": me5.get("matmul_peak_fraction_real_tokens"),
        "ndcg_at_10": {name: (e2e.get(key) or {}).get("ndcg@10") for name, key in
                       (("ours", "cold"), ("beir", "beir"), ("mteb", "mteb"))},
        "e2e_model": e2e.get("model"), "e2e_max_seq_length": e2e.get("max_seq_length"),
        "machine": {"cores": report["machine"]["cores"], "cpu_model": report["machine"]["cpu_model"]},
        "reps": report["options"]["reps"], "created_at": report["created_at"],
    }
    scores = [v for v in summary["ndcg_at_10"].values() if v is not None]
    summary["ndcg_agree_within_1e-4"] = (max(scores) - min(scores) <= NDCG_TOLERANCE) if len(scores) > 1 else None
    summary["targets"] = verdicts(summary, report)
    return summary


def verdicts(summary: dict, report: dict) -> dict:
    def at_least(value, target):
        return None if value is None else value >= target

    trainers = ((report.get("train") or {}).get("trainers") or {})
    return {
        "cold_speedup_vs_beir >= 1.3": at_least(summary["cold_speedup_vs_beir"], TARGETS["cold_speedup"]),
        "cold_speedup_vs_mteb >= 1.3": at_least(summary["cold_speedup_vs_mteb"], TARGETS["cold_speedup"]),
        "peak_memory_ratio_vs_beir <= 1": None if summary["peak_memory_ratio_vs_beir"] is None
        else summary["peak_memory_ratio_vs_beir"] <= 1.0,
        "warm_speedup >= 10": at_least(summary["warm_speedup"], TARGETS["warm_speedup"]),
        "matmul_peak_fraction >= 0.6": at_least(summary["matmul_peak_fraction"], TARGETS["matmul_peak_fraction"]),
        "trainer_overhead <= 10% (mtl apart)": None if not trainers else all(
            row["overhead_vs_plain"] <= TARGETS["trainer_overhead"] for name, row in trainers.items()
            if not row["more_work_per_step"]),
    }


def print_report(report: dict, summary: dict, log: Log) -> None:
    log(f"\nmachine: {report['machine']['cores']} cores, {report['machine']['cpu_model']}; "
        f"matmul peak {report.get('matmul', {}).get('gflops')} GFLOP/s")
    for r in report.get("encode", []):
        log(f"encode {r['model']} @{r['max_seq_length']}: {r['passages_per_second']} passages/s, "
            f"{r['tokens_per_second']} tokens/s, {r['gflops_padded_tokens']} GFLOP/s padded "
            f"({r['gflops_real_tokens']} real), peak fraction {r.get('matmul_peak_fraction')}, padding "
            f"{r['padding_fraction']:.1%}, {r['speedup_vs_sentence_transformers_encode']}x model.encode")
    e2e = report.get("e2e")
    if e2e:
        log(f"end to end ({e2e['model']}, {e2e['dataset']}, docs {e2e['docs']}, max length "
            f"{e2e['max_seq_length'] or 'model'}):")
        for name in ("cold", "warm", "beir", "mteb"):
            if name in e2e:
                row = e2e[name]
                log(f"  {name:<5} {row['wall_seconds']:>8.1f} s wall  {row['peak_memory_mb']:>8.0f} MB peak  "
                    f"nDCG@10 {row['ndcg@10']:.5f}")
    for row in report.get("scaling", []):
        log(f"scaling {row['docs']:>6} docs: {row['wall_seconds']:.1f} s, {row['peak_memory_mb']:.0f} MB")
    for name, row in ((report.get("train") or {}).get("trainers") or {}).items():
        log(f"train {name:<28} {row['steps_per_second']:.3f} steps/s, overhead {row['overhead_vs_plain']:+.1%}"
            + (" (more work per step by design)" if row["more_work_per_step"] else ""))
    log("summary: " + json.dumps({k: v for k, v in summary.items() if k != "targets"}))
    log("targets: " + json.dumps(summary["targets"]))


def write_report(report: dict, summary: dict, out: Path) -> Path:
    from bench.results import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    stamp = report["created_at"].replace(":", "").replace("-", "")
    path = out / f"perf-{stamp}.json"
    atomic_write(path, lambda p: p.write_text(json.dumps(report, indent=1)))
    atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=1)))
    return path


def run_perf(options: PerfOptions, log: Log = print) -> tuple[dict, dict]:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report: dict = {"options": {k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
                                for k, v in asdict(options).items()},
                    "machine": machine(), "created_at": created}
    threads = usable_cores()
    log(f"matmul peak ({threads} threads) ...")
    report["matmul"] = matmul_peak(threads)
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        work = Path(tmp)
        if "encode" not in options.skip:
            texts = slice_texts(options.dataset, options.docs)
            report["encode"] = []
            for name in options.models:
                log(f"encode throughput: {name}, {len(texts)} {options.dataset} passages at "
                    f"{options.encode_seq_length} tokens ...")
                report["encode"].append(encode_throughput(name, texts, options, report["matmul"]["gflops"], log))
        if "e2e" not in options.skip:
            log(f"end to end: {options.e2e_model} on {options.dataset} ...")
            report["e2e"] = end_to_end(options, work, log)
        if "scaling" not in options.skip:
            log(f"scaling: {options.e2e_model} on {'+'.join(options.scaling_datasets)} ...")
            report["scaling"] = scaling(options, work, log)
        if "train" not in options.skip:
            log(f"training throughput: {options.train_model}, {options.train_steps} steps ...")
            report["train"] = train_throughput(options, work, log)
    summary = headline(report)
    path = write_report(report, summary, options.out or results_root() / "perf")
    print_report(report, summary, log)
    log(f"\nwrote {path} and {path.parent / 'summary.json'}")
    return report, summary


# ------------------------------------------------------------------------------------------- CLI

SECTIONS = ("encode", "e2e", "warm", "beir", "mteb", "scaling", "train")


def add_perf_parser(commands) -> None:
    d = PerfOptions()
    perf = commands.add_parser(
        "perf", help="throughput benchmark: encoder vs matmul peak, end to end vs beir and mteb, cache, scaling, "
                     "training; writes results/perf/", description=__doc__.split("\n\n")[0])
    perf.add_argument("--models", nargs="+", default=list(d.models), help="encode-throughput models "
                      f"(default {' '.join(d.models)})")
    perf.add_argument("--dataset", default=d.dataset, help=f"BEIR dataset of the encode slice and e2e ({d.dataset})")
    perf.add_argument("--docs", type=int, default=d.docs, help=f"encode slice: first N documents by id ({d.docs})")
    perf.add_argument("--encode-seq-length", type=int, default=d.encode_seq_length,
                      help=f"max tokens in the encode section ({d.encode_seq_length})")
    perf.add_argument("--model", dest="e2e_model", default=d.e2e_model, help=f"e2e and scaling model ({d.e2e_model})")
    perf.add_argument("--e2e-docs", type=int, default=d.e2e_docs, help="e2e on the first N documents only "
                      "(default: the whole dataset)")
    perf.add_argument("--max-seq-length", type=int, help="e2e and scaling max tokens, the same for all three "
                      "pipelines (default: the model's own)")
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
    perf.add_argument("--skip", nargs="+", default=[], choices=SECTIONS, help="sections to leave out")
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
        trainers=tuple(args.trainers) if args.trainers else None, skip=skip,
        out=Path(args.out) if args.out else None)
    run_perf(options, log=lambda message: print(message, flush=True))
    return 0
