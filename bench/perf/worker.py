"""One pipeline of `bench perf`, alone in its process so that its wall time and peak memory are its own:
`python -m bench.perf.worker {ours,beir,mteb,st-bf16} --model NAME --model-path PATH --datasets D [D ...] ...`.
Prints one JSON line: nDCG@10, the seconds spent inside the pipeline (after imports), peak RSS.

ours: the runner as `bench run --suite beir` drives it (encoder, embedding cache at $BENCH_CACHE, exact search,
pytrec_eval, the result store at $BENCH_RESULTS). beir: SentenceBERT + DenseRetrievalExactSearch +
EvaluateRetrieval. mteb: mteb.evaluate on a custom retrieval task. st-bf16: sentence-transformers' own bf16 path
(weights cast with model_kwargs torch_dtype=bfloat16, encode_query / encode_document), exact search. The model folder is given as a path, so
that no pipeline pays for locating or building it (me5-small is rebuilt into the cache on first use)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace


def peak_rss_mb() -> float:
    """This process's own peak resident memory. VmHWM belongs to the address space exec created; ru_maxrss
    would not do: Linux carries the forking parent's resident size at fork time into the child's."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_ours(args, task) -> dict:
    from bench.eval.runner import run_models
    from bench.models.registry import resolve_model, with_max_seq_length, with_precision

    spec = replace(resolve_model(args.model), locate=lambda: args.model_path)
    if args.max_seq_length:
        spec = with_max_seq_length(spec, args.max_seq_length)
    spec = with_precision(spec, args.precision)
    rows = run_models([spec], [task], "perf-e2e", force=True, batch_size=args.batch_size, log=lambda m: None)
    ndcg = float(rows.loc[rows["metric"] == "ndcg@10", "value"].iloc[0])
    from bench.results import ResultStore

    record = json.loads(next(ResultStore("perf-e2e").folder.rglob("*.record.json")).read_text())
    return {"ndcg@10": ndcg, "encoded_texts": record.get("encoded_texts"), "cached_texts": record.get("cached_texts"),
            "encode_corpus_seconds": record["seconds"].get("encode_corpus")}


def run_library(args, task) -> dict:
    from bench.eval.crosscheck import beir_scores, mteb_scores

    scores = (beir_scores if args.pipeline == "beir" else mteb_scores)(
        args.model_path, task, args.max_seq_length, batch_size=args.batch_size)
    return {"ndcg@10": float(scores["ndcg@10"])}


def run_st_bf16(args, task) -> dict:
    """What a sentence-transformers user does for bf16: load the weights as bf16 and call encode."""
    import torch
    from sentence_transformers import SentenceTransformer

    from bench.eval.metrics import mean_scores, per_query_scores
    from bench.retrieval.dense.encode import document_text
    from bench.retrieval.dense.search import dense_run

    model = SentenceTransformer(args.model_path, device="cpu", model_kwargs={"torch_dtype": torch.bfloat16})
    if args.max_seq_length:
        model.max_seq_length = args.max_seq_length
    query_ids, doc_ids = list(task.queries), list(task.corpus)
    kwargs = {"batch_size": args.batch_size, "convert_to_tensor": True, "show_progress_bar": False}
    queries = model.encode_query([task.queries[q] for q in query_ids], **kwargs)
    docs = model.encode_document([document_text(task.corpus[d]) for d in doc_ids], **kwargs)
    unit = [torch.nn.functional.normalize(x.float(), dim=1).numpy() for x in (queries, docs)]
    run = dense_run(query_ids, doc_ids, *unit, 1000, drop_identical_ids=task.ignore_identical_ids)
    return {"ndcg@10": float(mean_scores(per_query_scores(task.qrels, run, ["ndcg@10"]), ["ndcg@10"])["ndcg@10"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.worker")
    parser.add_argument("pipeline", choices=["ours", "beir", "mteb", "st-bf16"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--docs", type=int, default=0)
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="fp32", help="ours: fp32 or bf16")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    from bench.perf.data import perf_task

    task = perf_task(args.datasets, args.docs)
    run = {"ours": run_ours, "st-bf16": run_st_bf16}.get(args.pipeline, run_library)
    report = run(args, task)
    report.update(seconds=round(time.perf_counter() - start, 3), docs=len(task.corpus), queries=len(task.queries),
                  peak_rss_mb=peak_rss_mb())
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
