"""Exact dense search against numpy brute force, and the run dict built from it."""

from __future__ import annotations

import numpy as np
import pytest

from bench.retrieval.dense.search import dense_run, exact_top_k, score_chunks


def unit_vectors(rng, n, dim=16):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(7)
    return unit_vectors(rng, 37), unit_vectors(rng, 120)


@pytest.mark.parametrize("k", [1, 5, 10, 120, 500])
@pytest.mark.parametrize("chunk_size", [1, 8, 37, 256])
def test_exact_top_k_equals_brute_force(vectors, k, chunk_size):
    queries, docs = vectors
    scores, indices = exact_top_k(queries, docs, k, chunk_size=chunk_size)
    full = queries.astype(np.float64) @ docs.astype(np.float64).T
    expected_k = min(k, len(docs))  # k > n_docs gives every document
    expected = np.argsort(-full, axis=1, kind="stable")[:, :expected_k]
    assert scores.shape == indices.shape == (len(queries), expected_k)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-6)
    # Best first.
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_score_chunks_cover_all_queries(vectors):
    queries, docs = vectors
    chunks = list(score_chunks(queries, docs, chunk_size=10))
    assert [start for start, _ in chunks] == [0, 10, 20, 30]
    stacked = np.vstack([s.numpy() for _, s in chunks])
    np.testing.assert_allclose(stacked, queries @ docs.T, atol=1e-6)


def test_no_queries(vectors):
    _, docs = vectors
    scores, indices = exact_top_k(np.empty((0, docs.shape[1]), dtype=np.float32), docs, 5)
    assert scores.shape == indices.shape == (0, 5)


def test_dense_run_drops_identical_id_and_keeps_k():
    # Query "b" is also a document, and its own best match: it must be dropped, and k hits remain.
    docs = np.eye(4, dtype=np.float32)  # a, b, c, d
    doc_ids = ["a", "b", "c", "d"]
    query = np.array([[0.1, 0.9, 0.3, 0.2]], dtype=np.float32)
    query /= np.linalg.norm(query)
    run = dense_run(["b"], doc_ids, query, docs, k=2)
    assert list(run["b"]) == ["c", "d"]  # b (0.9) dropped; c 0.3, d 0.2 follow
    assert run["b"]["c"] == pytest.approx(float(query[0, 2]))
    # Without dropping, b comes first.
    assert list(dense_run(["b"], doc_ids, query, docs, k=2, drop_identical_ids=False)["b"]) == ["b", "c"]


def test_dense_run_random(vectors):
    queries, docs = vectors
    doc_ids = [f"d{i}" for i in range(len(docs))]
    # Query 3 carries the id of document 5, others have their own ids.
    query_ids = [f"q{i}" for i in range(len(queries))]
    query_ids[3] = "d5"
    queries = queries.copy()
    queries[3] = docs[5]  # and is that document: its best hit
    k = 10
    run = dense_run(query_ids, doc_ids, queries, docs, k)
    full = queries @ docs.T
    for row, qid in enumerate(query_ids):
        assert len(run[qid]) == k
        order = [doc_ids[i] for i in np.argsort(-full[row], kind="stable") if doc_ids[i] != qid][:k]
        assert list(run[qid]) == order
        assert all(isinstance(s, float) for s in run[qid].values())
    assert "d5" not in run["d5"]
    # k larger than the corpus: every document but the identical one.
    small = dense_run(query_ids, doc_ids, queries, docs, k=500)
    assert len(small["d5"]) == len(docs) - 1 and len(small["q0"]) == len(docs)


# ------------------------------------------------------------------------------ blocked search (issue 17)


@pytest.mark.parametrize("k", [1, 10, 120, 500])
@pytest.mark.parametrize("block_rows", [1, 7, 50, 1000])
@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
def test_blocked_top_k_equals_exact(vectors, k, block_rows, similarity):
    from bench.retrieval.dense.search import blocked_top_k

    queries, docs = vectors
    expected_scores, expected = exact_top_k(queries, docs, k, similarity=similarity)
    scores, indices = blocked_top_k(queries, docs, k, similarity=similarity, block_rows=block_rows)
    assert scores.shape == indices.shape == expected.shape
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_blocked_top_k_ties_keep_corpus_order():
    from bench.retrieval.dense.search import blocked_top_k

    docs = np.tile(np.eye(4, dtype=np.float32)[:1], (9, 1))  # nine identical documents
    scores, indices = blocked_top_k(docs[:1], docs, 5, block_rows=2)
    assert indices.tolist() == [[0, 1, 2, 3, 4]]


def test_faiss_ivf_in_memory_and_recall(vectors):
    from bench.retrieval.dense.index import IndexParams
    from bench.retrieval.dense.search import ann_recall, faiss_top_k

    queries, docs = vectors
    _, expected = exact_top_k(queries, docs, 10)
    info: dict = {}
    # Every list probed: exact.
    _, indices = faiss_top_k(queries, docs, 10, "faiss-ivf", params=IndexParams(nlist=3, nprobe=3), info=info)
    np.testing.assert_array_equal(indices, expected)
    assert info == {"build": {"method": "faiss-ivf", "metric": "ip", "nlist": 3}, "search": {"nprobe": 3}}
    recall = ann_recall(queries, indices, lambda q, d: exact_top_k(q, docs, d)[1])
    assert recall["search_recall"] == 1.0 and recall["search_recall_sample"]["queries"] == len(queries)
    # One list of eight probed: approximate, recall between 0 and 1.
    _, indices = faiss_top_k(queries, docs, 10, "faiss-ivf", params=IndexParams(nlist=8, nprobe=1))
    recall = ann_recall(queries, indices, lambda q, d: exact_top_k(q, docs, d)[1])["search_recall"]
    assert 0.0 <= recall < 1.0


def test_recall_sample_is_bounded_and_seeded():
    from bench.retrieval.dense.search import RECALL_SAMPLE, recall_sample

    assert recall_sample(5).tolist() == [0, 1, 2, 3, 4]
    sample = recall_sample(10_000)
    assert len(sample) == RECALL_SAMPLE and len(set(sample.tolist())) == RECALL_SAMPLE
    assert sample.tolist() == recall_sample(10_000).tolist() == sorted(sample.tolist())


def test_search_suffixes():
    from bench.models.registry import ModelSpec, search_of_suffix, with_search
    from bench.runkey import RunKey

    spec = ModelSpec("m", "dense", "")
    assert [with_search(spec, m).key for m in ("exact", "faiss", "faiss-ivf", "faiss-hnsw")] == \
        ["m", "m", "m+ivf", "m+hnsw"]
    assert RunKey.parse("m-L64+bf16+ivf").search == "ivf"
    assert [search_of_suffix(s) for s in (None, "ivf", "hnsw")] == ["exact", "faiss-ivf", "faiss-hnsw"]
    with pytest.raises(ValueError, match="unknown search method"):
        with_search(spec, "faiss-pq")
