"""Top-k run metrics, computed with pytrec_eval the way beir's EvaluateRetrieval does."""

from __future__ import annotations

import pytrec_eval

# Bump when a metric's definition changes (here or in bench/eval/ranking.py): it is part of every stored
# result's fingerprint, so results computed under the old definition are recomputed.
METRIC_CODE_VERSION = 1

# Our metric name -> (pytrec_eval measure, the key it reports, run depth it needs or None).
_TREC_MEASURES = {
    "ndcg": ("ndcg_cut.{k}", "ndcg_cut_{k}", None),
    "map": ("map_cut.{k}", "map_cut_{k}", None),
    "recall": ("recall.{k}", "recall_{k}", None),
    "precision": ("P.{k}", "P_{k}", None),
    # MRR@k: reciprocal rank of the first relevant hit within the top k (beir's "mrr").
    "mrr": ("recip_rank", "recip_rank", "k"),
}


def parse_metric(metric: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10)."""
    name, _, k = metric.partition("@")
    if name not in _TREC_MEASURES or not k.isdigit():
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(n + '@k' for n in _TREC_MEASURES)}")
    return name, int(k)


def drop_identical_ids(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {qid: {d: s for d, s in hits.items() if d != qid} for qid, hits in run.items()}


def top_k(hits: dict[str, float], k: int) -> dict[str, float]:
    """The k best hits, ties broken as trec_eval does (higher doc id first)."""
    ranked = sorted(hits.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return dict(ranked[:k])


def per_query_scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                     metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """query id -> metric -> value, for the queries that have both judgements and hits (as beir)."""
    out: dict[str, dict[str, float]] = {}
    for metric in metrics:
        name, k = parse_metric(metric)
        measure, key, depth = _TREC_MEASURES[name]
        scored_run = {q: top_k(h, k) for q, h in run.items()} if depth else run
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {measure.format(k=k)})
        for qid, values in evaluator.evaluate(scored_run).items():
            out.setdefault(qid, {})[metric] = values[key.format(k=k)]
    return out


def deepest_cutoff(metrics: tuple[str, ...]) -> int:
    """The largest @k among top-k metrics: a run shallower than this would understate them."""
    return max(parse_metric(m)[1] for m in metrics)


def mean_scores(per_query: dict[str, dict[str, float]], metrics: tuple[str, ...]) -> dict[str, float]:
    """Macro average over queries (beir divides by the number of evaluated queries). ValueError when no query
    was evaluated: an average of nothing is no score, and a 0.0 stored for it would read as one."""
    if not per_query:
        raise ValueError("no query was evaluated")
    return {m: sum(s[m] for s in per_query.values()) / len(per_query) for m in metrics}
