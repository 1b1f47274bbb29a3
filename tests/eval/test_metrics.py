"""Top-k metrics: hand-computed cases, an independent pure-Python implementation, and beir's evaluator."""

from __future__ import annotations

import copy
import math
import random

import pytest

from bench.eval.metrics import drop_identical_ids, mean_scores, parse_metric, per_query_scores, top_k

METRICS = ("ndcg@10", "recall@100", "map@100", "mrr@10")


# --------------------------------------------------------------------------------------- by hand


def hand_case():
    qrels = {
        # Graded: d1 highly relevant, d2 and d4 partly relevant, d3 judged not relevant.
        "q1": {"d1": 2, "d2": 1, "d3": 0, "d4": 1},
        "q2": {"d7": 1},
    }
    run = {
        # q1 ranks d5 (unjudged), d1, d3, d2; d4 is never retrieved.
        "q1": {"d5": 0.9, "d1": 0.8, "d3": 0.7, "d2": 0.6},
        # q2: eleven unjudged docs above d7, which sits at rank 12.
        "q2": {**{f"x{i:02d}": 1.0 - i / 100 for i in range(11)}, "d7": 0.5},
        # q3 has no judgements: not evaluated (as beir and trec_eval).
        "q3": {"d1": 1.0},
    }
    return qrels, run


def test_hand_computed_per_query():
    qrels, run = hand_case()
    scores = per_query_scores(qrels, run, METRICS)
    assert set(scores) == {"q1", "q2"}

    # q1, nDCG@10 with linear gains (trec_eval) and discount 1 / log2(rank + 1):
    #   DCG  = 0 (d5) + 2/log2(3) (d1) + 0 (d3) + 1/log2(5) (d2) = 1.261860 + 0.430677 = 1.692536
    #   IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4)  (grades 2, 1, 1)  = 2 + 0.630930 + 0.5 = 3.130930
    #   nDCG = 1.692536 / 3.130930 = 0.540586
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert scores["q1"]["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-12)
    assert scores["q1"]["ndcg@10"] == pytest.approx(0.540586, abs=1e-6)
    # Recall@100: relevant (grade >= 1) = d1, d2, d4; retrieved d1, d2 -> 2/3.
    assert scores["q1"]["recall@100"] == pytest.approx(2 / 3, abs=1e-12)
    # MAP@100: precision at each relevant hit: d1 at rank 2 -> 1/2, d2 at rank 4 -> 2/4;
    #   (1/2 + 2/4) / 3 relevant (d4 counts though unretrieved) = 1/3.
    assert scores["q1"]["map@100"] == pytest.approx(1 / 3, abs=1e-12)
    # MRR@10: first relevant hit d1 at rank 2 (d3 has grade 0, not relevant) -> 1/2.
    assert scores["q1"]["mrr@10"] == pytest.approx(0.5, abs=1e-12)

    # q2: d7 at rank 12. nDCG@10 = 0 and MRR@10 = 0 (beyond the cut); Recall@100 = 1; MAP@100 = (1/12) / 1.
    assert scores["q2"] == pytest.approx({"ndcg@10": 0.0, "recall@100": 1.0, "map@100": 1 / 12, "mrr@10": 0.0},
                                         abs=1e-12)

    # Means divide by the 2 evaluated queries.
    means = mean_scores(scores, METRICS)
    assert means == pytest.approx({"ndcg@10": dcg / idcg / 2, "recall@100": (2 / 3 + 1) / 2,
                                   "map@100": (1 / 3 + 1 / 12) / 2, "mrr@10": 0.25}, abs=1e-12)


def test_cutoffs_are_honoured():
    qrels, run = hand_case()
    scores = per_query_scores(qrels, run, ("recall@1", "recall@2", "ndcg@1", "mrr@1", "mrr@2", "precision@4"))
    # q1: rank 1 is d5 (not relevant), rank 2 is d1.
    assert scores["q1"] == pytest.approx({"recall@1": 0.0, "recall@2": 1 / 3, "ndcg@1": 0.0, "mrr@1": 0.0,
                                          "mrr@2": 0.5, "precision@4": 2 / 4}, abs=1e-12)
    # MRR@12 reaches q2's d7.
    assert per_query_scores(qrels, run, ("mrr@12",))["q2"]["mrr@12"] == pytest.approx(1 / 12)


def test_mean_scores_of_no_query_is_an_error():
    with pytest.raises(ValueError, match="no query was evaluated"):
        mean_scores({}, METRICS)


def test_query_with_empty_hits_counts_as_zero():
    scores = per_query_scores({"q": {"a": 1}, "r": {"b": 1}}, {"q": {}, "r": {"b": 1.0}}, ("ndcg@10", "mrr@10"))
    assert scores == {"q": {"ndcg@10": 0.0, "mrr@10": 0.0}, "r": {"ndcg@10": 1.0, "mrr@10": 1.0}}


# ------------------------------------------------------------------------------------ helpers


def test_drop_identical_ids():
    run = {"q1": {"q1": 0.9, "d1": 0.8}, "d1": {"d1": 0.7, "q1": 0.6}, "q2": {"d2": 0.1}}
    assert drop_identical_ids(run) == {"q1": {"d1": 0.8}, "d1": {"q1": 0.6}, "q2": {"d2": 0.1}}
    assert run["q1"] == {"q1": 0.9, "d1": 0.8}  # not modified in place


def test_top_k_order_and_ties():
    hits = {"a": 0.5, "b": 0.5, "c": 0.9, "d": 0.1, "e": 0.5}
    # Best first; ties broken as trec_eval does: higher doc id first.
    assert list(top_k(hits, 5)) == ["c", "e", "b", "a", "d"]
    assert top_k(hits, 2) == {"c": 0.9, "e": 0.5}
    assert top_k(hits, 0) == {}
    assert top_k(hits, 10) == hits


def test_mrr_ties_follow_trec_eval():
    # a and b tie; trec_eval puts b (higher id) first, so relevant a is 2nd: MRR@1 = 0, MRR@10 = 1/2,
    # and nDCG@10 agrees with that rank (1/log2(3)).
    scores = per_query_scores({"q": {"a": 1}}, {"q": {"a": 0.5, "b": 0.5}}, ("mrr@1", "mrr@10", "ndcg@10"))
    assert scores["q"] == pytest.approx({"mrr@1": 0.0, "mrr@10": 0.5, "ndcg@10": 1 / math.log2(3)}, abs=1e-12)


@pytest.mark.parametrize("metric", ["foo@10", "ndcg", "ndcg@", "ndcg@x", "NDCG@10", "mrr@-1"])
def test_unknown_metric(metric):
    with pytest.raises(ValueError) as err:
        parse_metric(metric)
    message = str(err.value)
    assert repr(metric) in message
    for known in ("ndcg@k", "map@k", "recall@k", "precision@k", "mrr@k"):
        assert known in message
    with pytest.raises(ValueError, match="known: "):
        per_query_scores({"q": {"a": 1}}, {"q": {"a": 1.0}}, ("ndcg@10", metric))


def test_parse_metric():
    assert parse_metric("ndcg@10") == ("ndcg", 10)
    assert parse_metric("recall@1000") == ("recall", 1000)
    assert parse_metric("mrr@10") == ("mrr", 10)


# ------------------------------------------------------------------ independent implementation, beir


def random_case(seed=13, n_queries=50, n_docs=200):
    rng = random.Random(seed)
    doc_ids = [f"d{i}" for i in range(n_docs)]
    # A few query ids equal doc ids (as in ArguAna), to exercise the dropping of identical ids.
    query_ids = [f"q{i}" for i in range(n_queries - 3)] + ["d3", "d17", "d150"]
    qrels, run = {}, {}
    for i, q in enumerate(query_ids):
        judged = rng.sample(doc_ids, rng.randint(1, 12))
        grades = [0] * len(judged) if i == 5 else [rng.choice([0, 1, 1, 2, 3]) for _ in judged]
        qrels[q] = dict(zip(judged, grades))
        # Random scores, nudged up for relevant docs so that the metrics are far from 0 and 1.
        run[q] = {d: rng.random() + 0.25 * qrels[q].get(d, 0) for d in doc_ids}
    return qrels, run


def reference_scores(qrels, run):
    """nDCG@10, Recall@100, MAP@100, MRR@10 written out from their definitions (trec_eval conventions:
    linear gains, relevance = grade >= 1, ties by higher doc id, per-query mean)."""
    out = {}
    for q, hits in run.items():
        if q not in qrels:
            continue
        ranking = [d for d, _ in sorted(hits.items(), key=lambda x: (x[1], x[0]), reverse=True)]
        grades = qrels[q]
        relevant = {d for d, g in grades.items() if g >= 1}
        dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]) if grades.get(d, 0) > 0)
        ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        found, precisions = 0, []
        for i, d in enumerate(ranking[:100]):
            if d in relevant:
                found += 1
                precisions.append(found / (i + 1))
        first = next((i for i, d in enumerate(ranking[:10]) if d in relevant), None)
        out[q] = {
            "ndcg@10": dcg / idcg if idcg else 0.0,
            "recall@100": found / len(relevant) if relevant else 0.0,
            "map@100": sum(precisions) / len(relevant) if relevant else 0.0,
            "mrr@10": 1 / (first + 1) if first is not None else 0.0,
        }
    return out


def test_agrees_with_definitions_on_random_run():
    qrels, run = random_case()
    run = drop_identical_ids(run)
    ours = per_query_scores(qrels, run, METRICS)
    reference = reference_scores(qrels, run)
    assert set(ours) == set(reference) == set(qrels)
    for q in reference:
        for m in METRICS:
            assert ours[q][m] == pytest.approx(reference[q][m], abs=1e-9), (q, m)
    means, ref_means = mean_scores(ours, METRICS), mean_scores(reference, METRICS)
    for m in METRICS:
        assert means[m] == pytest.approx(ref_means[m], abs=1e-9)
    # The case is not degenerate.
    assert 0.05 < means["ndcg@10"] < 0.95 and 0.05 < means["mrr@10"] < 0.95


def test_agrees_with_beir_evaluate():
    from beir.retrieval.evaluation import EvaluateRetrieval

    qrels, run = random_case()
    ours = mean_scores(per_query_scores(qrels, drop_identical_ids(run), METRICS), METRICS)
    # beir pops hits whose id equals the query id (ignore_identical_ids=True, in place: give it a copy) and
    # rounds its means to 5 decimals, hence the tolerance of 1e-5 here.
    beir_run = copy.deepcopy(run)
    ndcg, _map, recall, _p = EvaluateRetrieval.evaluate(qrels, beir_run, [10, 100])
    assert all(q not in hits for q, hits in beir_run.items())
    mrr = EvaluateRetrieval.evaluate_custom(qrels, beir_run, [10], "mrr")
    assert ours["ndcg@10"] == pytest.approx(ndcg["NDCG@10"], abs=1e-5)
    assert ours["recall@100"] == pytest.approx(recall["Recall@100"], abs=1e-5)
    assert ours["map@100"] == pytest.approx(_map["MAP@100"], abs=1e-5)
    assert ours["mrr@10"] == pytest.approx(mrr["MRR@10"], abs=1e-5)
    # Keeping the identical ids changes the numbers (so the dropping above mattered).
    kept = mean_scores(per_query_scores(qrels, run, METRICS), METRICS)
    ndcg_kept, *_ = EvaluateRetrieval.evaluate(qrels, copy.deepcopy(run), [10], ignore_identical_ids=False)
    assert kept["ndcg@10"] == pytest.approx(ndcg_kept["NDCG@10"], abs=1e-5)
