"""The on-disk embedding cache (bench/retrieval/dense/cache.py) and its use by DenseEncoder, the runner and the CLI: a
second encoder of the same model encodes nothing, keys separate prompts and sequence lengths, interrupted and concurrent
writes leave a readable cache, `bench cache info|clear`, and `bench run` twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bench.cli import main
from bench.retrieval.dense.cache import (META_NAME, STALE_SECONDS, EmbeddingCache, cache_key, embeddings_root,
                                         inventory, remove_stale)
from bench.retrieval.dense.encode import DenseEncoder
from bench.retrieval.dense.loading import resolved_prompt
from bench.models.registry import ModelSpec, resolve_model
from bench.paths import PROJECT_ROOT
from support.runner import run_beir, run_id_of, task_files

TEXTS = ["Coffee delays sleep onset.", "Honey bees pollinate crops.", "Solar panels make electricity.",
         "Volcano eruptions stop flights.", "Python programmers write tests."]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """An empty BENCH_CACHE per test (the session's is shared by every test)."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class CountingEncodes:
    """Wraps a DenseEncoder's embed (where the model runs) and counts the texts it is given."""

    def __init__(self, encoder, monkeypatch):
        self.texts: list[str] = []
        original = encoder.embed

        def embed(inputs, *args, **kwargs):
            self.texts.extend(inputs)
            return original(inputs, *args, **kwargs)

        monkeypatch.setattr(encoder, "embed", embed)


def encoder(model_dir, **kwargs) -> DenseEncoder:
    spec = resolve_model(str(model_dir))
    if "max_seq_length" in kwargs:
        spec = ModelSpec(spec.name, "dense", spec.description, locate=spec.locate,
                         max_seq_length=kwargs.pop("max_seq_length"), run_id=spec.run_id)
    return DenseEncoder(spec, **kwargs)


@pytest.fixture
def prompted_dir(tiny_model_dir, tmp_path):
    """The tiny model with "query: " / "passage: " prompts, as me5-small."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "prompted"
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    model.save(str(folder))
    return folder


# ------------------------------------------------------------------------------------------ encoder


def test_second_encoder_encodes_nothing_and_returns_the_same_vectors(tiny_model_dir, monkeypatch):
    first = encoder(tiny_model_dir)
    cold = first.encode(TEXTS + TEXTS[:2], "document")  # duplicates encoded once
    assert first.counts == {"encoded": 5, "cached": 0, "memo": 0}
    assert len(list(first.cache.folder.glob("*.keys"))) == 1  # one segment per encode call

    second = encoder(tiny_model_dir)  # a fresh memo, as in a new process
    assert second.cache.folder == first.cache.folder
    monkeypatch.setattr(second, "embed", lambda *a, **k: pytest.fail("the model was asked to encode"))
    warm = second.encode(TEXTS + TEXTS[:2], "document")
    assert warm.dtype == np.float32 and np.array_equal(warm, cold)
    assert second.counts == {"encoded": 0, "cached": 5, "memo": 0}
    again = second.encode(TEXTS[::-1], "document")  # now from the memo
    assert np.array_equal(again, cold[:5][::-1])
    assert second.counts == {"encoded": 0, "cached": 5, "memo": 5}
    assert len(list(first.cache.folder.glob("*.keys"))) == 1  # nothing encoded, nothing written


def test_only_missing_texts_are_encoded(tiny_model_dir, monkeypatch):
    encoder(tiny_model_dir).encode(TEXTS[:3], "document")
    second = encoder(tiny_model_dir)
    calls = CountingEncodes(second, monkeypatch)
    vectors = second.encode(TEXTS, "document")
    assert calls.texts == TEXTS[3:]
    assert second.counts == {"encoded": 2, "cached": 3, "memo": 0}
    third = encoder(tiny_model_dir)
    monkeypatch.setattr(third, "embed", lambda *a, **k: pytest.fail("the model was asked to encode"))
    assert np.array_equal(third.encode(TEXTS, "document"), vectors)
    assert len(list(third.cache.folder.glob("*.keys"))) == 2


def test_a_cut_encode_keeps_what_it_did_and_the_rest_resumes_bitwise(tiny_model_dir, monkeypatch):
    import bench.retrieval.dense.encode as encode_module

    # 200 texts of 12 lengths: several batches, each of one length band, longest first
    texts = [f"passage {i}: " + "words of varied length " * (i % 12) for i in range(200)]
    whole = encoder(tiny_model_dir, batch_size=4, cache=False).encode(texts, "document")
    monkeypatch.setattr(encode_module, "SAVE_SECONDS", 0)  # hand every batch to the cache as it is done
    cut = encoder(tiny_model_dir, batch_size=4)
    batches, forward = [], cut.forward

    def forward_then_stop(features):
        batches.append(len(features["attention_mask"]))
        if len(batches) > 3:
            raise KeyboardInterrupt
        return forward(features)

    monkeypatch.setattr(cut, "forward", forward_then_stop)
    with pytest.raises(KeyboardInterrupt):
        cut.encode(texts, "document")
    assert len(list(cut.cache.folder.glob("*.keys"))) == 3  # one segment a batch

    again = encoder(tiny_model_dir, batch_size=4)
    calls = CountingEncodes(again, monkeypatch)
    vectors = again.encode(texts, "document")
    assert again.counts["cached"] == sum(batches[:3]) and len(calls.texts) == len(texts) - sum(batches[:3])
    assert np.array_equal(vectors, whole)


def test_ctrl_c_in_an_encode_finishes_the_batch_and_caches_what_is_done(tiny_model_dir, monkeypatch):
    import os
    import signal

    from bench import interrupts

    texts = [f"passage {i}: " + "words of varied length " * (i % 12) for i in range(200)]
    whole = encoder(tiny_model_dir, batch_size=4, cache=False).encode(texts, "document")
    cut = encoder(tiny_model_dir, batch_size=4)  # SAVE_SECONDS is 2 minutes: no periodic save is due
    batches, forward = [], cut.forward

    def forward_signalled(features):
        batches.append(len(features["attention_mask"]))
        if len(batches) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the third batch
        return forward(features)

    monkeypatch.setattr(cut, "forward", forward_signalled)
    with pytest.raises(interrupts.Interrupted):
        with interrupts.handled(["run"]):
            cut.encode(texts, "document")
    assert len(batches) == 3 and len(list(cut.cache.folder.glob("*.keys"))) == 1  # one save, at the stop

    again = encoder(tiny_model_dir, batch_size=4)
    calls = CountingEncodes(again, monkeypatch)
    vectors = again.encode(texts, "document")
    assert again.counts["cached"] == sum(batches) and len(calls.texts) == len(texts) - sum(batches)
    assert np.array_equal(vectors, whole)


def test_cache_off_reads_and_writes_nothing(tiny_model_dir, own_cache, monkeypatch):
    encoder(tiny_model_dir).encode(TEXTS, "document")
    off = encoder(tiny_model_dir, cache=False)
    calls = CountingEncodes(off, monkeypatch)
    off.encode(TEXTS + ["A new text."], "document")
    assert calls.texts == TEXTS + ["A new text."] and off.cache is None
    assert sum(e.vectors for e in inventory()) == 5


def test_max_seq_length_is_part_of_the_key(tiny_model_dir, monkeypatch):
    long_text = " ".join(TEXTS * 3)
    full = encoder(tiny_model_dir)
    short = encoder(tiny_model_dir, max_seq_length=8)
    assert (full.max_seq_length, short.max_seq_length) == (128, 8)
    assert full.cache.folder != short.cache.folder and short.cache.folder.name.endswith("-L8")
    a = full.encode([long_text], "document")
    calls = CountingEncodes(short, monkeypatch)
    b = short.encode([long_text], "document")
    assert calls.texts == [long_text]  # not served from the 128-token entry
    assert not np.allclose(a, b)
    assert np.array_equal(encoder(tiny_model_dir, max_seq_length=8).encode([long_text], "document"), b)


def test_prompt_is_part_of_the_key(tiny_model_dir, monkeypatch):
    plain = encoder(tiny_model_dir)
    unprompted = plain.encode(TEXTS, "query")
    prompted = encoder(tiny_model_dir)  # same weights, same cache folder, another query prompt
    prompted.model.prompts = {**prompted.model.prompts, "query": "query: "}
    assert prompted.cache.folder == plain.cache.folder
    calls = CountingEncodes(prompted, monkeypatch)
    vectors = prompted.encode(TEXTS, "query")
    assert len(calls.texts) == 5 and prompted.counts["cached"] == 0
    assert not np.allclose(vectors, unprompted)


def test_query_and_document_keys(tiny_model_dir, prompted_dir, monkeypatch):
    # Without prompts a query and a document with the same text are the same input: one entry.
    plain = encoder(tiny_model_dir)
    assert plain.cache_keys(TEXTS, "query") == plain.cache_keys(TEXTS, "document")
    # With prompts they differ, and each is the vector of prompt + text.
    enc = encoder(prompted_dir)
    assert (enc.prompt("query"), enc.prompt("document")) == ("query: ", "passage: ")
    assert set(enc.cache_keys(TEXTS, "query")).isdisjoint(enc.cache_keys(TEXTS, "document"))
    assert enc.cache_keys(TEXTS[:1], "query") == [cache_key("query: ", TEXTS[0])]
    queries = enc.encode(TEXTS, "query")
    calls = CountingEncodes(enc, monkeypatch)
    documents = enc.encode(TEXTS, "document")
    assert len(calls.texts) == 5
    expected = enc.model.encode(["passage: " + t for t in TEXTS], normalize_embeddings=True)
    np.testing.assert_allclose(documents, expected, atol=1e-6)
    fresh = encoder(prompted_dir)
    assert np.array_equal(fresh.encode(TEXTS, "query"), queries)
    assert np.array_equal(fresh.encode(TEXTS, "document"), documents)
    assert fresh.counts == {"encoded": 0, "cached": 10, "memo": 0}


def test_resolved_prompt_follows_sentence_transformers():
    class Model:
        def __init__(self, prompts, default=None):
            self.prompts, self.default_prompt_name = prompts, default

    assert resolved_prompt(Model({"query": "q: ", "passage": "p: "}), "document") == "p: "
    assert resolved_prompt(Model({"query": "q: ", "corpus": "c: ", "passage": "p: "}), "document") == "p: "
    assert resolved_prompt(Model({"query": "", "document": ""}, default="query"), "document") == ""
    assert resolved_prompt(Model({"retrieval": "r: "}, default="retrieval"), "query") == "r: "
    assert resolved_prompt(Model({}), "query") == ""


# -------------------------------------------------------------------------------------- the store


def fake_vectors(keys: list[bytes], dim: int) -> np.ndarray:
    """A vector determined by its key, so any reader can check what it got."""
    return np.stack([np.random.default_rng(int.from_bytes(k[:8], "little")).standard_normal(dim)
                     for k in keys]).astype(np.float32)


def test_interrupted_write_leaves_a_complete_only_cache(tmp_path, monkeypatch):
    root, dim = tmp_path / "emb", 4
    keys = [cache_key("", f"text {i}") for i in range(10)]
    writer = EmbeddingCache(root, "abc", 16, dim)
    writer.put(keys[:5], fake_vectors(keys[:5], dim))

    # Killed between the two renames: the matrix is in place, its keys file is not.
    def interrupted(tmp, final):
        raise KeyboardInterrupt

    monkeypatch.setattr(EmbeddingCache, "_rename_keys", staticmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        writer.put(keys[5:], fake_vectors(keys[5:], dim))
    monkeypatch.undo()
    # Killed while writing: only a torn temp file.
    (writer.folder / ".123-1-x.npy.tmp").write_bytes(b"\x93NUMPY torn")
    (writer.folder / ".123-1-x.keys.tmp").write_bytes(keys[0][:7])
    assert len(list(writer.folder.glob("*.npy"))) == 2 and len(list(writer.folder.glob("*.keys"))) == 1

    reader = EmbeddingCache(root, "abc", 16, dim)
    assert len(reader) == 5
    found = reader.get(keys)
    assert set(found) == set(keys[:5])
    assert all(np.array_equal(found[k], v) for k, v in zip(keys[:5], fake_vectors(keys[:5], dim)))

    # A later write removes the debris once it is an hour old, and leaves recent debris alone.
    assert remove_stale(writer.folder) == 0
    old = os.path.getmtime(writer.folder / META_NAME) - STALE_SECONDS - 10
    for path in writer.folder.iterdir():
        os.utime(path, (old, old))
    EmbeddingCache(root, "abc", 16, dim).put(keys[5:], fake_vectors(keys[5:], dim))
    names = sorted(p.name for p in writer.folder.iterdir())
    assert not [n for n in names if n.endswith(".tmp")]
    assert len([n for n in names if n.endswith(".npy")]) == len([n for n in names if n.endswith(".keys")]) == 2
    assert set(EmbeddingCache(root, "abc", 16, dim).get(keys)) == set(keys)


def test_damaged_segments_are_skipped(tmp_path, caplog):
    root, dim = tmp_path / "emb", 4
    keys = [cache_key("", f"text {i}") for i in range(6)]
    cache = EmbeddingCache(root, "abc", 16, dim)
    cache.put(keys[:3], fake_vectors(keys[:3], dim))
    (cache.folder / "0-bad.npy").write_bytes(b"not a numpy file")
    (cache.folder / "0-bad.keys").write_bytes(b"".join(keys[3:]))
    np.save(cache.folder / "1-short.npy", fake_vectors(keys[3:], dim))
    (cache.folder / "1-short.keys").write_bytes(b"".join(keys[3:5]))  # 2 keys for 3 rows
    np.save(cache.folder / "2-dim.npy", fake_vectors(keys[3:], dim + 1))
    (cache.folder / "2-dim.keys").write_bytes(b"".join(keys[3:]))
    found = EmbeddingCache(root, "abc", 16, dim).get(keys)
    assert set(found) == set(keys[:3])
    assert caplog.text.count("skipping segment") == 3


def test_segment_removed_after_indexing_is_encoded_again(tmp_path):
    root, dim = tmp_path / "emb", 4
    keys = [cache_key("", f"text {i}") for i in range(3)]
    writer = EmbeddingCache(root, "abc", 16, dim)
    writer.put(keys, fake_vectors(keys, dim))
    reader = EmbeddingCache(root, "abc", 16, dim)
    assert len(reader) == 3
    for path in writer.folder.glob("*.npy"):
        path.unlink()
    reader._open.clear()  # as if its memory map had been evicted
    assert reader.get(keys) == {}


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from bench.retrieval.dense.cache import EmbeddingCache, cache_key

    root, who = sys.argv[1], int(sys.argv[2])
    cache = EmbeddingCache(root, "concurrent", 32, 8)
    for start in range(0, 200, 10):  # both writers cover keys 0..199 (in opposite orders) plus their own
        block = range(start, start + 10) if who == 0 else range(190 - start, 200 - start)
        keys = [cache_key("p", f"shared {i}") for i in block] + [cache_key("p", f"own {who} {start}")]
        vectors = np.stack([np.random.default_rng(int.from_bytes(k[:8], "little")).standard_normal(8)
                            for k in keys]).astype(np.float32)
        cache.put(keys, vectors)
        cache.get(keys)  # read while the other process writes
""")


def test_two_processes_writing_at_once(tmp_path):
    root = tmp_path / "emb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(who)], env=env,
                                stderr=subprocess.PIPE, text=True) for who in (0, 1)]
    for process in writers:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    keys = ([cache_key("p", f"shared {i}") for i in range(200)] +
            [cache_key("p", f"own {who} {start}") for who in (0, 1) for start in range(0, 200, 10)])
    reader = EmbeddingCache(root, "concurrent", 32, 8)
    found = reader.get(keys)
    assert set(found) == set(keys)
    expected = fake_vectors(keys, 8)
    assert all(np.array_equal(found[k], v) for k, v in zip(keys, expected))
    folder = reader.folder
    assert len(list(folder.glob("*.keys"))) == len(list(folder.glob("*.npy"))) == 40
    assert not list(folder.glob(".*"))
    assert sum(e.vectors for e in inventory(root)) == 2 * 20 * 11  # duplicates kept, harmless


def test_threads_writing_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    root, dim = tmp_path / "emb", 4
    keys = [cache_key("", f"text {i}") for i in range(100)]

    def write(who: int) -> None:
        cache = EmbeddingCache(root, "abc", 16, dim)
        for start in range(who * 5, 100, 10):
            cache.put(keys[start:start + 10], fake_vectors(keys[start:start + 10], dim))
            cache.get(keys)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(write, (0, 1)))
    found = EmbeddingCache(root, "abc", 16, dim).get(keys)
    assert set(found) == set(keys)
    assert all(np.array_equal(found[k], v) for k, v in zip(keys, fake_vectors(keys, dim)))


def test_put_checks_shapes_and_survives_a_readonly_folder(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path / "emb", "abc", 16, 4)
    with pytest.raises(ValueError):
        cache.put([cache_key("", "a")], np.zeros((1, 5), dtype=np.float32))
    assert cache.put([], np.zeros((0, 4), dtype=np.float32)) is None
    (tmp_path / "emb").write_text("a file where the folder should be")
    assert cache.put([cache_key("", "a")], np.zeros((1, 4), dtype=np.float32)) is None
    assert "could not write" in caplog.text


# ------------------------------------------------------------------------------------------- CLI


def test_cache_info_and_clear(tiny_model_dir, prompted_dir, capsys):
    encoder(tiny_model_dir).encode(TEXTS, "document")
    encoder(tiny_model_dir, max_seq_length=8).encode(TEXTS[:2], "query")
    encoder(prompted_dir).encode(TEXTS, "query")
    capsys.readouterr()

    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(embeddings_root()) in out
    tiny, prompted = run_id_of(tiny_model_dir), run_id_of(prompted_dir)
    rows = [line.split() for line in out.splitlines()[2:]]
    lines = {row[0]: row for row in rows}
    # A cut model is labelled by its run key (as `run --max-seq-length 8` names it), each length in its folder.
    assert [row[1].rsplit("-", 1)[1] for row in rows if row[0] == tiny] == ["L128"]
    assert [row[1].rsplit("-", 1)[1] for row in rows if row[0] == f"{tiny}-L8"] == ["L8"]
    assert lines[prompted][2:4] == ["1", "5"]
    assert lines["total"][1:3] == ["3", "12"]
    assert lines["total"][3] == f"{sum(e.bytes for e in inventory()) / 2**20:.2f}"
    assert sum(e.bytes for e in inventory()) > 12 * 32 * 4

    assert main(["cache", "info", "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert prompted not in out and out.count(tiny) == 2

    assert main(["cache", "clear", "--model", "no-such-model"]) == 2
    assert "cached models:" in capsys.readouterr().err

    before = encoder(tiny_model_dir)
    before.encode(["An indexed text."], "document")  # indexes the segments that the clear will remove
    assert main(["cache", "clear", "--model", prompted]) == 0
    assert "MB freed" in capsys.readouterr().out
    assert {e.label for e in inventory()} == {tiny, f"{tiny}-L8"}

    assert main(["cache", "clear"]) == 0
    assert "2 cache folder(s) of all models" in capsys.readouterr().out
    assert inventory() == []
    assert main(["cache"]) == 0
    assert "empty" in capsys.readouterr().out
    # An encoder made before the clear starts over instead of failing.
    assert before.encode(TEXTS[:2], "query").shape == (2, 32)
    assert before.counts["encoded"] == 1 + 2
    assert sum(e.vectors for e in inventory()) == 2


def test_run_twice_encodes_nothing_the_second_time(data_env, tiny_model_dir, capsys):
    assert run_beir("--model", str(tiny_model_dir)) == 0
    csv_path, _, record_path = task_files(run_id_of(tiny_model_dir))
    first, first_scores = json.loads(record_path.read_text()), csv_path.read_text()
    assert (first["encoded_texts"], first["cached_texts"], first["memo_texts"]) == (8 + 30, 0, 0)
    assert first["embedding_cache"].startswith(str(embeddings_root()))

    # Another experiment reads every vector from the cache ...
    assert run_beir("--model", str(tiny_model_dir), "--experiment", "again") == 0
    again_csv, _, again_record = task_files(run_id_of(tiny_model_dir), "again")
    second = json.loads(again_record.read_text())
    assert (second["encoded_texts"], second["cached_texts"]) == (0, 38)
    assert second["docs_per_second"] is None
    # (experiment first; created_at, sha last)
    strip = lambda text: [line.split(",", 1)[1].rsplit(",", 3)[0] for line in text.splitlines()]  # noqa: E731
    assert strip(again_csv.read_text()) == strip(first_scores)

    # ... and --force does not (issue 13: a damaged cache must not survive a forced re-run).
    assert run_beir("--model", str(tiny_model_dir), "--force") == 0
    third = json.loads(record_path.read_text())
    assert (third["encoded_texts"], third["cached_texts"], third["embedding_cache"]) == (38, 0, None)
    assert sum(e.segments for e in inventory()) == 2  # queries and documents of the first run
    capsys.readouterr()
