"""End to end, in-process (`bench.cli.main`): the beir suite on the fixture folder with the tiny model (and
BM25 when its module is there), checked against an independent computation and beir's own pipeline."""

from __future__ import annotations

import json
import os
import re
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
import pytrec_eval

from bench.cli import main
from bench.data.beir import load_beir_folder
from bench.digest import folder_fingerprint
from bench.eval.runner import run_models
from bench.models.registry import resolve_model
from bench.paths import results_root
from bench.results import TIDY_COLUMNS
from support.runner import run_beir, run_id_of, task_files

# DESIGN.md, "Tidy results", in its order.
DESIGN_COLUMNS = ["experiment", "run_id", "model", "base_model", "trainer", "alpha", "seed", "suite", "dataset",
                  "split", "setting", "query_lang", "doc_lang", "metric", "value", "n_queries", "bench_version",
                  "git_sha", "created_at"]
METRICS = ["ndcg@10", "recall@100", "map@100", "mrr@10"]










def independent_scores(model_dir, task, drop_identical: bool = True) -> dict[str, float]:
    """sentence-transformers encode + numpy brute force + pytrec_eval, with nothing from bench but the data."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    query_ids, doc_ids = list(task.queries), list(task.corpus)
    q = model.encode([task.queries[x] for x in query_ids], normalize_embeddings=True, convert_to_numpy=True)
    d = model.encode([(task.corpus[x]["title"] + " " + task.corpus[x]["text"]).strip() for x in doc_ids],
                     normalize_embeddings=True, convert_to_numpy=True)
    scores = q.astype(np.float64) @ d.astype(np.float64).T
    run = {qid: {doc_ids[j]: float(scores[i, j]) for j in range(len(doc_ids))
                 if not (drop_identical and doc_ids[j] == qid)} for i, qid in enumerate(query_ids)}
    return reference_means(task.qrels, run)


def reference_means(qrels, run) -> dict[str, float]:
    """The four BEIR metrics of a run: pytrec_eval for nDCG@10, Recall@100, MAP@100; MRR@10 by hand."""
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"})
    per_query = evaluator.evaluate(run)
    mrr = []
    for qid, hits in run.items():
        ranking = sorted(hits, key=lambda doc: (hits[doc], doc), reverse=True)[:10]
        first = next((r for r, doc in enumerate(ranking, 1) if qrels[qid].get(doc, 0) >= 1), None)
        mrr.append(1 / first if first else 0.0)
    n = len(per_query)
    return {"ndcg@10": sum(v["ndcg_cut_10"] for v in per_query.values()) / n,
            "recall@100": sum(v["recall_100"] for v in per_query.values()) / n,
            "map@100": sum(v["map_cut_100"] for v in per_query.values()) / n,
            "mrr@10": sum(mrr) / len(mrr)}


def test_run_tiny_model_end_to_end(data_env, tiny_model_dir, capsys):
    assert run_beir("--model", str(tiny_model_dir)) == 0
    out = capsys.readouterr().out
    run_id = run_id_of(tiny_model_dir)
    assert run_id.startswith("tiny-bert@")
    assert f"{run_id}: beir/scifact__test__mono__en-en (8 queries, 30 docs)" in out
    csv_path, parquet_path, record_path = task_files(run_id)

    # Tidy CSV: exactly DESIGN.md's columns, in order, and one row per metric.
    assert TIDY_COLUMNS == DESIGN_COLUMNS
    rows = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert list(rows.columns) == DESIGN_COLUMNS
    assert list(rows["metric"]) == METRICS
    first = rows.iloc[0]
    assert (first["experiment"], first["run_id"], first["model"], first["suite"], first["dataset"], first["split"],
            first["setting"], first["query_lang"], first["doc_lang"]) == (
        "beir-baselines", run_id, "tiny-bert", "beir", "scifact", "test", "mono", "en", "en")
    assert (rows["n_queries"] == 8).all() and (rows["trainer"] == "none").all()
    assert rows["alpha"].isna().all() and rows["seed"].isna().all()
    assert (rows["bench_version"] == "0.1.0").all()
    values = dict(zip(rows["metric"], rows["value"]))

    # Per-query parquet: one row per (query, metric); its means are the CSV's values.
    per_query = pd.read_parquet(parquet_path)
    assert list(per_query.columns) == ["run_id", "dataset", "setting", "query_lang", "doc_lang", "query_id",
                                       "metric", "value"]
    assert len(per_query) == 8 * 4
    assert not per_query.duplicated(["query_id", "metric"]).any()
    assert set(per_query["query_id"]) == {f"q{i}" for i in range(1, 9)}
    means = per_query.groupby("metric")["value"].mean()
    for metric in METRICS:
        assert means[metric] == pytest.approx(values[metric], abs=1e-12)

    # Run record.
    record = json.loads(record_path.read_text())
    assert record["fingerprint"] == folder_fingerprint(tiny_model_dir)
    assert len(record["fingerprint"]) == 16
    assert set(record["seconds"]) >= {"encode_queries", "encode_corpus", "search", "evaluate", "load_model"}
    assert all(isinstance(s, (int, float)) and s >= 0 for s in record["seconds"].values())
    assert record["peak_memory_mb"] > 50
    for lib in ("torch", "sentence-transformers", "transformers", "pytrec-eval-terrier", "numpy", "beir"):
        assert record["libraries"][lib] == version(lib)
    assert (record["model"], record["n_docs"], record["n_queries"], record["warnings"]) == ("tiny-bert", 30, 8, [])
    assert record["model_max_seq_length"] == 128

    # No temp files left by the atomic writes.
    assert not [p for p in results_root().rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]

    # The numbers equal an independent computation, and beir's own pipeline.
    task = load_beir_folder(data_env)
    expected = independent_scores(tiny_model_dir, task)
    for metric in METRICS:
        assert values[metric] == pytest.approx(expected[metric], abs=1e-4), metric
    # The document "q8" is dropped from query q8's ranking: keeping it gives other numbers.
    kept = independent_scores(tiny_model_dir, task, drop_identical=False)
    assert abs(kept["ndcg@10"] - expected["ndcg@10"]) > 1e-3
    # The random model still finds signal in the shared words (chance nDCG@10 would be far lower).
    assert values["ndcg@10"] > 0.3

    from bench.eval.crosscheck import beir_scores

    beir = beir_scores(str(tiny_model_dir), task, None, None, None)
    assert values["ndcg@10"] == pytest.approx(beir["ndcg@10"], abs=1e-4)
    assert values["recall@100"] == pytest.approx(beir["recall@100"], abs=1e-4)


def test_second_run_skips_and_force_recomputes(data_env, tiny_model_dir, capsys):
    assert run_beir("--model", str(tiny_model_dir)) == 0
    csv_path, parquet_path, record_path = task_files(run_id_of(tiny_model_dir))
    first = pd.read_csv(csv_path)
    past = 1_000_000_000_000_000_000  # 2001, in ns: any rewrite moves it
    for path in (csv_path, parquet_path, record_path):
        os.utime(path, ns=(past, past))
    capsys.readouterr()

    assert run_beir("--model", str(tiny_model_dir)) == 0
    out = capsys.readouterr().out
    assert f"{run_id_of(tiny_model_dir)}: 1 task(s) already done in" in out and "--force to redo" in out
    assert "(8 queries, 30 docs)" not in out
    assert all(p.stat().st_mtime_ns == past for p in (csv_path, parquet_path, record_path))

    assert run_beir("--model", str(tiny_model_dir), "--force") == 0
    out = capsys.readouterr().out
    assert f"{run_id_of(tiny_model_dir)}: beir/scifact__test__mono__en-en (8 queries, 30 docs)" in out
    assert "already done" not in out
    assert all(p.stat().st_mtime_ns != past for p in (csv_path, parquet_path, record_path))
    again = pd.read_csv(csv_path)
    # Recomputed, same numbers (deterministic model), one row per metric still.
    assert list(again["metric"]) == METRICS
    np.testing.assert_allclose(again["value"], first["value"], atol=1e-6)
    assert not [p for p in results_root().rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_experiment_option(data_env, tiny_model_dir):
    assert run_beir("--model", str(tiny_model_dir), "--experiment", "my-exp") == 0
    assert all(p.is_file() for p in task_files(run_id_of(tiny_model_dir), "my-exp"))
    assert not (results_root() / "beir-baselines").exists()


def test_run_models_returns_only_the_asked_split(data_env, tiny_model_dir):
    test_task = load_beir_folder(data_env, "test", name="scifact")
    train_task = load_beir_folder(data_env, "train", name="scifact")
    spec = resolve_model(str(tiny_model_dir))
    run_models([spec], [test_task], "splits", log=lambda *_: None)
    rows = run_models([spec], [train_task], "splits", log=lambda *_: None)
    assert set(rows["split"]) == {"train"}
    assert len(rows) == 4


def test_same_folder_name_different_model_is_not_skipped(data_env, tiny_model_dir, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    other = tmp_path / "other" / tiny_model_dir.name
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    with __import__("torch").no_grad():
        for p in model.parameters():
            p.mul_(-1.0)  # different weights, same architecture and tokenizer
    model.save(str(other))
    assert folder_fingerprint(other) != folder_fingerprint(tiny_model_dir)

    assert run_beir("--model", str(tiny_model_dir)) == 0
    assert run_beir("--model", str(other)) == 0
    assert "already done" not in capsys.readouterr().out


def test_bm25_end_to_end(data_env, capsys):
    bm25_module = pytest.importorskip("bench.retrieval.bm25.engine")
    task = load_beir_folder(data_env)
    try:
        bm25 = bm25_module.BM25(k1=0.9, b=0.4, language="en")
    except Exception as e:  # noqa: BLE001 - no usable Java / pyserini here
        pytest.skip(f"BM25 not usable here: {e}")
    expected_run = bm25.search(task.corpus, task.queries, 1001)
    assert "q8" in expected_run["q8"]  # BM25 finds the query's own document: the runner must drop it

    assert run_beir("--model", "bm25") == 0
    assert "bm25: beir/scifact__test__mono__en-en (8 queries, 30 docs)" in capsys.readouterr().out
    csv_path, parquet_path, record_path = task_files("bm25")
    rows = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert list(rows.columns) == DESIGN_COLUMNS and list(rows["metric"]) == METRICS
    values = dict(zip(rows["metric"], rows["value"]))
    assert len(pd.read_parquet(parquet_path)) == 32
    record = json.loads(record_path.read_text())
    assert record["fingerprint"].startswith("bm25") and record["model_k1"] == 0.9 and record["model_b"] == 0.4

    # Independent scoring of BM25's own run (identical ids dropped by hand, 1000 deep).
    run = {q: dict(list((d, sc) for d, sc in hits.items() if d != q)[:1000]) for q, hits in expected_run.items()}
    expected = reference_means(task.qrels, run)
    for metric in METRICS:
        assert values[metric] == pytest.approx(expected[metric], abs=1e-4), metric
    # Lexical overlap is what the fixture is built on: BM25 ranks well, and keeping q8's own document
    # (ranked first for q8) would have cost it.
    assert values["ndcg@10"] > 0.8 and values["recall@100"] == 1.0
    kept = reference_means(task.qrels, expected_run)
    assert kept["mrr@10"] < expected["mrr@10"] - 1e-3


# ------------------------------------------------------------------------------------ result store


def _git(repo, *args):
    import subprocess

    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def toy_repo(tmp_path, monkeypatch):
    """A throwaway git repository standing in for the project root (bench.results.git_sha reads PROJECT_ROOT)."""
    import bench.results

    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "__init__.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    monkeypatch.setattr(bench.results, "PROJECT_ROOT", repo)
    return repo


def test_git_sha_clean_and_modified(toy_repo):
    from bench.results import git_sha

    clean = git_sha()
    assert re.fullmatch(r"[0-9a-f]{12}", clean)
    (toy_repo / "bench" / "__init__.py").write_text("x = 2\n")
    assert git_sha() == clean + "+dirty"


def test_git_sha_marks_untracked_bench_modules(toy_repo):
    from bench.results import git_sha

    clean = git_sha()
    (toy_repo / "bench" / "new_module.py").write_text("y = 1\n")
    assert git_sha() == clean + "+dirty"


def test_result_files_follow_the_umask(tmp_path):
    from bench.results import atomic_write

    umask = os.umask(0)
    os.umask(umask)
    target = tmp_path / "out.csv"
    atomic_write(target, lambda p: p.write_text("a,b\n"))
    assert target.read_text() == "a,b\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_show_prints_the_stored_table_and_timings(data_env, tiny_model_dir, capsys):
    assert run_beir("--model", str(tiny_model_dir)) == 0
    stored = pd.read_csv(task_files(run_id_of(tiny_model_dir))[0])
    capsys.readouterr()
    assert main(["show", "beir-baselines", "--timings"]) == 0
    out = capsys.readouterr().out
    ndcg = float(stored.set_index("metric").loc["ndcg@10", "value"])
    assert f"{ndcg:.4f}" in out and "encode_corpus" in out and "peak_memory_mb" in out
    assert main(["show", "no-such-experiment"]) == 2


def test_run_records_keep_the_options_the_user_set(data_env, tiny_model_dir, capsys):
    assert run_beir("--model", str(tiny_model_dir), "--k", "150", "--batch-size", "4", "--max-seq-length", "64",
                    "--no-cache", "--query-prompt", "q: ") == 0
    record = json.loads(next(results_root().rglob("*.record.json")).read_text())
    assert {k: record["options"][k] for k in ("k", "batch_size", "max_seq_length", "cache", "query_prompt",
                                              "precision", "search")} == {
        "k": 150, "batch_size": 4, "max_seq_length": 64, "cache": False, "query_prompt": "q: ", "precision": "fp32",
        "search": "exact"}
    capsys.readouterr()
    assert main(["show", "beir-baselines", "--options"]) == 0
    out = capsys.readouterr().out
    assert "run options" in out and "q: " in out and "150" in out


def test_topk_ranking_is_saved_as_a_trec_run_file(data_env, tiny_model_dir):
    import gzip

    assert run_beir("--model", str(tiny_model_dir)) == 0
    csv_path = task_files(run_id_of(tiny_model_dir))[0]
    trec_path = csv_path.with_name(csv_path.name.removesuffix(".csv") + ".trec.gz")
    stored = dict(pd.read_csv(csv_path)[["metric", "value"]].values)

    # Plain Python: six columns, Q0, ranks from 1 in order of descending score (ties by doc id), the run id as tag.
    with gzip.open(trec_path, "rt") as lines:
        rows = [line.split() for line in lines]
    assert rows and all(len(r) == 6 and r[1] == "Q0" and r[5] == run_id_of(tiny_model_dir) for r in rows)
    run: dict[str, list[tuple[int, float, str]]] = {}
    for qid, _, doc, rank, score, _ in rows:
        run.setdefault(qid, []).append((int(rank), float(score), doc))
    assert set(run) == {f"q{i}" for i in range(1, 9)}
    for qid, hits in run.items():
        assert [rank for rank, _, _ in hits] == list(range(1, len(hits) + 1))
        assert hits == sorted(hits, key=lambda hit: (-hit[1], hit[2]))
        assert qid not in {doc for _, _, doc in hits}  # the identical id is dropped, as in the scores

    # pytrec_eval reads it back to the stored nDCG@10.
    task = load_beir_folder(data_env)
    parsed = {qid: {doc: score for _, score, doc in hits} for qid, hits in run.items()}
    per_query = pytrec_eval.RelevanceEvaluator(task.qrels, {"ndcg_cut.10"}).evaluate(parsed)
    ndcg = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
    assert ndcg == pytest.approx(stored["ndcg@10"], abs=1e-12)
    from bench.results import read_trec
    assert read_trec(trec_path) == parsed


def test_crosscheck_command_prints_and_writes_the_report(data_env, tiny_model_dir, capsys):
    assert main(["crosscheck", "--model", str(tiny_model_dir), "--tools", "beir"]) == 0
    out = capsys.readouterr().out
    assert "ndcg@10" in out and "max |diff|" in out
    report = json.loads(next((results_root() / "beir-baselines" / "crosscheck").glob("*.json")).read_text())
    assert set(report["scores"]) == {"bench", "beir"}
    assert report["max_abs_difference"]["ndcg@10"] < 1e-5
    assert main(["crosscheck", "--model", "bm25"]) == 2  # a dense-only comparison
