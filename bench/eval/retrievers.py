"""Retrievers behind one interface: `search(task, k) -> (run, timings)` for top-k tasks and
`pool_scores(task, timings)` (chunks of query x pool scores) for tasks scored over the full ranking."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from bench.data.task import RetrievalTask
from bench.eval.encode import DenseEncoder, device_name, document_text
from bench.eval.metrics import drop_identical_ids, top_k
from bench.eval.search import check_search, dense_run, score_chunks
from bench.models.registry import ModelSpec


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


class DenseRetriever:
    def __init__(self, spec: ModelSpec, batch_size: int = 32, cache: bool = True, device: str | None = None):
        self.encoder = DenseEncoder(spec, batch_size=batch_size, cache=cache, device=device)
        self.fingerprint = self.encoder.fingerprint
        self.search_method = spec.search
        self.similarity = self.encoder.similarity
        check_search(self.similarity, self.search_method)  # manhattan with FAISS: refused before any task
        # The backend and search method are part of the run record: a variant is never silent.
        self.details = {"location": self.encoder.location, "max_seq_length": self.encoder.max_seq_length,
                        "backend": self.encoder.backend, "precision": self.encoder.precision, "search": spec.search,
                        "threads": self.encoder.threads, "device": self.encoder.device, "device_name": device_name(self.encoder.device)}
        # Unique texts of the last task by source (encoded / cached / memo), for the run record.
        self.text_counts: dict[str, int] = {}

    def _embed(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        query_ids, doc_ids = list(task.queries), list(task.corpus)
        before = dict(self.encoder.counts)
        with timed(timings, "encode_queries"):
            queries = self.encoder.encode([task.queries[q] for q in query_ids], "query")
        with timed(timings, "encode_corpus"):
            docs = self.encoder.encode([document_text(task.corpus[d]) for d in doc_ids], "document")
        self.text_counts = {source: n - before.get(source, 0) for source, n in self.encoder.counts.items()}
        return query_ids, doc_ids, queries, docs

    def search(self, task: RetrievalTask, k: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        timings: dict[str, float] = {}
        query_ids, doc_ids, queries, docs = self._embed(task, timings)
        with timed(timings, "search"):
            run = dense_run(query_ids, doc_ids, queries, docs, k, drop_identical_ids=task.ignore_identical_ids,
                            method=self.search_method, similarity=self.similarity)
        return run, timings

    def pool_scores(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], list[str], Iterator]:
        """Query ids, pool ids, and (first query row, scores of a chunk of queries x the whole pool)."""
        query_ids, doc_ids, queries, docs = self._embed(task, timings)
        return query_ids, doc_ids, score_chunks(queries, docs, similarity=self.similarity)


class BM25Retriever:
    """pyserini BM25 with one index per (corpus, language); the analyzer follows the pool's language
    (for a mixed-language pool, doc_lang "multi", see bench/models/bm25.py)."""

    def __init__(self, k1: float = 0.9, b: float = 0.4):
        self.k1, self.b = k1, b
        self._by_language: dict[str, object] = {}
        self.fingerprint = f"bm25-k1={k1}-b={b}"
        self.details: dict[str, object] = {"k1": k1, "b": b}

    def _bm25(self, language: str):
        from bench.models.bm25 import BM25

        if language not in self._by_language:
            self._by_language[language] = BM25(k1=self.k1, b=self.b, language=language)
        bm25 = self._by_language[language]
        self.details["backend"] = getattr(bm25, "backend", None)
        self.fingerprint = bm25.fingerprint
        return bm25

    def search(self, task: RetrievalTask, k: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        timings: dict[str, float] = {}
        with timed(timings, "search"):
            run = self._bm25(task.doc_lang).search(task.corpus, task.queries, k=k + 1)
        if task.ignore_identical_ids:
            run = {q: top_k(hits, k) for q, hits in drop_identical_ids(run).items()}
        return run, timings

    def pool_scores(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], list[str], Iterator]:
        """As DenseRetriever's: exact Lucene BM25 of every query against the whole pool (see
        BM25.pool_score_chunks), in the analysis search() uses for the pool's language. Documents sharing no
        term with a query score 0, which ties them below every hit (ranking.py ranks ties pessimistically).
        timings: "index" tokenizing and weighing the pool (0 when an earlier task had the same pool),
        "search" the rest of this call (tokenizing the queries); the scores themselves are computed chunk
        by chunk as the caller ranks them."""
        bm25 = self._bm25(task.doc_lang)
        start = time.perf_counter()
        query_ids, doc_ids, chunks = bm25.pool_score_chunks(task.corpus, task.queries)
        index_seconds = bm25.timings.get("index", 0.0)
        timings["index"] = timings.get("index", 0.0) + index_seconds
        timings["search"] = timings.get("search", 0.0) + time.perf_counter() - start - index_seconds
        return query_ids, doc_ids, chunks


def load_retriever(spec: ModelSpec, batch_size: int = 32, cache: bool = True, device: str | None = None):
    """cache: use the on-disk embedding cache (dense models); device: where a dense model runs (default: the
    GPU when there is one, else the CPU)."""
    if spec.kind == "bm25":
        return BM25Retriever(k1=spec.bm25_k1, b=spec.bm25_b)
    try:
        return DenseRetriever(spec, batch_size=batch_size, cache=cache, device=device)
    except (ValueError, OSError):
        raise  # already say what is wrong (an unknown precision, a Hugging Face id offline)
    except Exception as error:  # noqa: BLE001 - the loaders' own errors (SafetensorError, ...) have no common type
        raise ValueError(f"could not load model {spec.key} ({error.__class__.__name__}: {error}); its folder may be "
                         f"damaged (a truncated model.safetensors, say): re-provision or re-train it") from None


def check_runnable(specs: list[ModelSpec], tasks: list[RetrievalTask], k: int) -> None:
    """Everything about the (model, task) grid that can fail, checked before the first task runs: a ranking
    depth below a metric's cut-off, a BM25 pool in a language it has no analysis for."""
    from bench.eval.metrics import deepest_cutoff

    for task in tasks:
        if task.ranking == "topk" and k < deepest_cutoff(task.metrics):
            raise ValueError(f"--k {k} is below {task.dataset}'s deepest metric cut-off "
                             f"({', '.join(task.metrics)}): give --k {deepest_cutoff(task.metrics)} or more")
    if any(spec.kind == "bm25" for spec in specs):
        from bench.models.bm25 import normalized_language

        for lang in dict.fromkeys(task.doc_lang for task in tasks):
            normalized_language(lang)  # ValueError naming the supported languages
