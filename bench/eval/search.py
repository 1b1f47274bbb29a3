"""Exact dense top-k search in query chunks: memory = corpus embeddings + one chunk of scores."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def score_chunks(queries: np.ndarray, docs: np.ndarray, chunk_size: int = 256) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first query row, dot-product scores of a chunk of queries against every document)."""
    doc_matrix = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))
    for start in range(0, len(queries), chunk_size):
        chunk = torch.from_numpy(np.ascontiguousarray(queries[start:start + chunk_size], dtype=np.float32))
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


def dense_run(query_ids: list[str], doc_ids: list[str], queries: np.ndarray, docs: np.ndarray, k: int,
              drop_identical_ids: bool = True) -> dict[str, dict[str, float]]:
    """A beir-style run dict from embeddings; one extra hit is fetched so that dropping a hit whose id
    equals the query id (as beir does) still leaves k."""
    scores, indices = exact_top_k(queries, docs, k + 1 if drop_identical_ids else k)
    run: dict[str, dict[str, float]] = {}
    for qid, row_scores, row_indices in zip(query_ids, scores, indices):
        hits = {doc_ids[i]: float(s) for i, s in zip(row_indices, row_scores)
                if not (drop_identical_ids and doc_ids[i] == qid)}
        run[qid] = dict(list(hits.items())[:k])
    return run
