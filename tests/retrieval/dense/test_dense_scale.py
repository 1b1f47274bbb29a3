"""Dense retrieval at MIRACL scale (issue 17, points 2 and 3): sharded, resumable encoding to disk
(bench/retrieval/dense/shards.py), search over the memory-mapped shards (blocked exact, saved FAISS indexes:
index.py), float16 storage, the multi-process pool, and the `bench run` flags. The tiny fixture model and
corpus stand in for the real ones: shards of a few documents exercise the same code as shards of 65,536."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pytest

from bench.data.task import RetrievalTask
from bench.eval.metrics import mean_scores, per_query_scores
from bench.models.registry import resolve_model, with_search
from bench.retrieval.dense.options import DenseOptions
from bench.retrieval.dense.retriever import DenseRetriever
from bench.runkey import RunKey
from conftest import FIXTURE_CORPUS, FIXTURE_QRELS, FIXTURE_QUERIES
from support.runner import run_beir, run_id_of, task_files

SHARD = 7  # 30 fixture documents: shards of 7, 7, 7, 7, 2


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """An empty BENCH_CACHE per test: shards and indexes of one test never serve another."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class StreamingCorpus(Mapping):
    """A corpus that is not a dict (as the streaming MIRACL corpus): len(), items() / iter_chunks(n) and [id]
    only; converting it to a dict or listing its keys first is an error here."""

    def __init__(self, docs: dict):
        self._docs = docs

    def __len__(self):
        return len(self._docs)

    def __getitem__(self, key):
        return self._docs[key]

    def __iter__(self):
        return iter(self._docs)

    def keys(self):
        raise AssertionError("the corpus is read through items() / iter_chunks, not keys()")

    def iter_chunks(self, n):
        items = list(self._docs.items())
        for start in range(0, len(items), 3):  # chunks of another size than asked: the reader re-cuts them
            yield dict(items[start:start + 3])


def fixture_task(corpus=None) -> RetrievalTask:
    docs = {d["_id"]: {"title": d["title"], "text": d["text"]} for d in FIXTURE_CORPUS}
    return RetrievalTask("beir", "fixture", "test", corpus if corpus is not None else docs, dict(FIXTURE_QUERIES),
                         FIXTURE_QRELS["test"])


def scores_of(task, run) -> dict[str, float]:
    return mean_scores(per_query_scores(task.qrels, run, task.metrics), task.metrics)


def retriever(model_dir, search="exact", **options) -> DenseRetriever:
    spec = with_search(resolve_model(str(model_dir)), search)
    return DenseRetriever(spec, options=DenseOptions(**options) if options else None)


def assert_same_run(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for qid in a:
        assert list(a[qid]) == list(b[qid]), qid
        np.testing.assert_allclose(list(a[qid].values()), list(b[qid].values()), atol=atol)


# ------------------------------------------------------------------------------------------ sharded encoding


def test_sharded_scores_equal_in_memory(tiny_model_dir):
    task = fixture_task()
    memory, _ = retriever(tiny_model_dir).search(task, 10)
    sharded = retriever(tiny_model_dir, shard_size=SHARD)
    run, timings = sharded.search(fixture_task(StreamingCorpus(task.corpus)), 10)
    assert sharded.search_info["encode_shards"] == {"shards": 5, "reused": 0, "encoded": 5, "repaired": 0}
    assert {"digest_corpus", "encode_corpus", "search"} <= set(timings)
    assert_same_run(memory, run)
    assert scores_of(task, run) == pytest.approx(scores_of(task, memory), abs=1e-12)
    # The shards are float32 memory maps on disk, one per 7 documents.
    folder = sharded._store.folder
    shapes = [np.load(folder / f"shard-{i:05d}.npy", mmap_mode="r").shape for i in range(5)]
    assert shapes == [(7, 32)] * 4 + [(2, 32)]
    assert json.loads((folder / "shard-00004.ids.json").read_text()) == list(task.corpus)[28:]


def test_streamed_jsonl_corpus_goes_through_shards(tiny_model_dir, tmp_path):
    from bench.data.corpus import JsonlCorpus
    from conftest import write_jsonl

    write_jsonl(tmp_path / "corpus.jsonl", FIXTURE_CORPUS)
    streamed = JsonlCorpus([tmp_path / "corpus.jsonl"], cache=tmp_path / "corpus-index")
    expected, _ = retriever(tiny_model_dir).search(fixture_task(), 10)
    r = retriever(tiny_model_dir, shard_size=SHARD)
    run, _ = r.search(fixture_task(streamed), 10)
    assert_same_run(run, expected)
    assert r.search_info["encode_shards"]["encoded"] == 5


def test_full_ranking_pool_scores_from_shards(tiny_model_dir):
    task = fixture_task()
    ids_a, docs_a, chunks_a = retriever(tiny_model_dir).pool_scores(task, {})
    ids_b, docs_b, chunks_b = retriever(tiny_model_dir, shard_size=SHARD).pool_scores(task, {})
    assert ids_a == ids_b and docs_a == docs_b
    a = np.vstack([s.numpy() for _, s in chunks_a])
    b = np.vstack([s.numpy() for _, s in chunks_b])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_resume_reencodes_only_missing_or_truncated_shards(tiny_model_dir, capsys):
    task = fixture_task()
    first = retriever(tiny_model_dir, shard_size=SHARD)
    expected, _ = first.search(task, 10)
    folder = first._store.folder

    again = retriever(tiny_model_dir, shard_size=SHARD)
    run, _ = again.search(task, 10)
    assert again.search_info["encode_shards"] == {"shards": 5, "reused": 5, "encoded": 0, "repaired": 0}
    assert again.text_counts["cached"] == 30 + 10 and again.text_counts["encoded"] == 0  # documents + queries
    assert run == expected

    # A run killed before shard 2 was written: only it is encoded.
    (folder / "shard-00002.npy").unlink()
    resumed = retriever(tiny_model_dir, shard_size=SHARD)
    run, _ = resumed.search(task, 10)
    assert resumed.search_info["encode_shards"] == {"shards": 5, "reused": 4, "encoded": 1, "repaired": 0}
    assert_same_run(run, expected)

    # A truncated shard (a copy cut short by a crash): found by its size, encoded again, with a note.
    path = folder / "shard-00003.npy"
    path.write_bytes(path.read_bytes()[:-40])
    capsys.readouterr()
    repaired = retriever(tiny_model_dir, shard_size=SHARD)
    run, _ = repaired.search(task, 10)
    assert repaired.search_info["encode_shards"] == {"shards": 5, "reused": 4, "encoded": 1, "repaired": 1}
    assert any("shard 3" in note and "truncated" in note for note in repaired.search_info["notes"])
    assert "truncated" in capsys.readouterr().err
    assert_same_run(run, expected)
    assert np.load(path, mmap_mode="r").shape == (7, 32)


def test_other_corpus_or_shard_size_uses_other_shards(tiny_model_dir):
    task = fixture_task()
    a = retriever(tiny_model_dir, shard_size=SHARD)
    a.search(task, 10)
    smaller = dict(list(task.corpus.items())[:-1])
    b = retriever(tiny_model_dir, shard_size=SHARD)
    b.search(fixture_task(smaller), 10)
    c = retriever(tiny_model_dir, shard_size=8)
    c.search(task, 10)
    assert len({a._store.folder, b._store.folder, c._store.folder}) == 3
    assert b.search_info["encode_shards"]["encoded"] == 5 and c.search_info["encode_shards"]["encoded"] == 4


def test_no_cache_keeps_no_shards(tiny_model_dir, own_cache):
    spec = resolve_model(str(tiny_model_dir))
    r = DenseRetriever(spec, cache=False, options=DenseOptions(shard_size=SHARD))
    expected, _ = retriever(tiny_model_dir).search(fixture_task(), 10)
    run, _ = r.search(fixture_task(), 10)
    assert_same_run(run, expected)
    assert r.search_info["embedding_store"]["folder"] is None
    assert not list(own_cache.rglob("shard-*.npy"))


# ------------------------------------------------------------------------------------------ float16


def test_float16_changes_the_key_and_stays_within_1e3(tiny_model_dir):
    task = fixture_task()
    full = retriever(tiny_model_dir, shard_size=SHARD)
    run32, _ = full.search(task, 30)
    half = retriever(tiny_model_dir, shard_size=SHARD, embedding_dtype="float16")
    run16, _ = half.search(task, 30)
    assert half._store.folder != full._store.folder
    assert half._store.folder.name.endswith("-float16") and not full._store.folder.name.endswith("float32")
    assert np.load(half._store.folder / "shard-00000.npy", mmap_mode="r").dtype == np.float16
    assert half.details["embedding_dtype"] == "float16" and "embedding_dtype" not in full.details
    for qid in run32:
        assert run16[qid].keys() == run32[qid].keys()
        for doc, score in run32[qid].items():
            assert abs(run16[qid][doc] - score) <= 1e-3
    # In memory, float16 rounds the vectors the same way: the two paths agree.
    memory, _ = retriever(tiny_model_dir, embedding_dtype="float16").search(task, 30)
    for qid in run16:
        np.testing.assert_allclose(sorted(memory[qid].values()), sorted(run16[qid].values()), atol=1e-6)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown embedding dtype"):
        DenseOptions(embedding_dtype="float64")
    with pytest.raises(ValueError, match="shard-size must be a positive"):
        DenseOptions(shard_size=0)
    with pytest.raises(ValueError, match="--ivf-nlist do not apply to --search faiss-hnsw"):
        DenseOptions(ivf_nlist=4).check_search("faiss-hnsw")
    with pytest.raises(ValueError, match="--faiss-index applies to --search faiss"):
        DenseOptions(faiss_index="x.index").check_search("exact")


# ------------------------------------------------------------------------------------------ FAISS indexes


def test_saved_index_is_reloaded_and_rebuilt_when_its_parameters_change(tiny_model_dir, capsys):
    task = fixture_task()
    exact, _ = retriever(tiny_model_dir, shard_size=SHARD).search(task, 10)
    first = retriever(tiny_model_dir, "faiss-ivf", shard_size=SHARD, ivf_nlist=2, ivf_nprobe=2)
    run, _ = first.search(task, 10)
    info = first.search_info["search_index"]
    assert info["built"] and first.index_counts == {"built": 1, "loaded": 0}
    saved = json.loads(open(info["path"][:-len(".index")] + ".json").read())
    assert saved["build"] == {"method": "faiss-ivf", "metric": "ip", "nlist": 2}
    assert saved["corpus_digest"] == first.search_info["embedding_store"]["corpus_digest"]
    assert saved["model"]["fingerprint"] == first.fingerprint
    assert_same_run(run, exact)  # nprobe = nlist: every list searched, exact

    second = retriever(tiny_model_dir, "faiss-ivf", shard_size=SHARD, ivf_nlist=2, ivf_nprobe=2)
    again, _ = second.search(task, 10)
    assert second.index_counts == {"built": 0, "loaded": 1} and not second.search_info["search_index"]["built"]
    assert again == run

    capsys.readouterr()
    third = retriever(tiny_model_dir, "faiss-ivf", shard_size=SHARD, ivf_nlist=3, ivf_nprobe=3)
    third.search(task, 10)
    assert third.index_counts == {"built": 1, "loaded": 0}
    assert "other parameters" in third.search_info["search_index"]["note"] and "nlist" in capsys.readouterr().err

    # Pinned: used when it matches, an error naming the difference when it does not.
    pinned = third.search_info["search_index"]["path"]
    ok = retriever(tiny_model_dir, "faiss-ivf", shard_size=SHARD, ivf_nlist=3, faiss_index=pinned)
    ok.search(task, 10)
    assert ok.index_counts == {"built": 0, "loaded": 1}
    wrong = retriever(tiny_model_dir, "faiss-ivf", shard_size=SHARD, ivf_nlist=2, faiss_index=pinned)
    with pytest.raises(ValueError, match="another model, corpus or parameters.*nlist"):
        wrong.search(task, 10)
    other_corpus = retriever(tiny_model_dir, "faiss-ivf", shard_size=SHARD, ivf_nlist=3, faiss_index=pinned)
    with pytest.raises(ValueError, match="corpus_digest"):
        other_corpus.search(fixture_task(dict(list(task.corpus.items())[:-2])), 10)


@pytest.mark.parametrize("search,options", [("faiss", {}), ("faiss-hnsw", {"hnsw_m": 8, "hnsw_ef_search": 16}),
                                            ("faiss-ivf", {"ivf_nlist": 4, "ivf_nprobe": 1})])
def test_faiss_over_shards(tiny_model_dir, search, options):
    task = fixture_task()
    exact, _ = retriever(tiny_model_dir, shard_size=SHARD).search(task, 10)
    r = retriever(tiny_model_dir, search, shard_size=SHARD, **options)
    run, _ = r.search(task, 10)
    # IVF with few lists probed may hold fewer than k documents near a query: a shorter ranking, never a wrong id.
    assert all(1 <= len(hits) <= 10 for hits in run.values())
    assert all(set(hits) <= set(task.corpus) for hits in run.values())
    if search == "faiss":  # flat: exact
        assert_same_run(run, exact, atol=1e-5)
        assert "search_recall" not in r.search_info
    else:
        recall = r.search_info["search_recall"]
        assert 0.0 <= recall <= 1.0
        assert r.search_info["search_recall_sample"] == {"queries": 10, "of": 10, "k": 11, "seed": 0,
                                                         "reference": "exact"}
        mine = np.mean([len(set(run[q]) & set(exact[q])) / 10 for q in run])
        assert recall == pytest.approx(mine, abs=0.15)  # the sample is every query, at depth 11 not 10


def test_run_flags_record_recall_and_ivf_run_id(data_env, tiny_model_dir):
    assert run_beir("--model", str(tiny_model_dir), "--search", "faiss-ivf", "--ivf-nlist", "4", "--ivf-nprobe",
                    "2", "--shard-size", "8") == 0
    key = run_id_of(tiny_model_dir) + "+ivf"
    assert RunKey.parse(key).search == "ivf"
    record = json.loads(task_files(key)[2].read_text())
    assert 0.0 <= record["search_recall"] <= 1.0
    assert record["search_recall_sample"]["queries"] == 8
    assert record["search_index"]["build"]["nlist"] == 4 and record["search_index"]["search"] == {"nprobe": 2}
    assert record["encode_shards"]["shards"] == 4
    assert record["options"]["shard_size"] == 8 and record["options"]["ivf_nlist"] == 4
    assert record["options"]["embedding_dtype"] == "float32"
    assert record["model_search"] == "faiss-ivf"
    # HNSW keeps its suffix, flat FAISS has none.
    assert run_beir("--model", str(tiny_model_dir), "--search", "faiss-hnsw") == 0
    record = json.loads(task_files(run_id_of(tiny_model_dir) + "+hnsw")[2].read_text())
    assert 0.0 <= record["search_recall"] <= 1.0 and record["search_index"]["path"] is None
    assert resolve_model(str(tiny_model_dir)).key == with_search(resolve_model(str(tiny_model_dir)), "faiss").key


def test_a_stored_result_of_other_numerics_is_recomputed(data_env, tiny_model_dir, capsys):
    """float16 storage or other ANN parameters under the same run id are other inputs: never taken as done."""
    assert run_beir("--model", str(tiny_model_dir), "--search", "faiss-ivf", "--ivf-nlist", "4") == 0
    capsys.readouterr()
    assert run_beir("--model", str(tiny_model_dir), "--search", "faiss-ivf", "--ivf-nlist", "4") == 0
    assert "already done" in capsys.readouterr().out
    assert run_beir("--model", str(tiny_model_dir), "--search", "faiss-ivf", "--ivf-nlist", "2") == 0
    assert "recomputing the stored result: dense_store" in capsys.readouterr().out
    key = run_id_of(tiny_model_dir) + "+ivf"
    assert json.loads(task_files(key)[2].read_text())["inputs"]["dense_store"] == {"ivf_nlist": 2}
    assert run_beir("--model", str(tiny_model_dir)) == 0
    assert json.loads(task_files(run_id_of(tiny_model_dir))[2].read_text())["inputs"]["dense_store"] is None


def test_run_flags_bad_input(data_env, tiny_model_dir, capsys):
    with pytest.raises(SystemExit):
        run_beir("--model", str(tiny_model_dir), "--search", "faiss-pq")
    with pytest.raises(SystemExit):
        run_beir("--model", str(tiny_model_dir), "--embedding-dtype", "float64")
    with pytest.raises(SystemExit):
        run_beir("--model", str(tiny_model_dir), "--shard-size", "0")
    capsys.readouterr()
    assert run_beir("--model", str(tiny_model_dir), "--ivf-nprobe", "4") != 0
    assert "--ivf-nprobe do not apply to --search exact" in capsys.readouterr().err
    assert run_beir("--model", str(tiny_model_dir), "--search", "faiss", "--faiss-index", "/nonexistent.index") != 0
    assert "no such file" in capsys.readouterr().err
    assert run_beir("--model", "bm25", "--shard-size", "4") != 0
    assert "only apply to dense models" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ processes


def test_two_processes_equal_one(tiny_model_dir):  # about 20 s (two spawned workers load torch): not marked slow
    import shutil

    task = fixture_task()
    single = retriever(tiny_model_dir, shard_size=SHARD)
    one, _ = single.search(task, 10)
    shutil.rmtree(single._store.folder)  # the same key: start from no shards
    two = retriever(tiny_model_dir, shard_size=SHARD, encode_processes=2)
    run, _ = two.search(task, 10)
    assert two._store.folder == single._store.folder
    assert two.search_info["encode_shards"] == {"shards": 5, "reused": 0, "encoded": 5, "repaired": 0}
    assert two.search_info["embedding_store"]["encode_processes"] == 2
    assert_same_run(run, one, atol=1e-5)
    assert str(two.encoder.model.device) == "cpu"


def test_processes_refuse_bf16_and_other_backends(tiny_model_dir):
    from bench.models.registry import with_backend

    spec = with_backend(resolve_model(str(tiny_model_dir)), "int8")
    r = DenseRetriever(spec, options=DenseOptions(shard_size=SHARD, encode_processes=2))
    with pytest.raises(ValueError, match="fp32 torch backend only"):
        r.search(fixture_task(), 10)


def test_many_shards_keep_few_maps_open(tiny_model_dir, monkeypatch):
    import bench.retrieval.dense.shards as shards

    monkeypatch.setattr(shards, "MAX_OPEN_MAPS", 2)
    task = fixture_task()
    expected, _ = retriever(tiny_model_dir).search(task, 10)
    r = retriever(tiny_model_dir, shard_size=3)  # 10 shards
    run, _ = r.search(task, 10)
    assert_same_run(run, expected)
    docs = r._store.open()
    list(docs.blocks())
    assert len(docs._maps) == 2
    np.testing.assert_array_equal(docs.doc_ids(np.array([[0, 29, -1]])), [["coffee1", "q8", None]])
