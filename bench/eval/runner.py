"""The runner: every (model, task) pair not yet done is evaluated and written to the result store."""

from __future__ import annotations

import os
import platform
import resource
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from bench import interrupts
from bench.data.task import DataError, RetrievalTask
from bench.eval.metrics import mean_scores, per_query_scores
from bench.eval.ranking import RANK_METRICS, full_ranking_per_query
from bench.fingerprint import tasks_to_run
from bench.machine import cpu_model
from bench.models.registry import ModelSpec
from bench.results import ResultStore, git_sha, per_query_frame, tidy_rows
from bench.retrieval import check_runnable, load_retriever

LIBRARIES = ("bench", "torch", "sentence-transformers", "transformers", "pyserini", "pytrec-eval-terrier", "numpy",
             "faiss-cpu", "beir", "mteb")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def score_task(retriever, task: RetrievalTask, k: int, keep_run: dict | None = None
               ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per-query metric values and stage timings. keep_run: filled with a top-k task's ranking (the dict that was
    evaluated), to be saved as a TREC run file."""
    if task.ranking == "topk":
        run, timings = retriever.search(task, k)
        start = time.perf_counter()
        per_query = per_query_scores(task.qrels, run, task.metrics)
        timings["evaluate"] = time.perf_counter() - start
        if keep_run is not None:
            keep_run.update(run)
        return per_query, timings
    # Full-ranking tasks (LAReQA) score every query against the whole pool chunk by chunk and never hold a
    # top-k list, so they have no TREC run file.
    timings = {}
    query_ids, doc_ids, chunks = retriever.pool_scores(task, timings)
    start = time.perf_counter()
    per_query = full_ranking_per_query(query_ids, doc_ids, task.qrels, chunks, task.metrics)
    # Scoring the pool and ranking it happen together, chunk by chunk.
    timings["search_and_evaluate"] = time.perf_counter() - start
    return per_query, timings


def text_counts(retriever) -> dict:
    counts = getattr(retriever, "text_counts", None)
    if counts is None:
        return {}
    cache = getattr(getattr(retriever, "encoder", None), "cache", None)
    return {"encoded_texts": counts.get("encoded", 0), "cached_texts": counts.get("cached", 0),
            "memo_texts": counts.get("memo", 0), "embedding_cache": str(cache.folder) if cache else None}


def model_options(spec: ModelSpec, retriever) -> dict:
    """The model options a result was computed with (issue 15), None where they do not apply: a dense model's
    similarity function, the prompts it used ("prompts") and the overrides given on the command line
    ("prompt_override", None without), the Hugging Face commit of a model given as an id; BM25's k1 and b."""
    encoder = getattr(retriever, "encoder", None)
    dense = spec.kind == "dense" and encoder is not None
    override = spec.query_prompt is not None or spec.doc_prompt is not None
    return {
        "similarity_fn_name": getattr(encoder, "similarity", None) if dense else None,
        "prompts": {"query": encoder.prompt("query"), "document": encoder.prompt("document")} if dense else None,
        "prompt_override": {"query": spec.query_prompt, "document": spec.doc_prompt} if override else None,
        "hf_revision": getattr(encoder, "revision", None) if dense else None,
        "bm25_k1": getattr(retriever, "k1", spec.bm25_k1) if spec.kind == "bm25" else None,
        "bm25_b": getattr(retriever, "b", spec.bm25_b) if spec.kind == "bm25" else None,
    }


def run_options(spec: ModelSpec, k: int, batch_size: int, cache: bool, device: str | None,
                dense_options=None) -> dict:
    """The options a user set for a run, as given (issue 15): `bench show --options` tabulates them. Those that
    change the numbers are also in the run key and in `inputs`; batch size, cache and device do not.
    dense_options (sharded encoding, FAISS parameters; issue 17): recorded beside the others when given."""
    dense = spec.kind == "dense"
    return {"k": k, "max_seq_length": spec.max_seq_length if dense else None,
            "precision": spec.precision if dense else None, "backend": spec.backend if dense else None,
            "search": spec.search if dense else None, "query_prompt": spec.query_prompt,
            "doc_prompt": spec.doc_prompt, "bm25_k1": spec.bm25_k1 if not dense else None,
            "bm25_b": spec.bm25_b if not dense else None, "batch_size": batch_size if dense else None,
            "cache": cache if dense else None, "device": device,
            **(dense_options.record() if dense and dense_options is not None else {})}


def run_record(spec: ModelSpec, retriever, task: RetrievalTask, timings: dict[str, float], n_queries: int,
               options: dict | None = None) -> dict:
    encode_seconds = timings.get("encode_corpus", 0.0)
    return {
        "options": options or {},
        "model": spec.name, "description": spec.description, "fingerprint": retriever.fingerprint,
        # The numerics the scores were computed in (bf16 autocast or fp32); BM25 has no model numerics.
        "precision": spec.precision if spec.kind == "dense" else None,
        **{f"model_{k}": v for k, v in retriever.details.items()},
        **model_options(spec, retriever),
        "suite": task.suite, "dataset": task.dataset, "split": task.split, "setting": task.setting,
        "query_lang": task.query_lang, "doc_lang": task.doc_lang,
        "n_docs": len(task.corpus), "n_queries": n_queries, "warnings": task.warnings,
        "seconds": {stage: round(s, 3) for stage, s in timings.items()},
        # None when every document came from the in-process memo (already encoded for another task) or the
        # embedding cache.
        "docs_per_second": round(len(task.corpus) / encode_seconds, 2) if encode_seconds > 0.01 else None,
        # Dense models: unique texts (queries and documents) encoded by the model, read from the embedding
        # cache, found in the in-process memo; the cache folder (None with --no-cache).
        **text_counts(retriever),
        # Dense models at scale (issue 17): shards encoded / reused, the FAISS index and its parameters, and for
        # approximate search its recall@k against exact search on a sample of queries (search.py, ann_recall).
        **(getattr(retriever, "search_info", None) or {}),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "libraries": library_versions(), "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "processor": cpu_model()},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def run_models(specs: list[ModelSpec], tasks: list[RetrievalTask], experiment: str, force: bool = False,
               k: int = 1000, batch_size: int = 32, log=print, cache: bool = True,
               device: str | None = None, dense_options=None) -> pd.DataFrame:
    """Evaluate each model on each task; returns the tidy rows of this call's (model, task) pairs.
    cache: read and write dense embeddings in the on-disk embedding cache; device: where dense models run
    (default: the GPU when there is one); dense_options: sharded encoding and FAISS parameters (DenseOptions)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    check_runnable(specs, tasks, k)
    store = ResultStore(experiment)
    sha = git_sha()
    for spec in specs:
        # A stored result counts only if it was computed from the same inputs (bench/fingerprint.py).
        todo = tasks_to_run(store, spec, tasks, k, force, log, dense_options)
        if not todo:
            continue
        interrupts.expect(len(todo), store.folder)
        start = time.perf_counter()
        retriever = load_retriever(spec, batch_size=batch_size, cache=cache, device=device,
                                   **({"dense_options": dense_options} if dense_options is not None else {}))
        load_seconds = time.perf_counter() - start
        for task, inputs in todo:
            log(f"{spec.key}: {task.suite}/{task.key} ({len(task.queries)} queries, {len(task.corpus)} docs)")
            run: dict[str, dict[str, float]] = {}
            per_query, timings = score_task(retriever, task, k, keep_run=run)
            if not per_query:
                raise DataError(f"{', '.join(map(str, task.files)) or task.key}: no query of {task.key} retrieved "
                                f"anything, so none was evaluated; no score is stored")
            unscored = len(task.qrels) - len(per_query)
            if unscored:
                log(f"warning: {spec.key}: {task.key}: {unscored} of {len(task.qrels)} judged queries retrieved "
                    f"nothing and are not averaged (as beir and trec_eval)")
            timings["load_model"] = load_seconds
            scores = mean_scores(per_query, task.metrics)
            rows = tidy_rows(experiment, spec, spec.key, task, scores, len(per_query), sha)
            record = {**run_record(spec, retriever, task, timings, len(per_query),
                                   run_options(spec, k, batch_size, cache, device, dense_options)),
                      "inputs": inputs}
            store.write(spec.key, task, rows, per_query_frame(spec.key, task, per_query), record,
                        run=run if task.ranking == "topk" else None)
            interrupts.finished()
    return store.load_pairs([spec.key for spec in specs], tasks)


def summary_table(rows: pd.DataFrame, per_language: bool = False) -> pd.DataFrame:
    """Macro average over languages / pairs: rows (dataset, setting, metric), one column per model.
    per_language: one row per (query language, doc language) instead of their average."""
    if rows.empty:
        return pd.DataFrame()
    languages = ["query_lang", "doc_lang"] if per_language else []
    macro = rows.groupby(["dataset", "split", "setting", *languages, "metric", "run_id"], sort=False)["value"].agg(
        lambda v: float(np.mean(v)))
    return macro.unstack("run_id")


def split_rank_metrics(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A summary table as (0-1 metrics, rank metrics)."""
    if table.empty:
        return table, table
    ranks = table.index.get_level_values("metric").isin(RANK_METRICS)
    return table[~ranks], table[ranks]
