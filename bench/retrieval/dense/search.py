"""Dense top-k search. Exact by default: chunked matrix products, memory = corpus embeddings + one chunk of
scores (the chunk shrinks for large corpora so that it stays under SCORE_BUDGET_BYTES). FAISS as an option:
"faiss" (IndexFlatIP, exact inner product, FAISS's own BLAS loop) or "faiss-hnsw" (HNSW graph, approximate,
for corpora too large to scan per query).

Scores follow the model's similarity function as sentence-transformers' SimilarityFunction defines it: "cosine"
(the default; the vectors arrive L2-normalised from bench/retrieval/dense/encode.py, so it is their dot
product), "dot" (the dot product of the vectors as the model gives them), "euclidean" (minus the L2 distance)
and "manhattan" (minus the L1 distance), larger is better in every case. FAISS serves cosine and dot with inner-product indexes and
euclidean with L2 indexes (minus the square root of FAISS's squared distances); manhattan is exact search only.
"faiss-ivf" (an inverted file: nlist k-means lists, nprobe of them searched) is the other approximate method;
its and HNSW's parameters, and the saving of indexes built from on-disk shards, are in index.py.

Over on-disk shards (shards.py), exact search is `blocked_top_k`: blocks of the memory-mapped matrices scored
against the queries and merged into a running top-k (a stable sort of the running list and the block's own top-k:
equal scores keep corpus order), on the GPU with torch when the device is CUDA.

Approximate search reports its recall against exact search (`ann_recall`): on a sample of at most
RECALL_SAMPLE queries (drawn without replacement, seed 0; every query when there are fewer), the share of each
query's exact top-k that the approximate top-k holds, averaged over the sampled queries, at the depth searched."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from bench.models.registry import SEARCH_METHODS, check_similarity
from bench.retrieval.dense.index import ANN_METHODS, IndexParams, build_index, build_params, configure, search_params
from bench.retrieval.dense.index import search as index_search

SCORE_BUDGET_BYTES = 256 * 1024 * 1024  # one chunk of float32 query x document scores
RECALL_SAMPLE = 100  # queries whose approximate top-k is checked against exact search


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
                threads: int | None = None, similarity: str = "cosine", params: IndexParams | None = None,
                info: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """As exact_top_k, through FAISS built in memory: IndexFlatIP ("faiss", exact), IndexHNSWFlat ("faiss-hnsw",
    approximate; efSearch = max(2k, 128) unless given, so that k hits come back) or IndexIVFFlat ("faiss-ivf")
    on inner product; for euclidean, the L2 indexes, scores = -sqrt(squared distance). Manhattan: ValueError
    (check_search). info: filled with the build and search parameters used."""
    import faiss

    check_search(similarity, method)
    if threads:
        faiss.omp_set_num_threads(threads)
    k = min(k, len(docs))
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    build = build_params(method, len(docs), similarity, params or IndexParams())
    index = build_index(docs, build)
    searched = search_params(method, k, build, params or IndexParams())
    configure(index, method, searched)
    if info is not None:
        info.update({"build": build, "search": searched})
    return index_search(index, queries, k, similarity == "euclidean")


def top_k_search(queries: np.ndarray, docs: np.ndarray, k: int, method: str = "exact", similarity: str = "cosine",
                 params: IndexParams | None = None, info: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    check_search(similarity, method)
    if method == "exact":
        return exact_top_k(queries, docs, k, similarity=similarity)
    return faiss_top_k(queries, docs, k, method, threads=torch.get_num_threads(), similarity=similarity,
                       params=params, info=info)


def run_from_hits(query_ids: list[str], scores: np.ndarray, doc_ids, k: int, drop_identical_ids: bool = True
                  ) -> dict[str, dict[str, float]]:
    """A beir-style run dict from (n_queries, depth) scores and the matching document ids (a 2-d array or
    list of lists; None or a negative index marks a missing hit, which is skipped); the hit whose id equals the
    query id is dropped when asked, and k hits kept."""
    run: dict[str, dict[str, float]] = {}
    for qid, row_scores, row_ids in zip(query_ids, scores, doc_ids):
        hits = {d: float(s) for d, s in zip(row_ids, row_scores)
                if d is not None and not (drop_identical_ids and d == qid)}
        run[qid] = dict(list(hits.items())[:k])
    return run


def dense_run(query_ids: list[str], doc_ids: list[str], queries: np.ndarray, docs: np.ndarray, k: int,
              drop_identical_ids: bool = True, method: str = "exact", similarity: str = "cosine",
              params: IndexParams | None = None, info: dict | None = None) -> dict[str, dict[str, float]]:
    """A beir-style run dict from embeddings; one extra hit is fetched so that dropping a hit whose id
    equals the query id (as beir does) still leaves k. HNSW may return fewer than asked (index -1): skipped.
    info: filled with the FAISS parameters, and for approximate methods the recall against exact search."""
    depth = k + 1 if drop_identical_ids else k
    scores, indices = top_k_search(queries, docs, depth, method, similarity, params, info)
    if info is not None and method in ANN_METHODS:
        info.update(ann_recall(queries, indices, lambda q, d: exact_top_k(q, docs, d, similarity=similarity)[1]))
    ids = [[doc_ids[i] if i >= 0 else None for i in row] for row in indices]
    return run_from_hits(query_ids, scores, ids, k, drop_identical_ids)


# ---------------------------------------------------------------------------------------- on-disk shards


def blocked_top_k(queries: np.ndarray, docs, k: int, similarity: str = "cosine", device: str = "cpu",
                  block_rows: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """exact_top_k over a matrix seen block by block (ShardedEmbeddings, or an array): each block is scored
    against the queries (on `device`), its top-k merged into the running top-k by a stable sort. Memory: the
    queries, one block, one chunk of scores, the running top-k."""
    check_similarity(similarity)
    n_docs = len(docs)
    k = min(k, n_docs)
    n_queries = len(queries)
    if not n_queries or not k:
        return np.empty((n_queries, k), np.float32), np.empty((n_queries, k), np.int64)
    rows = max(1, min(n_queries, SCORE_BUDGET_BYTES // (4 * max(1, min(block_rows, n_docs)))))
    starts = range(0, n_queries, rows)
    blocks = docs.blocks(block_rows) if hasattr(docs, "blocks") else (
        (s, np.ascontiguousarray(docs[s:s + block_rows], dtype=np.float32)) for s in range(0, n_docs, block_rows))
    with torch.inference_mode():
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(device)
        best: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(starts)
        for offset, block in blocks:
            d = torch.from_numpy(block).to(device)
            depth = min(k, len(block))
            for c, start in enumerate(starts):
                values, indices = torch.topk(similarity_scores(q[start:start + rows], d, similarity), depth,
                                             dim=1, largest=True, sorted=True)
                indices = indices + offset
                if best[c] is not None:
                    values = torch.cat([best[c][0], values], dim=1)
                    indices = torch.cat([best[c][1], indices], dim=1)
                    values, order = torch.sort(values, dim=1, descending=True, stable=True)
                    values, indices = values[:, :k], torch.gather(indices, 1, order)[:, :k]
                best[c] = (values, indices)
        top_scores = torch.cat([b[0] for b in best]).cpu().numpy().astype(np.float32, copy=False)
        top_indices = torch.cat([b[1] for b in best]).cpu().numpy().astype(np.int64, copy=False)
    return top_scores, top_indices


def blocked_score_chunks(queries: np.ndarray, docs, chunk_size: int = 256, similarity: str = "cosine",
                         block_rows: int = 65_536) -> Iterator[tuple[int, torch.Tensor]]:
    """score_chunks over ShardedEmbeddings: each chunk's scores against every document, assembled block by
    block (the full-ranking tasks need whole rows)."""
    check_similarity(similarity)
    rows = chunk_rows(len(docs), chunk_size)
    for start in range(0, len(queries), rows):
        chunk = torch.from_numpy(np.ascontiguousarray(queries[start:start + rows], dtype=np.float32))
        out = torch.empty((len(chunk), len(docs)), dtype=torch.float32)
        for offset, block in docs.blocks(block_rows):
            out[:, offset:offset + len(block)] = similarity_scores(chunk, torch.from_numpy(block), similarity)
        yield start, out


def recall_sample(n_queries: int, size: int = RECALL_SAMPLE) -> np.ndarray:
    """The query rows whose approximate top-k is checked: at most `size`, without replacement, seed 0, sorted."""
    if n_queries <= size:
        return np.arange(n_queries)
    return np.sort(np.random.default_rng(0).choice(n_queries, size, replace=False))


def ann_recall(queries: np.ndarray, ann_indices: np.ndarray, exact) -> dict:
    """{"search_recall": mean over sampled queries of |approximate top-k & exact top-k| / |exact top-k|,
    "search_recall_sample": how}. exact(queries, depth) -> exact top-`depth` indices."""
    sample = recall_sample(len(queries))
    depth = ann_indices.shape[1] if ann_indices.ndim == 2 else 0
    if not len(sample) or not depth:
        return {"search_recall": None, "search_recall_sample": {"queries": 0, "of": len(queries), "k": depth}}
    reference = exact(np.ascontiguousarray(queries[sample]), depth)
    shares = [len(set(a[a >= 0].tolist()) & set(e.tolist())) / max(1, len(e))
              for a, e in zip(ann_indices[sample], reference)]
    return {"search_recall": round(float(np.mean(shares)), 6),
            "search_recall_sample": {"queries": int(len(sample)), "of": int(len(queries)), "k": int(depth),
                                     "seed": 0, "reference": "exact"}}
