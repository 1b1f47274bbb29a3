import numpy as np
import pytest
import pytrec_eval

from bench.eval.ranking import full_ranking_per_query, macro_average, metrics_from_ranks, relevant_ranks


def ranks_of(scores, relevant):
    return [r.tolist() for r in relevant_ranks(np.array(scores, dtype=np.float32), [np.array(r) for r in relevant])]


def test_ranks_by_hand():
    # Row 0 orders its docs d0 0.9, d3 0.7, d2 0.5, d4 0.3, d1 0.1: relevant d2 is 3rd, d4 4th.
    # Row 1 orders them d1 0.8, d4 0.6, d0 0.4, d2 0.2, d3 0.0: relevant d1 is 1st.
    # Row 2 has no relevant doc.
    scores = [[0.9, 0.1, 0.5, 0.7, 0.3],
              [0.4, 0.8, 0.2, 0.0, 0.6],
              [0.1, 0.2, 0.3, 0.4, 0.5]]
    assert ranks_of(scores, [[2, 4], [1], []]) == [[3, 4], [1], []]
    # The ranks follow the order of the given indices.
    assert ranks_of(scores[:1], [[4, 2]]) == [[4, 3]]


def test_ties_rank_the_relevant_doc_last():
    # d0 and d1 tie at 0.5 behind d2: relevant d1 is put behind d0, so it is 3rd, not 2nd.
    assert ranks_of([[0.5, 0.5, 0.9]], [[1]]) == [[3]]
    # Two relevant docs tied with each other and with one non-relevant doc (d2), all at 0.5:
    # the non-relevant one goes first, then the two relevant ones take ranks 2 and 3.
    assert ranks_of([[0.5, 0.5, 0.5, 0.1]], [[0, 1]]) == [[2, 3]]


def test_metrics_by_hand():
    # Relevant docs at ranks 3 and 4: AP = (1/3 + 2/4) / 2 = 0.41666...
    m = metrics_from_ranks(np.array([4, 3]), ["map", "recall@1", "recall@3", "recall@10", "accuracy@1",
                                              "rank_distance"])
    assert m == pytest.approx({"map": (1 / 3 + 2 / 4) / 2, "recall@1": 0.0, "recall@3": 0.5, "recall@10": 1.0,
                               "accuracy@1": 0.0, "rank_distance": 1.0})
    # One relevant doc ranked first: every metric perfect, rank distance 0.
    assert metrics_from_ranks(np.array([1]), ["map", "recall@1", "accuracy@1", "rank_distance"]) == {
        "map": 1.0, "recall@1": 1.0, "accuracy@1": 1.0, "rank_distance": 0.0}


def test_rank_distance_across_languages():
    # Multi setting, one query with parallel answers in en, de, zh. Pool of 10 (columns):
    # en answer = col 0, de answer = col 5, zh answer = col 9. The ranking is
    # c0 .95, c1 .9, c2 .8, c5 .7, c6 .6, c7 .5, c8 .4, c9 .3, c4 .2, c3 .1: en 1st, de 4th, zh 8th.
    scores = np.array([[0.95, 0.9, 0.8, 0.1, 0.2, 0.7, 0.6, 0.5, 0.4, 0.3]])
    ranks = relevant_ranks(scores, [np.array([0, 5, 9])])[0]
    assert ranks.tolist() == [1, 4, 8]
    m = metrics_from_ranks(ranks, ["rank_distance", "map", "recall@10"])
    assert m["rank_distance"] == 8 - 1
    assert m["map"] == pytest.approx((1 / 1 + 2 / 4 + 3 / 8) / 3)
    assert m["recall@10"] == 1.0


def test_errors():
    with pytest.raises(ValueError, match="NaN"):
        relevant_ranks(np.array([[np.nan, 1.0]]), [np.array([0])])
    with pytest.raises(ValueError, match="indices"):
        relevant_ranks(np.array([[0.0, 1.0]]), [np.array([2])])
    with pytest.raises(ValueError, match="unknown full-ranking metric"):
        metrics_from_ranks(np.array([1]), ["ndcg@10"])
    with pytest.raises(ValueError, match="at least one relevant"):
        metrics_from_ranks(np.array([], dtype=int), ["map"])


def test_macro_average():
    per_query = {"q1": {"map": 1.0, "recall@1": 1.0}, "q2": {"map": 0.5, "recall@1": 0.0}, "q3": {"map": 0.0,
                                                                                                  "recall@1": 0.0}}
    assert macro_average(per_query) == pytest.approx({"map": 0.5, "recall@1": 1 / 3})
    assert macro_average({}) == {}


def random_problem(seed: int, n_queries: int = 30, n_docs: int = 60):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n_queries, n_docs))  # continuous: no ties
    relevant = [rng.choice(n_docs, size=rng.integers(1, 8), replace=False) for _ in range(n_queries)]
    query_ids = [f"q{i}" for i in range(n_queries)]
    doc_ids = [f"d{j}" for j in range(n_docs)]
    qrels = {q: {doc_ids[j]: 1 for j in rel} for q, rel in zip(query_ids, relevant)}
    return scores, relevant, query_ids, doc_ids, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytrec_eval_on_full_rankings(seed):
    scores, relevant, query_ids, doc_ids, qrels = random_problem(seed)
    # The run holds every doc of the pool, so trec_eval's map is average precision over the full ranking.
    run = {q: {d: float(s) for d, s in zip(doc_ids, row)} for q, row in zip(query_ids, scores)}
    trec = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall.1,5,10"}).evaluate(run)
    ours = {q: metrics_from_ranks(r, ["map", "recall@1", "recall@5", "recall@10"])
            for q, r in zip(query_ids, relevant_ranks(scores, relevant))}
    for q in query_ids:
        assert ours[q]["map"] == pytest.approx(trec[q]["map"], abs=1e-9)
        for k in (1, 5, 10):
            assert ours[q][f"recall@{k}"] == pytest.approx(trec[q][f"recall_{k}"], abs=1e-9)


def test_chunking_does_not_change_the_scores():
    scores, _, query_ids, doc_ids, qrels = random_problem(3)
    qrels["q0"]["d1"] = 0  # a judged non-relevant doc is not relevant
    qrels.pop("q1")  # a query without judgements is left out
    metrics = ["map", "recall@10", "rank_distance"]

    def chunks(size):
        return ((start, scores[start:start + size]) for start in range(0, len(scores), size))

    whole = full_ranking_per_query(query_ids, doc_ids, qrels, chunks(len(scores)), metrics)
    assert whole == full_ranking_per_query(query_ids, doc_ids, qrels, chunks(7), metrics)
    assert "q1" not in whole and len(whole) == len(query_ids) - 1
    rel_q0 = [doc_ids.index(d) for d, g in qrels["q0"].items() if g > 0]
    expected = metrics_from_ranks(relevant_ranks(scores[:1], [np.array(rel_q0)])[0], metrics)
    assert whole["q0"] == expected


def test_relevant_doc_outside_the_pool_is_an_error():
    with pytest.raises(ValueError, match="not in the ranked pool"):
        full_ranking_per_query(["q"], ["d0"], {"q": {"d9": 1}}, [(0, np.zeros((1, 1)))], ["map"])
