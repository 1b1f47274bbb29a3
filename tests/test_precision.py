"""bf16 encoding (bench/precision.py, DenseEncoder's precision): explicit and recorded (run id, run record),
never served fp32 vectors from the cache nor the other way round, close to fp32 on the tiny model, and refused
with a message that lists what works where the hardware lacks native bf16."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bench.precision
from bench.retrieval.dense.encode import DenseEncoder
from bench.models.registry import resolve_model, with_backend, with_precision
from bench.precision import PrecisionError, available, check_precision
from support.runner import run_beir, run_id_of, task_files

TEXTS = ["Coffee delays sleep onset in adults.", "Honey bees pollinate many crops.",
         "Solar panels make electricity from light.", "Volcano eruptions stop flights across Europe.",
         "Python programmers write tests before code."]

needs_bf16 = pytest.mark.skipif("bf16" not in available("cpu"), reason="this CPU has no native bf16")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    """A CPU without avx512_bf16 / AMX."""
    monkeypatch.setattr(bench.precision, "cpu_flags", lambda: {"sse4_2", "avx2", "avx512f"})


def test_unknown_and_fp16_precisions_are_refused_with_what_works():
    with pytest.raises(PrecisionError, match=r"unknown precision 'int4'.*use one of: fp32"):
        check_precision("int4")
    with pytest.raises(PrecisionError, match=r"fp16 is not offered.*use one of: fp32"):
        check_precision("fp16", "cpu")


def test_bf16_is_refused_on_a_cpu_without_native_support(no_bf16_cpu):
    assert available("cpu") == ["fp32"]
    with pytest.raises(PrecisionError, match=r"avx512_bf16.*slow emulation.*available on cpu: fp32"):
        check_precision("bf16", "cpu")


def test_cli_errors_are_one_line_with_status_2(data_env, tiny_model_dir, no_bf16_cpu, capsys):
    assert run_beir("--model", str(tiny_model_dir), "--precision", "bf16", "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert "avx512_bf16" in err and "Traceback" not in err
    assert run_beir("--model", str(tiny_model_dir), "--precision", "fp16") == 2
    assert "fp16 is not offered" in capsys.readouterr().err


def test_bf16_variant_has_its_own_run_id_and_refuses_other_backends(tiny_model_dir):
    spec = resolve_model(str(tiny_model_dir))
    bf16 = with_precision(spec, "bf16")
    assert (bf16.precision, bf16.key) == ("bf16", spec.key + "+bf16")
    assert resolve_model(f"{tiny_model_dir}+bf16").key == bf16.key
    assert with_precision(resolve_model("bm25"), "bf16").key == "bm25"  # no model numerics to change
    with pytest.raises(PrecisionError, match="torch backend only"):
        with_precision(with_backend(spec, "int8"), "bf16")
    with pytest.raises(PrecisionError, match="already runs in bf16"):
        with_precision(bf16, "fp32")


@needs_bf16
def test_bf16_vectors_are_fp32_unit_vectors_close_to_fp32(tiny_model_dir):
    spec = resolve_model(str(tiny_model_dir))
    fp32 = DenseEncoder(spec, cache=False, device="cpu").embed(TEXTS, "document")
    bf16 = DenseEncoder(with_precision(spec, "bf16"), cache=False, device="cpu").embed(TEXTS, "document")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-6)
    cosine = (fp32 * bf16).sum(axis=1)
    assert cosine.min() > 0.999
    assert not np.array_equal(fp32, bf16)  # bf16 really ran: its rounding shows


@needs_bf16
def test_cache_never_serves_one_precision_to_the_other(tiny_model_dir, monkeypatch):
    spec = resolve_model(str(tiny_model_dir))
    first = DenseEncoder(spec, device="cpu")
    first.encode(TEXTS, "document")
    bf16 = DenseEncoder(with_precision(spec, "bf16"), device="cpu")
    assert bf16.cache.folder != first.cache.folder
    bf16.encode(TEXTS, "document")
    assert bf16.counts["encoded"] == len(TEXTS) and bf16.counts["cached"] == 0
    again = DenseEncoder(with_precision(spec, "bf16"), device="cpu")
    vectors = again.encode(TEXTS, "document")
    assert again.counts["cached"] == len(TEXTS)  # its own precision's vectors are reused
    np.testing.assert_array_equal(vectors, bf16.encode(TEXTS, "document"))
    fp32_again = DenseEncoder(spec, device="cpu")
    fp32_vectors = fp32_again.encode(TEXTS, "document")
    assert fp32_again.counts["cached"] == len(TEXTS)
    np.testing.assert_array_equal(fp32_vectors, first.encode(TEXTS, "document"))


@needs_bf16
def test_precision_is_recorded_and_results_kept_apart(data_env, tiny_model_dir):
    assert run_beir("--model", str(tiny_model_dir), "--device", "cpu") == 0
    assert run_beir("--model", str(tiny_model_dir), "--device", "cpu", "--precision", "bf16") == 0
    key = run_id_of(tiny_model_dir)
    fp32_csv, _, fp32_record = task_files(key)
    bf16_csv, _, bf16_record = task_files(key + "+bf16")
    assert fp32_csv.is_file() and bf16_csv.is_file()
    assert json.loads(fp32_record.read_text())["precision"] == "fp32"
    record = json.loads(bf16_record.read_text())
    assert record["precision"] == record["model_precision"] == "bf16"
    assert record["embedding_cache"].endswith("-bf16")


@needs_bf16
def test_linear_weights_cast_once_give_bitwise_the_vectors_of_plain_autocast(tiny_model_dir):
    import torch

    from bench.precision import autocast

    encoder = DenseEncoder(with_precision(resolve_model(str(tiny_model_dir)), "bf16"), cache=False, device="cpu")
    transformer = encoder.model[0]
    assert {m.weight.dtype for m in transformer.modules() if isinstance(m, torch.nn.Linear)} == {torch.bfloat16}
    ours = encoder.embed(TEXTS, "document")
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(tiny_model_dir), device="cpu")  # fp32 weights, cast by autocast per call
    with torch.inference_mode(), autocast("bf16", "cpu"):
        features = plain.preprocess(TEXTS)
        tokens = plain[0](features)["token_embeddings"]
    mask = features["attention_mask"].unsqueeze(-1).float()
    pooled = (tokens.float() * mask).sum(1) / mask.sum(1)
    reference = torch.nn.functional.normalize(pooled, dim=1).numpy()
    np.testing.assert_array_equal(ours, reference)


def _write_run(folder, values: dict[str, float], per_query: dict[str, list[float]]):
    """A stored run: one task (scifact mono en-en) with tidy rows and per-query scores."""
    import pandas as pd

    folder.mkdir(parents=True)
    keys = {"dataset": "scifact", "setting": "mono", "query_lang": "en", "doc_lang": "en"}
    pd.DataFrame([{**keys, "metric": m, "value": v} for m, v in values.items()]).to_csv(
        folder / "scifact__test__mono__en-en.csv", index=False)
    pd.DataFrame([{**keys, "metric": m, "query_id": str(i), "value": v}
                  for m, vs in per_query.items() for i, v in enumerate(vs)]).to_parquet(
        folder / "scifact__test__mono__en-en.per_query.parquet")


def test_precision_proof_compares_macro_task_and_query_differences(tmp_path):
    from bench.precision_proof import compare_runs

    _write_run(tmp_path / "a", {"ndcg@10": 0.5, "recall@100": 0.9}, {"ndcg@10": [0.4, 0.6], "recall@100": [1, 0.8]})
    _write_run(tmp_path / "b", {"ndcg@10": 0.503, "recall@100": 0.9}, {"ndcg@10": [0.406, 0.6],
                                                                        "recall@100": [1, 0.8]})
    table = compare_runs(tmp_path / "a", tmp_path / "b").set_index("metric")
    assert table.loc["ndcg@10", "diff"] == pytest.approx(0.003)
    assert table.loc["ndcg@10", "max_query_abs_diff"] == pytest.approx(0.006)
    assert table.loc["ndcg@10", "queries_changed"] == 1 and table.loc["ndcg@10", "queries"] == 2
    assert not table.loc["ndcg@10", "within_bar"]  # 0.003 > 0.002
    assert table.loc["recall@100", "diff"] == 0 and table.loc["recall@100", "queries_changed"] == 0
