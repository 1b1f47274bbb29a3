"""A dense model as the runner sees it (bench/retrieval/base.py): encode queries and documents (encode.py,
through the embedding cache, cache.py), then exact or FAISS top-k search or full-pool scores (search.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bench.data.task import RetrievalTask
from bench.models.registry import ModelSpec
from bench.retrieval.base import timed
from bench.retrieval.dense.encode import DenseEncoder, device_name, document_text
from bench.retrieval.dense.search import check_search, dense_run, score_chunks


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
