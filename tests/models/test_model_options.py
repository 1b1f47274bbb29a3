"""Model options as sentence-transformers and pyserini users expect them (issue 15, point 4): a model's
similarity_fn_name, --query-prompt / --doc-prompt, Hugging Face ids keyed by their cached revision (and the
offline hint), --bm25-k1 / --bm25-b. Every test uses the tiny fixture model or plain vectors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from bench.eval.runner import model_options
from bench.models.registry import (MODELS, SIMILARITY_FUNCTIONS, bm25_run_id, check_similarity, folder_similarity,
                                   hub_snapshot, offline_hint, prompt_tag, resolve_model, with_bm25_parameters,
                                   with_prompts, with_search)
from bench.retrieval import load_retriever
from bench.retrieval.bm25.retriever import BM25Retriever
from bench.retrieval.dense.encode import DenseEncoder
from bench.retrieval.dense.search import check_search, exact_top_k, faiss_top_k, score_chunks
from support.runner import run_beir, run_id_of, task_files

TEXTS = ["Coffee delays sleep onset.", "Honey bees pollinate crops.", "Solar panels make electricity."]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def with_similarity(model_dir, folder, similarity):
    """A copy of the tiny model whose config_sentence_transformers.json names `similarity` (None: no field),
    without its Normalize module so that dot / euclidean see unnormalised vectors."""
    shutil.copytree(model_dir, folder)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([m for m in modules if "Normalize" not in m["type"]]))
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config.pop("similarity_fn_name", None)
    if similarity is not None:
        config["similarity_fn_name"] = similarity
    config_path.write_text(json.dumps(config))
    return folder


# ------------------------------------------------------------------------------------------- registry


def test_committed_models_are_cosine():
    """me5-small and minilm-l6 score with cosine: their committed results stay what they are."""
    for name in ("me5-small", "minilm-l6"):
        try:
            folder = MODELS[name].locate()
        except Exception as e:  # noqa: BLE001 - the model package is not installed here
            pytest.skip(f"{name} not available: {e}")
        assert folder_similarity(folder) == "cosine"


def test_unknown_similarity_names_the_allowed_values(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="allowed: cosine, dot, euclidean, manhattan"):
        check_similarity("maxsim")
    folder = with_similarity(tiny_model_dir, tmp_path / "bogus", "bogus")
    with pytest.raises(ValueError, match="unknown similarity_fn_name 'bogus'.*allowed: cosine, dot, euclidean"):
        folder_similarity(folder)
    with pytest.raises(ValueError, match="unknown similarity_fn_name 'bogus'"):
        DenseEncoder(resolve_model(str(folder)), cache=False)
    assert folder_similarity(with_similarity(tiny_model_dir, tmp_path / "none", None)) == "cosine"


def test_prompt_override_run_id():
    spec = MODELS["me5-small"]
    assert with_prompts(spec) is spec
    prompted = with_prompts(spec, "query: ", None)
    assert prompted.key == f"me5-small+p{prompt_tag('query: ', None)}" and len(prompt_tag("a", "b")) == 8
    assert prompted.query_prompt == "query: " and prompted.doc_prompt is None
    assert with_prompts(spec, "", "").key != with_prompts(spec, None, "").key != prompted.key
    assert with_prompts(MODELS["bm25"], "q: ", "d: ") is MODELS["bm25"]


def test_bm25_run_ids():
    bm25 = MODELS["bm25"]
    assert bm25_run_id(0.9, 0.4) == "bm25" and bm25_run_id(1.2, 0.75) == "bm25-k1.2-b0.75"
    assert with_bm25_parameters(bm25) is bm25 and with_bm25_parameters(bm25, 0.9, 0.4) is bm25
    tuned = with_bm25_parameters(bm25, 1.2, 0.75)
    assert (tuned.key, tuned.bm25_k1, tuned.bm25_b) == ("bm25-k1.2-b0.75", 1.2, 0.75)
    assert with_bm25_parameters(bm25, b=0.75).key == "bm25-k0.9-b0.75"
    assert with_bm25_parameters(MODELS["me5-small"], 1.2, 0.75) is MODELS["me5-small"]
    for k1, b in ((-1, None), (None, 1.5), (float("nan"), None)):
        with pytest.raises(ValueError, match="--bm25-"):
            with_bm25_parameters(bm25, k1, b)
    retriever = load_retriever(tuned)
    assert isinstance(retriever, BM25Retriever) and (retriever.k1, retriever.b) == (1.2, 0.75)
    options = model_options(tuned, retriever)
    assert (options["bm25_k1"], options["bm25_b"], options["similarity_fn_name"], options["prompts"]) == (
        1.2, 0.75, None, None)


# --------------------------------------------------------------------------------------------- search


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(50, 16)).astype(np.float32)


@pytest.mark.parametrize("similarity", SIMILARITY_FUNCTIONS)
def test_scores_are_sentence_transformers_similarities(vectors, similarity):
    from sentence_transformers import SimilarityFunction

    queries, docs = vectors
    if similarity == "cosine":  # normalised upstream (encode.py), as the dense encoder hands them over
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        docs = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    expected = SimilarityFunction.to_similarity_fn(similarity)(torch.from_numpy(queries), torch.from_numpy(docs))
    got = torch.cat([chunk for _, chunk in score_chunks(queries, docs, chunk_size=3, similarity=similarity)])
    assert torch.allclose(got, expected, atol=1e-5)
    scores, indices = exact_top_k(queries, docs, 5, similarity=similarity)
    order = torch.argsort(expected, dim=1, descending=True)[:, :5].numpy()
    assert np.array_equal(indices, order)
    assert np.allclose(scores, np.take_along_axis(expected.numpy(), order, axis=1), atol=1e-5)


@pytest.mark.parametrize("similarity", ["dot", "euclidean"])
def test_faiss_agrees_with_exact(vectors, similarity):
    pytest.importorskip("faiss")
    queries, docs = vectors
    exact_scores, exact_indices = exact_top_k(queries, docs, 10, similarity=similarity)
    flat_scores, flat_indices = faiss_top_k(queries, docs, 10, "faiss", similarity=similarity)
    assert np.array_equal(flat_indices, exact_indices)
    assert np.allclose(flat_scores, exact_scores, atol=1e-4)
    _, hnsw_indices = faiss_top_k(queries, docs, 10, "faiss-hnsw", similarity=similarity)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hnsw_indices, exact_indices)]) > 0.9


def test_manhattan_needs_exact_search(vectors, tiny_model_dir, tmp_path):
    for method in ("faiss", "faiss-hnsw"):
        with pytest.raises(ValueError, match="not supported yet with --search faiss\\*; use --search exact"):
            check_search("manhattan", method)
    check_search("manhattan", "exact")
    spec = resolve_model(str(with_similarity(tiny_model_dir, tmp_path / "l1", "manhattan")))
    with pytest.raises(ValueError, match="use --search exact"):
        with_search(spec, "faiss")
    assert with_search(spec, "exact") is spec


# -------------------------------------------------------------------------------------------- encoder


def test_dot_model_is_not_normalised_and_cached_apart(tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    cosine_dir = with_similarity(tiny_model_dir, tmp_path / "cos", None)
    dot_dir = tmp_path / "dot"
    shutil.copytree(cosine_dir, dot_dir)
    config = json.loads((dot_dir / "config_sentence_transformers.json").read_text())
    (dot_dir / "config_sentence_transformers.json").write_text(json.dumps({**config, "similarity_fn_name": "dot"}))

    cosine, dot = DenseEncoder(resolve_model(str(cosine_dir))), DenseEncoder(resolve_model(str(dot_dir)))
    assert (cosine.similarity, cosine.normalize, dot.similarity, dot.normalize) == ("cosine", True, "dot", False)
    raw = SentenceTransformer(str(dot_dir), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert np.allclose(dot.encode(TEXTS, "document"), raw, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert np.allclose(np.linalg.norm(cosine.encode(TEXTS, "document"), axis=1), 1.0, atol=1e-5)
    # Cosine keeps the folder name it always had; a non-cosine model's vectors live under their own tag.
    assert not cosine.cache.folder.name.endswith("sim-cosine") and "sim" not in cosine.cache.folder.name
    assert dot.cache.folder.name.endswith("-sim-dot")
    assert json.loads((dot.cache.folder / "meta.json").read_text())["similarity_fn_name"] == "dot"


def test_prompt_override_is_used_and_keyed(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    spec = resolve_model(str(tiny_model_dir))
    plain = DenseEncoder(spec)
    prompted = DenseEncoder(with_prompts(spec, "query: ", "passage: "))
    assert (plain.prompt("query"), prompted.prompt("query"), prompted.prompt("document")) == ("", "query: ", "passage: ")
    assert plain.cache_keys(TEXTS, "query") != prompted.cache_keys(TEXTS, "query")
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    expected = model.encode(TEXTS, prompt="query: ", normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(prompted.encode(TEXTS, "query"), expected, atol=1e-5)
    assert not np.allclose(plain.encode(TEXTS, "query"), expected, atol=1e-5)


# ------------------------------------------------------------------------------------ Hugging Face ids


@pytest.fixture
def hub_cache(tiny_model_dir, tmp_path, monkeypatch):
    """A Hugging Face cache holding the tiny model as tiny-org/tiny-bert at one commit."""
    cache = tmp_path / "hf-hub"
    repo = cache / "models--tiny-org--tiny-bert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return repo, commit


def test_hub_id_is_keyed_by_its_cached_revision(hub_cache):
    repo, commit = hub_cache
    assert hub_snapshot("tiny-org/tiny-bert") == (repo / "snapshots" / commit, commit)
    spec = resolve_model("tiny-org/tiny-bert")
    assert spec.hub_id == "tiny-org/tiny-bert" and spec.key == "tiny-org/tiny-bert"
    assert spec.locate() == str(repo / "snapshots" / commit)
    retriever = load_retriever(spec)
    assert retriever.encoder.revision == commit
    assert retriever.fingerprint == f"hf:tiny-org/tiny-bert@{commit}"
    assert commit[:8] in retriever.encoder.cache.folder.name
    assert model_options(spec, retriever)["hf_revision"] == commit


def test_hub_id_offline_and_not_cached_gives_the_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    spec = resolve_model("nosuchorg/nosuchmodel")
    assert hub_snapshot("nosuchorg/nosuchmodel") is None
    with pytest.raises(OSError) as error:
        load_retriever(spec)
    assert str(error.value) == offline_hint("nosuchorg/nosuchmodel")
    assert "set BENCH_ONLINE=1 to download it, or pass a local model folder" in str(error.value)


def test_cli_offline_hint(data_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    assert run_beir("--model", "nosuchorg/nosuchmodel") == 2
    err = capsys.readouterr().err
    assert "nosuchorg/nosuchmodel is not in the local Hugging Face cache and bench runs offline by default" in err


# ---------------------------------------------------------------------------------------- command line


def test_cli_prompt_override_run(data_env, tiny_model_dir, capsys):
    base = run_id_of(tiny_model_dir)
    assert run_beir("--model", str(tiny_model_dir)) == 0
    assert run_beir("--model", str(tiny_model_dir), "--query-prompt", "query: ", "--doc-prompt", "") == 0
    run_id = f"{base}+p{prompt_tag('query: ', '')}"
    assert f"{run_id}: beir/scifact" in capsys.readouterr().out
    plain = json.loads(task_files(base)[2].read_text())
    record = json.loads(task_files(run_id)[2].read_text())
    assert plain["prompts"] == {"query": "", "document": ""} and plain["prompt_override"] is None
    assert record["prompts"] == {"query": "query: ", "document": ""}
    assert record["prompt_override"] == {"query": "query: ", "document": ""}
    assert record["similarity_fn_name"] == plain["similarity_fn_name"] == "cosine"
    assert record["hf_revision"] is None and record["bm25_k1"] is None


def test_cli_euclidean_model_with_faiss(data_env, tiny_model_dir, tmp_path):
    pytest.importorskip("faiss")
    folder = with_similarity(tiny_model_dir, tmp_path / "l2-model", "euclidean")
    assert run_beir("--model", str(folder), "--search", "faiss") == 0
    record = json.loads(task_files(run_id_of(folder))[2].read_text())
    assert record["similarity_fn_name"] == "euclidean" and record["model_search"] == "faiss"


@pytest.mark.parametrize("flags, message", [
    (["--model", "bm25", "--query-prompt", "q: "], "--query-prompt only apply to dense models"),
    (["--model", "me5-small", "--bm25-k1", "1.2"], "--bm25-k1 only apply to BM25"),
    (["--model", "bm25", "--bm25-b", "2"], "--bm25-b must be between 0 and 1"),
])
def test_cli_flag_checks(data_env, flags, message, capsys):
    assert run_beir(*flags) == 2
    assert message in capsys.readouterr().err


def test_cli_bm25_parameters(data_env, capsys):
    bm25_module = pytest.importorskip("bench.retrieval.bm25.engine")
    try:
        bm25_module.BM25(k1=1.2, b=0.75, language="en")
    except Exception as e:  # noqa: BLE001 - no usable Java / pyserini here
        pytest.skip(f"BM25 not usable here: {e}")
    assert run_beir("--model", "bm25", "--bm25-k1", "1.2", "--bm25-b", "0.75") == 0
    assert "bm25-k1.2-b0.75: beir/scifact" in capsys.readouterr().out
    record = json.loads(task_files("bm25-k1.2-b0.75")[2].read_text())
    assert (record["bm25_k1"], record["bm25_b"], record["model_k1"], record["model_b"]) == (1.2, 0.75, 1.2, 0.75)
    assert record["inputs"]["model"].startswith("bm25(k1=1.2,b=0.75,")  # the fingerprint names the values used
    assert "k1=1.2,b=0.75" in record["fingerprint"] and record["prompts"] is None
