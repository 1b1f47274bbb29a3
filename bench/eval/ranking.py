"""Metrics over the full ranking of a pool (LAReQA mAP, R@k, rank distance; Tatoeba accuracy@1).

Scores arrive one chunk of queries at a time, so memory stays at one chunk of scores however large
the pool. Only the ranks of the relevant documents are needed: the rank of a relevant document is
found by counting the documents scored at or above it, without sorting the pool.

Ties are broken against the relevant documents (pessimistic): every non-relevant document whose
score equals a relevant one's is ranked ahead of it, so a model gains nothing from ties (e.g. two
identical candidate texts). Relevant documents tied with each other take consecutive ranks, as in
any real ordering; their order among themselves changes no metric except rank distance, where a tie
of two relevant documents counts 1. Without ties among relevant documents the rank of a relevant
document is exactly the number of documents scored at or above it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# Metrics counted in ranks, not on a 0-1 scale: tables show them apart, so they are not read as scores, and
# regression checks allow them a whole rank step (bench/check.py).
RANK_METRICS = ("rank_distance",)
# Bound on the boolean (queries x relevant x docs) comparison block, about 16 MB.
_MAX_CELLS = 1 << 24


def relevant_ranks(scores: np.ndarray, relevant: Sequence[np.ndarray]) -> list[np.ndarray]:
    """1-based ranks, in the full ranking of each row, of the given relevant columns.

    scores: (n_queries, n_docs), higher is better; relevant[i]: column indices of row i's relevant docs.
    Returns one int64 array per row, aligned with relevant[i].
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(relevant) != scores.shape[0]:
        raise ValueError(f"expected a (n_queries, n_docs) score matrix and one index array per row; got "
                         f"shape {scores.shape} and {len(relevant)} index arrays")
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError("scores contain NaN: no ranking is defined")
    relevant = [np.asarray(r, dtype=np.intp).reshape(-1) for r in relevant]
    if any(len(r) and (r.min() < 0 or r.max() >= scores.shape[1]) for r in relevant):
        raise ValueError(f"relevant column indices must lie in [0, {scores.shape[1]})")
    sizes = np.array([len(r) for r in relevant], dtype=np.intp)
    width = int(sizes.max(initial=0))
    if width == 0:
        return [np.empty(0, dtype=np.int64) for _ in relevant]
    # Pad every row to the same number of relevant docs; padded cells are masked out below.
    valid = np.arange(width)[None, :] < sizes[:, None]
    columns = np.zeros((len(relevant), width), dtype=np.intp)
    columns[valid] = np.concatenate(relevant)
    rel_scores = np.take_along_axis(scores, columns, axis=1)

    at_or_above = _count_at_or_above(scores, rel_scores)
    # Relevant docs at or above each relevant doc (itself included) ...
    rel_at_or_above = ((rel_scores[:, None, :] >= rel_scores[:, :, None]) & valid[:, None, :]).sum(axis=2)
    # ... are replaced by its position among the relevant docs: consecutive ranks inside a tie.
    order = np.argsort(np.where(valid, -rel_scores.astype(np.float64), np.inf), axis=1, kind="stable")
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.broadcast_to(np.arange(1, width + 1), order.shape), axis=1)
    ranks = at_or_above - rel_at_or_above + position
    return [ranks[i, :n].astype(np.int64) for i, n in enumerate(sizes)]


def _count_at_or_above(scores: np.ndarray, rel_scores: np.ndarray) -> np.ndarray:
    """(n_queries, width): how many docs of each row score >= each of its relevant scores."""
    n_queries, n_docs = scores.shape
    width = rel_scores.shape[1]
    out = np.empty((n_queries, width), dtype=np.int64)
    block = max(1, _MAX_CELLS // max(1, width * n_docs))
    for start in range(0, n_queries, block):
        rows = slice(start, start + block)
        out[rows] = (scores[rows, None, :] >= rel_scores[rows, :, None]).sum(axis=2)
    return out


def _cutoff(metric: str, name: str) -> int:
    k = metric[len(name) + 1:]
    if not k.isdigit() or int(k) < 1:
        raise ValueError(f"bad cutoff in {metric!r}: expected {name}@k with k a positive integer")
    return int(k)


def metrics_from_ranks(ranks: np.ndarray, metrics: Iterable[str]) -> dict[str, float]:
    """One query's metrics from the 1-based ranks of its relevant docs in the full ranking.

    map: average precision, mean over relevant docs (by rank) of i / rank_i;
    recall@k: share of relevant docs ranked <= k; accuracy@k: 1 if a relevant doc is ranked <= k;
    rank_distance: max rank - min rank of the relevant docs (0 for a single one).
    """
    ranks = np.sort(np.asarray(ranks, dtype=np.int64).reshape(-1))
    if len(ranks) == 0:
        raise ValueError("a query needs at least one relevant document to be scored")
    out: dict[str, float] = {}
    for metric in metrics:
        if metric == "map":
            out[metric] = float(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        elif metric == "rank_distance":
            out[metric] = float(ranks[-1] - ranks[0])
        elif metric.startswith("recall@"):
            out[metric] = float(np.mean(ranks <= _cutoff(metric, "recall")))
        elif metric.startswith("accuracy@"):
            out[metric] = float(ranks[0] <= _cutoff(metric, "accuracy"))
        else:
            raise ValueError(f"unknown full-ranking metric {metric!r}; known: map, recall@k, accuracy@k, rank_distance")
    return out


def macro_average(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over the queries that have it."""
    totals: dict[str, list[float]] = {}
    for values in per_query.values():
        for metric, value in values.items():
            totals.setdefault(metric, []).append(value)
    return {metric: float(np.mean(values)) for metric, values in totals.items()}


def full_ranking_per_query(query_ids: Sequence[str], doc_ids: Sequence[str], qrels: Mapping[str, Mapping[str, int]],
                           score_chunks: Iterable[tuple[int, np.ndarray]], metrics: Sequence[str]
                           ) -> dict[str, dict[str, float]]:
    """query id -> metric -> value, from (first query row, scores of a chunk of queries x all docs).

    Judgements with grade > 0 are relevant. Queries without a relevant doc are left out, as
    pytrec_eval does; a relevant doc absent from the pool is an error, since the full ranking could
    never reach it. Accepts the chunks of bench.retrieval.dense.search.score_chunks (torch tensors on CPU).
    """
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    out: dict[str, dict[str, float]] = {}
    for start, chunk in score_chunks:
        chunk = np.asarray(chunk)
        chunk_ids = query_ids[start:start + len(chunk)]
        relevant = [_relevant_columns(qid, qrels.get(qid, {}), column) for qid in chunk_ids]
        for qid, ranks in zip(chunk_ids, relevant_ranks(chunk, relevant)):
            if len(ranks):
                out[qid] = metrics_from_ranks(ranks, metrics)
    return out


def _relevant_columns(qid: str, judged: Mapping[str, int], column: Mapping[str, int]) -> np.ndarray:
    missing = [d for d, grade in judged.items() if grade > 0 and d not in column]
    if missing:
        raise ValueError(f"query {qid!r}: relevant doc(s) {missing[:3]} are not in the ranked pool")
    return np.array([column[d] for d, grade in judged.items() if grade > 0], dtype=np.intp)
