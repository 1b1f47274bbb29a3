"""BM25 as the runner sees it (bench/retrieval/base.py): one BM25 engine per pool language, with k1 and b."""

from __future__ import annotations

import time
from collections.abc import Iterator

from bench.data.task import RetrievalTask
from bench.eval.metrics import drop_identical_ids, top_k
from bench.retrieval.base import timed
from bench.retrieval.bm25.engine import BM25


class BM25Retriever:
    """pyserini BM25 with one index per (corpus, language); the analyzer follows the pool's language
    (for a mixed-language pool, doc_lang "multi", see bench/retrieval/bm25/languages.py)."""

    def __init__(self, k1: float = 0.9, b: float = 0.4):
        self.k1, self.b = k1, b
        self._by_language: dict[str, BM25] = {}
        self.fingerprint = f"bm25-k1={k1}-b={b}"
        self.details: dict[str, object] = {"k1": k1, "b": b}

    def _bm25(self, language: str) -> BM25:
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
