"""Dense top-k search. Exact by default: chunked matrix products, memory = corpus embeddings + one chunk of
scores (the chunk shrinks for large corpora so that it stays under SCORE_BUDGET_BYTES). FAISS as an option:
"faiss" (IndexFlatIP, exact inner product, FAISS's own BLAS loop) or "faiss-hnsw" (HNSW graph, approximate,
for corpora too large to scan per query).

Scores follow the model's similarity function as sentence-transformers' SimilarityFunction defines it: "cosine"
(the default; the vectors arrive L2-normalised from bench/retrieval/dense/encode.py, so it is their dot
product), "dot" (the dot product of the vectors as the model gives them), "euclidean" (minus the L2 distance)
and "manhattan" (minus the L1 distance), larger is better in every case. FAISS serves cosine and dot with inner-product indexes and
euclidean with L2 indexes (minus the square root of FAISS's squared distances); manhattan is exact search only."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from bench.models.registry import SEARCH_METHODS, check_similarity

SCORE_BUDGET_BYTES = 256 * 1024 * 1024  # one chunk of float32 query x document scores
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 200


def check_search(similarity: str, method: str) -> None:
    """ValueError when `method` cannot rank by `similarity` (an unknown method or similarity included)."""
    if method not in SEARCH_METHODS:
        raise ValueError(f"unknown search method {method!r}; known: {', '.join(SEARCH_METHODS)}")
    similarity = check_similarity(similarity)
    if method != "exact" and similarity == "manhattan":
        raise ValueError(f"similarity_fn_name {similarity!r} is not supported yet with --search faiss*; "
                         "use --search exact")


def similarity_scores(queries: torch.Tensor, docs: torch.Tensor, similarity: str = "cosine") -> torch.Tensor:
    """(n_queries, n_docs) scores as sentence-transformers' similarity functions compute them (cosine on
    normalised vectors is their dot product)."""
    if similarity in ("cosine", "dot"):
        return queries @ docs.T
    if similarity == "euclidean":
        return -torch.cdist(queries, docs, p=2.0)
    if similarity == "manhattan":
        return -torch.cdist(queries, docs, p=1.0)
    check_similarity(similarity)  # ValueError naming the allowed values
    raise AssertionError(similarity)


def chunk_rows(n_docs: int, chunk_size: int = 256) -> int:
    """Queries per chunk: at most chunk_size, fewer when a chunk of scores would pass SCORE_BUDGET_BYTES."""
    return max(1, min(chunk_size, SCORE_BUDGET_BYTES // (4 * max(1, n_docs))))


def score_chunks(queries: np.ndarray, docs: np.ndarray, chunk_size: int = 256, similarity: str = "cosine"
                 ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first query row, scores of a chunk of queries against every document): dot products for cosine
    and dot, negative distances for euclidean and manhattan."""
    check_similarity(similarity)
    doc_matrix = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))
    rows = chunk_rows(len(docs), chunk_size)
    for start in range(0, len(queries), rows):
        chunk = torch.from_numpy(np.ascontiguousarray(queries[start:start + rows], dtype=np.float32))
        yield start, similarity_scores(chunk, doc_matrix, similarity)


def exact_top_k(queries: np.ndarray, docs: np.ndarray, k: int, chunk_size: int = 256, similarity: str = "cosine"
                ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, doc indices), each (n_queries, min(k, n_docs)), best first. Cosine embeddings are normalised
    upstream, so the dot product is the cosine similarity."""
    k = min(k, len(docs))
    top_scores = np.empty((len(queries), k), dtype=np.float32)
    top_indices = np.empty((len(queries), k), dtype=np.int64)
    with torch.inference_mode():
        for start, scores in score_chunks(queries, docs, chunk_size, similarity):
            values, indices = torch.topk(scores, k, dim=1, largest=True, sorted=True)
            top_scores[start:start + len(values)] = values.numpy()
            top_indices[start:start + len(values)] = indices.numpy()
    return top_scores, top_indices


def faiss_top_k(queries: np.ndarray, docs: np.ndarray, k: int, method: str = "faiss",
                threads: int | None = None, similarity: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """As exact_top_k, through FAISS: IndexFlatIP ("faiss", exact) or IndexHNSWFlat on inner product
    ("faiss-hnsw", approximate; efSearch = max(2k, 128) so that k hits come back); for euclidean, IndexFlatL2 /
    IndexHNSWFlat on L2, scores = -sqrt(squared distance). Manhattan: ValueError (check_search)."""
    import faiss

    check_search(similarity, method)
    euclidean = similarity == "euclidean"
    if threads:
        faiss.omp_set_num_threads(threads)
    k = min(k, len(docs))
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if method == "faiss":
        index = faiss.IndexFlatL2(docs.shape[1]) if euclidean else faiss.IndexFlatIP(docs.shape[1])
    else:
        index = faiss.IndexHNSWFlat(docs.shape[1], HNSW_NEIGHBOURS,
                                    faiss.METRIC_L2 if euclidean else faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = max(2 * k, 128)
    index.add(docs)
    if not len(queries) or not k:
        return np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
    scores, indices = index.search(queries, k)
    if euclidean:  # FAISS gives squared L2 distances, smallest first; -sqrt keeps that order, best first
        scores = -np.sqrt(np.maximum(scores, 0.0))
    return scores.astype(np.float32, copy=False), indices.astype(np.int64, copy=False)


def top_k_search(queries: np.ndarray, docs: np.ndarray, k: int, method: str = "exact", similarity: str = "cosine"
                 ) -> tuple[np.ndarray, np.ndarray]:
    check_search(similarity, method)
    if method == "exact":
        return exact_top_k(queries, docs, k, similarity=similarity)
    return faiss_top_k(queries, docs, k, method, threads=torch.get_num_threads(), similarity=similarity)


def dense_run(query_ids: list[str], doc_ids: list[str], queries: np.ndarray, docs: np.ndarray, k: int,
              drop_identical_ids: bool = True, method: str = "exact", similarity: str = "cosine"
              ) -> dict[str, dict[str, float]]:
    """A beir-style run dict from embeddings; one extra hit is fetched so that dropping a hit whose id
    equals the query id (as beir does) still leaves k. HNSW may return fewer than asked (index -1): skipped."""
    scores, indices = top_k_search(queries, docs, k + 1 if drop_identical_ids else k, method, similarity)
    run: dict[str, dict[str, float]] = {}
    for qid, row_scores, row_indices in zip(query_ids, scores, indices):
        hits = {doc_ids[i]: float(s) for i, s in zip(row_indices, row_scores)
                if i >= 0 and not (drop_identical_ids and doc_ids[i] == qid)}
        run[qid] = dict(list(hits.items())[:k])
    return run
