"""Encoder batching and backends, FAISS search, model variants, and the perf command's pieces (tiny model;
the real benchmark is `python -m bench perf`)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bench.retrieval.dense.encode import DenseEncoder
from bench.retrieval.dense.search import chunk_rows, dense_run, exact_top_k, faiss_top_k
from bench.models.registry import resolve_model, with_backend, with_max_seq_length, with_search

TEXTS = ["short", "a somewhat longer sentence about coffee and sleep", "mid length text here",
         "the longest of them all, with many words about volcanoes, bees, solar panels and python tests",
         "short too", "another mid length sentence"] * 3


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_fp32_vectors_match_sentence_transformers_encode(tiny_model_dir, batch_size):
    encoder = DenseEncoder(resolve_model(str(tiny_model_dir)), batch_size=batch_size, cache=False)
    ours = encoder.embed(list(dict.fromkeys(TEXTS)), "document")
    reference = encoder.model.encode_document(list(dict.fromkeys(TEXTS)), batch_size=batch_size,
                                              normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    stats = encoder.stats
    assert stats.texts == 6 and 0 < stats.real_tokens <= stats.padded_tokens
    assert stats.real_sq_tokens <= stats.padded_sq_tokens


@pytest.fixture
def prompted_dir(tiny_model_dir, tmp_path):
    """The tiny model with "query: " / "passage: " prompts, as me5-small."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    model.save(str(tmp_path / "prompted"))
    return tmp_path / "prompted"


def test_prompted_vectors_match(prompted_dir):
    encoder = DenseEncoder(resolve_model(str(prompted_dir)), batch_size=4, cache=False)
    texts = list(dict.fromkeys(TEXTS))
    np.testing.assert_allclose(encoder.embed(texts, "query"),
                               encoder.model.encode_query(texts, normalize_embeddings=True), atol=1e-6)


@pytest.mark.parametrize("backend, tolerance", [("onnx", 1e-5), ("int8", 0.1)])
def test_backends_are_close_to_fp32_and_kept_apart(tiny_model_dir, backend, tolerance):
    fp32 = DenseEncoder(resolve_model(str(tiny_model_dir)), cache=True)
    other = DenseEncoder(resolve_model(f"{tiny_model_dir}+{backend}"), cache=True)
    assert other.backend == backend and other.spec.key.endswith(f"+{backend}")
    assert other.cache.folder != fp32.cache.folder and other.cache.folder.name.endswith(f"-{backend}")
    texts = list(dict.fromkeys(TEXTS))
    a, b = fp32.encode(texts, "document"), other.encode(texts, "document")
    assert np.abs(a - b).max() < tolerance
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)


def test_variant_names_and_errors(tiny_model_dir):
    spec = resolve_model("minilm-l6+int8")
    assert (spec.name, spec.backend, spec.key) == ("minilm-l6", "int8", "minilm-l6+int8")
    assert with_max_seq_length(spec, 64).key == "minilm-l6-L64+int8"  # one order, bench/runkey.py
    assert with_backend(resolve_model("bm25"), "onnx").key == "bm25"  # BM25 has no encoder
    assert with_search(resolve_model("minilm-l6"), "faiss").key == "minilm-l6"  # exact: same results
    assert with_search(resolve_model("minilm-l6"), "faiss-hnsw").key == "minilm-l6+hnsw"
    with pytest.raises(ValueError, match="known: torch, int8, onnx"):
        with_backend(resolve_model("minilm-l6"), "fp16")
    with pytest.raises(ValueError, match="unknown model"):
        resolve_model("nope+int8")


def unit(rng, n, dim=16):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_faiss_flat_equals_exact_and_hnsw_finds_the_best():
    rng = np.random.default_rng(3)
    queries, docs = unit(rng, 20), unit(rng, 300)
    exact_scores, exact_indices = exact_top_k(queries, docs, 10)
    flat_scores, flat_indices = faiss_top_k(queries, docs, 10, "faiss")
    np.testing.assert_array_equal(flat_indices, exact_indices)
    np.testing.assert_allclose(flat_scores, exact_scores, atol=1e-5)
    _, hnsw_indices = faiss_top_k(queries, docs, 10, "faiss-hnsw")
    assert (hnsw_indices[:, 0] == exact_indices[:, 0]).mean() >= 0.95
    run = dense_run([f"q{i}" for i in range(20)], [f"d{i}" for i in range(300)], queries, docs, 5, method="faiss")
    assert all(len(hits) == 5 for hits in run.values())


def test_chunk_rows_bound_the_score_matrix():
    assert chunk_rows(1000) == 256
    assert chunk_rows(10_000_000) * 10_000_000 * 4 <= 256 * 1024 * 1024
    assert chunk_rows(10**12) == 1


def test_encoder_flops_counts_linear_and_attention():
    from types import SimpleNamespace

    from bench.perf import encoder_flops

    config = SimpleNamespace(num_hidden_layers=2, hidden_size=4, intermediate_size=8)
    # per token 2 * 2 * (4*16 + 2*32) = 512; attention 4 * 2 * 4 * sum(len^2) = 32 * sum(len^2)
    assert encoder_flops(config, 10, 50) == 512 * 10 + 32 * 50


def test_perf_task_slices_and_pools(mirror):
    from bench.perf import perf_task

    task = perf_task(["scifact"], 300)
    assert len(task.corpus) == 300 and list(task.corpus) == sorted(task.corpus)
    assert task.qrels and all(set(j) <= set(task.corpus) for j in task.qrels.values())
    assert set(task.queries) == set(task.qrels)
    pooled = perf_task(["scifact", "nfcorpus"], 6000)
    assert len(pooled.corpus) == 6000 and sum(d.startswith("nfcorpus/") for d in pooled.corpus) == 6000 - 5183
    with pytest.raises(ValueError, match="asked for"):
        perf_task(["scifact"], 10**6)


def test_headline_keys_and_verdicts():
    from bench.perf import headline

    report = {
        "machine": {"cores": 2, "cpu_model": "x"}, "options": {"reps": 3}, "created_at": "now",
        "encode": [{"model": "me5-small", "matmul_peak_fraction": 0.5, "matmul_peak_fraction_real_tokens": 0.45}],
        "e2e": {"model": "m", "max_seq_length": 128,
                "cold": {"wall_seconds": 10.0, "peak_memory_mb": 900, "ndcg@10": 0.70001},
                "warm": {"wall_seconds": 0.5, "peak_memory_mb": 500, "ndcg@10": 0.70001},
                "beir": {"wall_seconds": 14.0, "peak_memory_mb": 1000, "ndcg@10": 0.70000},
                "mteb": {"wall_seconds": 12.0, "peak_memory_mb": 1200, "ndcg@10": 0.70000}},
        "train": {"trainers": {
            "hybrid@fp32": {"trainer": "hybrid", "precision": "fp32", "steps_per_second": 0.2,
                            "overhead_vs_plain": 0.05, "more_work_per_step": False},
            "hybrid@bf16": {"trainer": "hybrid", "precision": "bf16", "steps_per_second": 0.5,
                            "overhead_vs_plain": 0.05, "more_work_per_step": False},
            "mtl-3batch@fp32": {"trainer": "mtl-3batch", "precision": "fp32", "steps_per_second": 0.07,
                                "overhead_vs_plain": 2.0, "more_work_per_step": True}}},
    }
    summary = headline(report)
    for key in ("cold_speedup_vs_beir", "cold_speedup_vs_mteb", "peak_memory_ratio_vs_beir", "warm_speedup",
                "matmul_peak_fraction", "ndcg_at_10", "machine", "created_at"):
        assert key in summary
    assert summary["cold_speedup_vs_beir"] == 1.4 and summary["warm_speedup"] == 20.0
    assert summary["peak_memory_ratio_vs_beir"] == 0.9
    assert summary["ndcg_at_10"] == {"ours": 0.70001, "beir": 0.70000, "mteb": 0.70000}
    assert summary["ndcg_agree_within_1e-4"] is True
    targets = summary["targets"]
    assert targets["cold_speedup_vs_beir >= 1.3"] and not targets["cold_speedup_vs_mteb >= 1.3"]
    assert targets["matmul_peak_fraction >= 0.6"] is False
    assert targets["trainer_overhead <= 10% (3-batch mtl apart)"] is True
    assert summary["train_speedup_bf16"] == 2.5 and targets["train_speedup_bf16 >= 2"] is True
    # No bf16 pipelines in this report: their figures are absent, not invented.
    assert summary["cold_speedup_bf16_vs_beir"] is None and targets["cold_speedup_bf16_vs_beir >= 1.5"] is None


def test_headline_bf16_figures():
    from bench.perf import headline

    report = {
        "machine": {"cores": 2, "cpu_model": "x"}, "options": {"reps": 1}, "created_at": "now",
        "matmul": {"fp32": {"gflops": 200.0}, "bf16": {"gflops": 800.0}},
        "encode": [{"model": "me5-small", "precision": "fp32", "matmul_peak_fraction": 0.61},
                   {"model": "me5-small", "precision": "bf16", "matmul_peak_fraction": 0.4}],
        "e2e": {"model": "m", "max_seq_length": None,
                "precision": {"cold": "fp32", "cold-bf16": "bf16", "beir": "fp32", "mteb": "fp32", "st-bf16": "bf16"},
                "cold": {"wall_seconds": 100.0, "peak_memory_mb": 1100, "ndcg@10": 0.6451},
                "cold-bf16": {"wall_seconds": 50.0, "peak_memory_mb": 950, "ndcg@10": 0.6452},
                "beir": {"wall_seconds": 110.0, "peak_memory_mb": 1000, "ndcg@10": 0.6451},
                "mteb": {"wall_seconds": 70.0, "peak_memory_mb": 1200, "ndcg@10": 0.6451},
                "st-bf16": {"wall_seconds": 40.0, "peak_memory_mb": 700, "ndcg@10": 0.6420}},
    }
    summary = headline(report)
    assert summary["cold_speedup_bf16_vs_beir"] == 2.2 and summary["cold_speedup_bf16_vs_mteb"] == 1.4
    assert summary["cold_speedup_bf16_vs_st_bf16"] == 0.8
    assert summary["peak_memory_ratio_vs_beir"] == 0.95 and summary["peak_memory_run"] == "cold-bf16"
    assert summary["peak_memory_ratio_fp32_vs_beir"] == 1.1
    assert (summary["ndcg_at_10_fp32"], summary["ndcg_at_10_bf16"]) == (0.6451, 0.6452)
    assert summary["bf16_matmul_peak_fraction"] == 0.4 and summary["matmul_peak_fraction"] == 0.61
    targets = summary["targets"]
    assert targets["cold_speedup_bf16_vs_beir >= 1.5"] and not targets["cold_speedup_bf16_vs_mteb >= 1.5"]
    assert targets["cold_speedup_bf16_vs_st_bf16 >= 1"] is False
    assert targets["bf16 nDCG@10 closer to fp32 than st-bf16"] is True
    assert targets["bf16_matmul_peak_fraction >= 0.6"] is False


def test_e2e_pipelines_follow_precisions_and_skips():
    from bench.perf.options import PerfOptions
    from bench.perf.pipelines import e2e_names

    both = ("fp32", "bf16")
    assert e2e_names(PerfOptions(precisions=both)) == ["cold", "warm", "cold-bf16", "beir", "mteb", "st-bf16"]
    assert e2e_names(PerfOptions(precisions=("fp32",), skip=("mteb",))) == ["cold", "warm", "beir"]
    assert e2e_names(PerfOptions(precisions=both, skip=("st-bf16", "warm"))) == ["cold", "cold-bf16", "beir", "mteb"]


def test_default_precisions_follow_the_cpu_and_a_named_bf16_is_refused_where_it_is_not_native(monkeypatch, tmp_path):
    import bench.precision
    from bench.perf import run_perf
    from bench.perf.options import PerfOptions

    monkeypatch.setattr(bench.precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert PerfOptions().precisions == ("fp32", "bf16") and PerfOptions().precisions_left_out == {}
    monkeypatch.setattr(bench.precision, "cpu_flags", lambda: {"avx2"})  # an AVX2-only machine
    options = PerfOptions()
    assert options.precisions == ("fp32",) and "lacks avx512_bf16" in options.precisions_left_out["bf16"]
    with pytest.raises(bench.precision.PrecisionError, match="lacks avx512_bf16"):
        run_perf(PerfOptions(precisions=("fp32", "bf16"), sections=("scale",), out=tmp_path), log=lambda m: None)
    assert not list(tmp_path.iterdir())  # refused before anything was measured or written


def test_worker_pipelines_agree_on_a_tiny_task(tiny_model_dir, mirror, tmp_path, monkeypatch, capsys):
    """ours and beir through the worker, in this process (the subprocess plumbing is the same call)."""
    from bench.perf import worker as perf_worker

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    scores = {}
    for pipeline in ("ours", "beir"):
        args = [pipeline, "--model", str(tiny_model_dir), "--model-path", str(tiny_model_dir), "--datasets",
                "scifact", "--docs", "60", "--max-seq-length", "32"]
        assert perf_worker.main(args) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["docs"] == 60 and report["peak_rss_mb"] > 0
        scores[pipeline] = report["ndcg@10"]
    assert abs(scores["ours"] - scores["beir"]) < 1e-4


@pytest.mark.skipif("bf16" not in __import__("bench.precision").precision.available("cpu"), reason="no bf16 here")
def test_worker_bf16_pipelines_run_and_stay_near_fp32(tiny_model_dir, mirror, tmp_path, monkeypatch, capsys):
    from bench.perf import worker as perf_worker

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    scores = {}
    for pipeline, precision in (("ours", "fp32"), ("ours", "bf16"), ("st-bf16", "bf16")):
        args = [pipeline, "--model", str(tiny_model_dir), "--model-path", str(tiny_model_dir), "--datasets",
                "scifact", "--docs", "60", "--max-seq-length", "32", "--precision", precision]
        assert perf_worker.main(args) == 0
        scores[pipeline, precision] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ndcg@10"]
    assert abs(scores["ours", "bf16"] - scores["ours", "fp32"]) < 0.05
    assert abs(scores["st-bf16", "bf16"] - scores["ours", "fp32"]) < 0.1


def test_run_pipeline_measures_a_subprocess(tiny_model_dir, mirror, tmp_path):
    from bench.perf import Pipeline, run_pipeline

    pipeline = Pipeline("ours", str(tiny_model_dir), str(tiny_model_dir), ("scifact",), 40, 32,
                        env={"BENCH_CACHE": str(tmp_path / "c"), "BENCH_RESULTS": str(tmp_path / "r")})
    cold = run_pipeline(pipeline, tmp_path / "log")
    warm = run_pipeline(pipeline, tmp_path / "log")
    assert cold["wall_seconds"] > 0 and cold["peak_memory_mb"] > 0 and cold["encoded_texts"] > 0
    assert warm["encoded_texts"] == 0 and warm["ndcg@10"] == cold["ndcg@10"]
    assert sys.executable in pipeline.command()
