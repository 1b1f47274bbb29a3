"""The scale section of `bench perf` (issue 17): the large-corpus path (streamed corpus, sharded multi-process
encoding, FAISS indexes over memory-mapped shards, blocked exact search) timed on synthetic corpora of growing
size, to see how time and memory grow with the corpus and to extrapolate to MIRACL (about 106M passages).

For each size N:
1. generate: the synthetic corpus and queries of size N (synthetic.py), written once and reused.
2. load: bench.data.corpus.JsonlCorpus over the file, its index of ids and offsets built from scratch (into a
   fresh folder).
3. encode: the tiny model (tiny_model.py) through the sharded path of bench/retrieval/dense: DenseEncoder's
   multi-process pool (--scale-processes, whole shards per process) and encode_shards writing float32 shards.
4. index: FAISS flat, HNSW and IVF, each built from the memory-mapped shards and saved beside them
   (index.load_or_build); search: blocked exact top-10 over the shards, then each index, with its recall@10
   against exact search, and for every method the share of queries whose source passage is in the top 10.

Each size runs in its own process (`python -m bench.perf.scale N ...`, one JSON line out), so its memory
figures are its own. Each stage's peak RSS is the process's high-water mark (VmHWM) with the mark reset before
the stage (/proc/self/clear_refs), so it is that stage's peak (plus whatever earlier stages left resident). The
pool's worker processes are sampled from /proc (memory.py): the largest worker's VmHWM and the
largest sum of their VmRSS at one moment. The work folder (corpus index, shards, indexes) is removed after."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from bench.perf.memory import ChildMemory, Stages, reset_peak
from bench.perf.options import Log, PerfOptions
from bench.perf.synthetic import MAX_WORDS, MIN_WORDS, VOCABULARY, generate, read_queries, scale_root

K = 10
METHODS = ("faiss", "faiss-hnsw", "faiss-ivf")


# ------------------------------------------------------------------------------------------ one size N


def measure(n: int, corpus_file: Path, query_file: Path, model: Path, processes: int, shard_size: int | None,
            batch_size: int, work: Path, device: str | None = None) -> dict:
    """Stages 2-4 for one size, in this process (see the module docstring); the work folder is removed after."""
    import torch

    from bench.data.corpus import JsonlCorpus
    from bench.models.registry import resolve_model
    from bench.retrieval.dense.encode import DenseEncoder, document_text
    from bench.retrieval.dense.index import IndexParams, build_params, configure, load_or_build, on_device
    from bench.retrieval.dense.index import search as index_search
    from bench.retrieval.dense.index import search_params
    from bench.retrieval.dense.options import DEFAULT_SHARD_SIZE
    from bench.retrieval.dense.search import blocked_top_k
    from bench.retrieval.dense.shards import ShardStore, encode_shards

    reset_ok = reset_peak()
    stages = Stages(n)
    queries = read_queries(query_file)
    work.mkdir(parents=True, exist_ok=True)
    try:
        corpus = stages.run("load", lambda: JsonlCorpus([corpus_file], cache=work / "corpus-index"))
        if len(corpus) != n:
            raise ValueError(f"{corpus_file} holds {len(corpus)} passages, expected {n}")
        encoder = DenseEncoder(resolve_model(str(model)), batch_size=batch_size, cache=False, device=device)
        size = shard_size or min(DEFAULT_SHARD_SIZE, math.ceil(n / processes))
        store = ShardStore(work / "shards", n, size, encoder.dim, "float32", meta={"model": str(model)})
        if str(encoder.device).startswith("cuda"):
            count = max(1, torch.cuda.device_count())
            devices = [f"cuda:{i % count}" for i in range(processes)]
        else:
            devices = [str(encoder.device)] * processes
        pool: list = []
        pool_seconds = [0.0]

        def embed(groups: list[list[str]]) -> list[np.ndarray]:
            if processes > 1 and not pool:
                started = time.perf_counter()
                pool.append(encoder.start_pool(devices))
                pool_seconds[0] = time.perf_counter() - started
            return encoder.embed_many(groups, "document", pool[0] if pool else None)

        def encode():
            try:
                return encode_shards(store, corpus, document_text, embed, group=processes)
            finally:
                if pool:
                    encoder.stop_pool(pool[0])

        with ChildMemory() as children:
            counts = stages.run("encode", encode, shards=store.n_shards, shard_size=size, processes=processes,
                                devices=devices)
        row = stages.rows["encode"]
        row.update(children.result())
        # Starting the pool (each worker imports torch and loads the model) is paid once per run, whatever N.
        row["pool_start_seconds"] = round(pool_seconds[0], 3)
        row["docs_per_second_after_pool_start"] = round(n / max(1e-9, row["seconds"] - pool_seconds[0]), 1)
        if counts["encoded"] != store.n_shards:
            raise RuntimeError(f"expected {store.n_shards} shards encoded, got {dict(counts)}")
        docs = store.open()
        query_vectors = encoder.embed([q["text"] for q in queries], "query")
        search_device = str(encoder.device) if str(encoder.device).startswith("cuda") else "cpu"
        import faiss

        faiss.omp_set_num_threads(torch.get_num_threads())
        identity = {"model": str(model), "n_docs": n}
        indexes, index_mb = {}, {}
        for method in METHODS:
            build = build_params(method, n, encoder.similarity, IndexParams())
            index, info = stages.run(f"{method}-build", lambda: load_or_build(docs, store.folder, build, identity),
                                     params=build)
            indexes[method] = (index, build)
            index_mb[method] = round(Path(info["path"]).stat().st_size / 2**20, 2)
        _, exact = stages.run("search-exact", lambda: blocked_top_k(query_vectors, docs, K, encoder.similarity,
                                                                    search_device), queries=len(queries))
        sources = [q["doc"] for q in queries]

        def hit_rate(indices: np.ndarray) -> float:
            ids = docs.doc_ids(indices)
            return round(float(np.mean([source in set(row) for source, row in zip(sources, ids)])), 4)

        ann = {}
        for method, (index, build) in indexes.items():
            searched = search_params(method, K, build, IndexParams())
            configure(index, method, searched)
            index = on_device(index, method, search_device)
            _, found = stages.run(f"search-{method}", lambda: index_search(index, query_vectors, K, False),
                                  queries=len(queries), params=searched)
            overlap = [len(set(a[a >= 0].tolist()) & set(e.tolist())) / K for a, e in zip(found, exact)]
            ann[method] = {"recall_at_10_vs_exact": round(float(np.mean(overlap)), 4),
                           "source_in_top_10": hit_rate(found), "index_mb": index_mb[method]}
        for name, row in stages.rows.items():
            if name.startswith("search-") and row["seconds"]:
                row["queries_per_second"] = round(len(queries) / row["seconds"], 1)
        shard_mb = sum(store.matrix_path(i).stat().st_size for i in range(store.n_shards)) / 2**20
        return {"docs": n, "queries": len(queries), "dim": encoder.dim, "device": str(encoder.device),
                "threads": encoder.threads, "stages": stages.rows, "exact_source_in_top_10": hit_rate(exact),
                "ann": ann, "embeddings_mb": round(shard_mb, 2),
                "peak_reset": reset_ok}  # False: each stage's peak is the process's peak so far
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.scale", description="one size of the scale section")
    parser.add_argument("docs", type=int)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--shard-size", type=int)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    result = measure(args.docs, Path(args.corpus), Path(args.queries), Path(args.model), args.processes,
                     args.shard_size, args.batch_size, Path(args.work))
    print(json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------------------- the section


def run_size(n: int, data: dict, model: Path, options: PerfOptions, log_file: Path) -> dict:
    """One size in its own process; its JSON, plus the wall time of the whole process."""
    work = scale_root() / "work" / f"n{n}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "bench.perf.scale", str(n), "--corpus", data["corpus"], "--queries",
               data["queries"], "--model", str(model), "--processes", str(options.scale_processes),
               "--batch-size", str(options.batch_size), "--work", str(work)]
    if options.scale_shard_size:
        command += ["--shard-size", str(options.scale_shard_size)]
    start = time.perf_counter()
    with open(log_file, "ab") as log:
        child = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, check=False)
    wall = time.perf_counter() - start
    shutil.rmtree(work, ignore_errors=True)
    if child.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"scale worker for {n} documents failed (exit {child.returncode}); log {log_file}:\n{tail}")
    return {**json.loads(child.stdout.decode().strip().splitlines()[-1]), "wall_seconds": round(wall, 3)}


def growth(rows: list[dict]) -> dict:
    """Per stage, from the smallest to the largest size: the time and memory ratios beside the size ratio, and
    the exponent of time in size (1: linear)."""
    if len(rows) < 2:
        return {}
    small, large = min(rows, key=lambda r: r["docs"]), max(rows, key=lambda r: r["docs"])
    size_ratio = large["docs"] / small["docs"]
    out = {"from_docs": small["docs"], "to_docs": large["docs"], "size_ratio": round(size_ratio, 3), "stages": {}}
    for stage, a in small["stages"].items():
        b = large["stages"].get(stage)
        if not b or not a["seconds"] or not b["seconds"]:
            continue
        time_ratio = b["seconds"] / a["seconds"]
        out["stages"][stage] = {
            "time_ratio": round(time_ratio, 3), "memory_ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 3),
            "time_exponent": round(math.log(time_ratio) / math.log(size_ratio), 3) if size_ratio > 1 else None}
    return out


def scale(options: PerfOptions, work: Path, log: Log) -> dict:
    """The section: the tiny model, each size's data, each size measured in its own process."""
    from bench.perf.tiny_model import tiny_model_path

    start = time.perf_counter()
    model = tiny_model_path()
    result: dict = {"model": str(model), "model_seconds": round(time.perf_counter() - start, 3),
                    "processes": options.scale_processes, "queries": options.scale_queries,
                    "vocabulary": VOCABULARY, "words_per_passage": [MIN_WORDS, MAX_WORDS], "k": K, "sizes": []}
    for n in sorted(options.scale_sizes):
        log(f"  scale {n} documents: data ...")
        data = generate(n, options.scale_queries)
        log(f"  scale {n} documents: {'generated' if data['generated'] else 'reused'} {data['corpus']} "
            f"({data['corpus_mb']} MB, {data['seconds']} s); measuring ...")
        row = run_size(n, data, model, options, work / f"scale-{n}.log")
        row["stages"] = {"generate": {"seconds": data["seconds"], "docs_per_second": round(n / data["seconds"], 1)
                                      if data["seconds"] and data["generated"] else None, "peak_rss_mb": None,
                                      "generated": data["generated"]}, **row["stages"]}
        row["corpus_mb"] = data["corpus_mb"]
        result["sizes"].append(row)
        log(f"  scale {n} documents: {row['wall_seconds']:.1f} s")
    result["growth"] = growth([{**r, "stages": {k: v for k, v in r["stages"].items() if k != "generate"}}
                               for r in result["sizes"]])
    return result


def print_scale(result: dict, log: Log) -> None:
    log(f"\nscale ({result['processes']} encoding processes, {result['queries']} queries, tiny model "
        f"{result['model']}):")
    log(f"  {'stage':<18} {'N':>9} {'seconds':>9} {'docs/s':>11} {'peak RSS MB':>12} {'workers MB':>11}")
    stages = list(dict.fromkeys(s for row in result["sizes"] for s in row["stages"]))
    for stage in stages:
        for row in result["sizes"]:
            r = row["stages"].get(stage)
            if r is None:
                continue
            workers = r.get("children_total_rss_mb")
            rate = f"{r['docs_per_second']:.0f}" if r["docs_per_second"] else "-"
            log(f"  {stage:<18} {row['docs']:>9} {r['seconds']:>9.2f} {rate:>11} "
                f"{r['peak_rss_mb'] if r['peak_rss_mb'] is not None else '-':>12} "
                f"{workers if workers is not None else '':>11}")
    for row in result["sizes"]:
        ann = ", ".join(f"{m} {a['recall_at_10_vs_exact']:.3f}" for m, a in row["ann"].items())
        encode = row["stages"]["encode"]
        log(f"  N={row['docs']}: pool start {encode['pool_start_seconds']} s, encoding after it "
            f"{encode['docs_per_second_after_pool_start']:.0f} docs/s; largest worker "
            f"{encode['children_peak_rss_mb']} MB")
        log(f"  N={row['docs']}: source passage in exact top-10 {row['exact_source_in_top_10']:.3f}; "
            f"ANN recall@10 vs exact: {ann}; embeddings {row['embeddings_mb']} MB")
    g = result.get("growth") or {}
    if g:
        log(f"  growth {g['from_docs']} -> {g['to_docs']} documents (size x{g['size_ratio']}):")
        for stage, r in g["stages"].items():
            log(f"    {stage:<18} time x{r['time_ratio']:<8} memory x{r['memory_ratio']:<7} "
                f"time exponent {r['time_exponent']}")


def summary_block(result: dict) -> dict:
    """The scale figures summary.json keeps: per size, docs/s and peak RSS of the main stages and the recalls;
    the growth."""
    sizes = {}
    for row in result["sizes"]:
        st = row["stages"]
        sizes[str(row["docs"])] = {
            "load_docs_per_second": st["load"]["docs_per_second"],
            "encode_docs_per_second": st["encode"]["docs_per_second"],
            "encode_docs_per_second_after_pool_start": st["encode"]["docs_per_second_after_pool_start"],
            "encode_peak_rss_mb": st["encode"]["peak_rss_mb"],
            "encode_workers_total_rss_mb": st["encode"].get("children_total_rss_mb"),
            "hnsw_build_seconds": st["faiss-hnsw-build"]["seconds"],
            "exact_search_seconds": st["search-exact"]["seconds"],
            "exact_source_in_top_10": row["exact_source_in_top_10"],
            "ann_recall_at_10": {m: a["recall_at_10_vs_exact"] for m, a in row["ann"].items()},
            "wall_seconds": row["wall_seconds"]}
    growth_ = result.get("growth") or {}
    return {"processes": result["processes"], "sizes": sizes,
            "growth": {"size_ratio": growth_.get("size_ratio"),
                       **{stage: {k: r[k] for k in ("time_ratio", "memory_ratio")}
                          for stage, r in (growth_.get("stages") or {}).items()}} if growth_ else None}


if __name__ == "__main__":
    sys.exit(main())
