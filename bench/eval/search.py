"""Dense top-k search. Exact by default: chunked matrix products, memory = corpus embeddings + one chunk of
scores (the chunk shrinks for large corpora so that it stays under SCORE_BUDGET_BYTES). FAISS as an option:
"faiss" (IndexFlatIP, exact inner product, FAISS's own BLAS loop) or "faiss-hnsw" (HNSW graph, approximate,
for corpora too large to scan per query)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from bench.models.registry import SEARCH_METHODS

SCORE_BUDGET_BYTES = 256 * 1024 * 1024  # one chunk of float32 query x document scores
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 200


def chunk_rows(n_docs: int, chunk_size: int = 256) -> int:
    """Queries per chunk: at most chunk_size, fewer when a chunk of scores would pass SCORE_BUDGET_BYTES."""
    return max(1, min(chunk_size, SCORE_BUDGET_BYTES // (4 * max(1, n_docs))))


def score_chunks(queries: np.ndarray, docs: np.ndarray, chunk_size: int = 256) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first query row, dot-product scores of a chunk of queries against every document)."""
    doc_matrix = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))
    rows = chunk_rows(len(docs), chunk_size)
    for start in range(0, len(queries), rows):
        chunk = torch.from_numpy(np.ascontiguousarray(queries[start:start + rows], dtype=np.float32))
        yield start, chunk @ doc_matrix.T


def exact_top_k(queries: np.ndarray, docs: np.ndarray, k: int, chunk_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(scores, doc indices), each (n_queries, min(k, n_docs)), best first. Embeddings are normalised
    upstream, so the dot product is the cosine similarity."""
    k = min(k, len(docs))
    top_scores = np.empty((len(queries), k), dtype=np.float32)
    top_indices = np.empty((len(queries), k), dtype=np.int64)
    with torch.inference_mode():
        for start, scores in score_chunks(queries, docs, chunk_size):
            values, indices = torch.topk(scores, k, dim=1, largest=True, sorted=True)
            top_scores[start:start + len(values)] = values.numpy()
            top_indices[start:start + len(values)] = indices.numpy()
    return top_scores, top_indices


def faiss_top_k(queries: np.ndarray, docs: np.ndarray, k: int, method: str = "faiss",
                threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """As exact_top_k, through FAISS: IndexFlatIP ("faiss", exact) or IndexHNSWFlat on inner product
    ("faiss-hnsw", approximate; efSearch = max(2k, 128) so that k hits come back)."""
    import faiss

    if threads:
        faiss.omp_set_num_threads(threads)
    k = min(k, len(docs))
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if method == "faiss":
        index = faiss.IndexFlatIP(docs.shape[1])
    else:
        index = faiss.IndexHNSWFlat(docs.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = max(2 * k, 128)
    index.add(docs)
    if not len(queries) or not k:
        return np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
    scores, indices = index.search(queries, k)
    return scores.astype(np.float32, copy=False), indices.astype(np.int64, copy=False)


def top_k_search(queries: np.ndarray, docs: np.ndarray, k: int, method: str = "exact"
                 ) -> tuple[np.ndarray, np.ndarray]:
    if method not in SEARCH_METHODS:
        raise ValueError(f"unknown search method {method!r}; known: {', '.join(SEARCH_METHODS)}")
    if method == "exact":
        return exact_top_k(queries, docs, k)
    return faiss_top_k(queries, docs, k, method, threads=torch.get_num_threads())


def dense_run(query_ids: list[str], doc_ids: list[str], queries: np.ndarray, docs: np.ndarray, k: int,
              drop_identical_ids: bool = True, method: str = "exact") -> dict[str, dict[str, float]]:
    """A beir-style run dict from embeddings; one extra hit is fetched so that dropping a hit whose id
    equals the query id (as beir does) still leaves k. HNSW may return fewer than asked (index -1): skipped."""
    scores, indices = top_k_search(queries, docs, k + 1 if drop_identical_ids else k, method)
    run: dict[str, dict[str, float]] = {}
    for qid, row_scores, row_indices in zip(query_ids, scores, indices):
        hits = {doc_ids[i]: float(s) for i, s in zip(row_indices, row_scores)
                if i >= 0 and not (drop_identical_ids and doc_ids[i] == qid)}
        run[qid] = dict(list(hits.items())[:k])
    return run
