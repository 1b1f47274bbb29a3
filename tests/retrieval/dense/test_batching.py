"""bench/retrieval/dense/batching.py: batches by padded-token budget, longest first."""

import numpy as np

from bench.retrieval.dense.batching import length_batches


def test_length_batches_respect_budget_and_cover_every_row():
    lengths = np.array([5, 100, 30, 30, 7, 100, 2])
    batches = length_batches(lengths, batch_size=2, token_budget=200, max_rows=3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for rows in batches:
        assert 1 <= len(rows) <= 3 and len(rows) * lengths[rows].max() <= 200
    flat = np.concatenate(batches)
    assert list(lengths[flat]) == sorted(lengths, reverse=True)  # longest first
    assert [r.tolist() for r in batches][:2] == [[1, 5], [2, 3, 4]]  # stable among equals


def test_one_text_longer_than_the_budget_still_gets_a_batch():
    assert [b.tolist() for b in length_batches(np.array([50]), batch_size=1, token_budget=10)] == [[0]]
