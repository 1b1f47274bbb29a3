"""JsonlCorpus: the streamed corpus of MIRACL and big BEIR sets (a Mapping over JSONL / .jsonl.gz, an on-disk
index of ids and offsets), its errors, its memory, and that its consumers (BEIR loading, BM25) give what a
plain dict gives."""

from __future__ import annotations

import gzip
import json
import pickle
import random
import time
import tracemalloc
from pathlib import Path

import pytest

from bench.data.beir import load_beir_folder, load_corpus
from bench.data.corpus import JsonlCorpus, _indexed_gzip, iter_chunks
from bench.data.task import DataError

DOCS = [{"docid": f"{i}#{j}", "title": f"Title {i}", "text": f"Passage {j} of article {i}, caf\u00e9 \u00fc."}
        for i in range(5) for j in range(3)]
EXPECTED = {d["docid"]: {"title": d["title"], "text": d["text"]} for d in DOCS}


def write(path: Path, docs, tail: str = "") -> Path:
    body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs) + tail
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def corpus_of(files, cache, **kw) -> JsonlCorpus:
    return JsonlCorpus(files, id_field="docid", layout='{"docid", "title", "text"}', cache=cache, **kw)


@pytest.mark.parametrize("gz", [False, True])
def test_a_mapping_like_the_dict(tmp_path, cache, gz):
    ext = ".jsonl.gz" if gz else ".jsonl"
    files = [write(tmp_path / f"docs-0{ext}", DOCS[:7]), write(tmp_path / f"docs-1{ext}", DOCS[7:], tail="\n \n")]
    corpus = corpus_of(files, cache)
    assert corpus.built and len(corpus) == len(DOCS)
    assert list(corpus) == list(EXPECTED) and list(corpus.keys()) == list(EXPECTED)  # file order
    assert corpus == EXPECTED and dict(corpus.items()) == EXPECTED and list(corpus.values()) == list(EXPECTED.values())
    assert corpus["3#2"] == EXPECTED["3#2"] and corpus["0#0"] == EXPECTED["0#0"]
    assert "4#2" in corpus and "9#9" not in corpus and 7 not in corpus and corpus.get("9#9") is None
    with pytest.raises(KeyError):
        corpus["9#9"]
    chunks = list(corpus.iter_chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 4, 3] and [p for c in chunks for p in c] == list(EXPECTED.items())
    assert [len(c) for c in iter_chunks(EXPECTED, 4)] == [4, 4, 4, 3]  # the same helper over a dict
    assert pickle.loads(pickle.dumps(corpus))["2#1"] == EXPECTED["2#1"]
    if gz and corpus.gz == "decompressed":
        assert len(list((cache / "plain").glob("*.jsonl"))) == 2


def test_the_index_is_cached_by_content(tmp_path, cache):
    path = write(tmp_path / "docs.jsonl.gz", DOCS)
    first = corpus_of([path], cache)
    second = corpus_of([path], cache)
    assert first.built and not second.built and second == EXPECTED
    assert second.folder == first.folder and (second.folder / "meta.json").is_file()
    # A decompressed copy deleted from the cache is made again; another content gets another index.
    for plain in (cache / "plain").glob("*.jsonl"):
        plain.unlink()
    assert corpus_of([path], cache)["1#1"] == EXPECTED["1#1"]
    other = corpus_of([write(tmp_path / "docs.jsonl.gz", DOCS[:-1])], cache)
    assert other.built and other.folder != first.folder and len(other) == len(DOCS) - 1
    assert other.content_digest != first.content_digest


@pytest.mark.skipif(_indexed_gzip() is None, reason="indexed_gzip not installed (the decompressed copy is used)")
def test_indexed_gzip_reads_in_place(tmp_path, cache):
    corpus = corpus_of([write(tmp_path / "docs.jsonl.gz", DOCS)], cache, gz="indexed_gzip")
    assert corpus == EXPECTED and corpus["4#0"] == EXPECTED["4#0"] and not (cache / "plain").exists()


def test_duplicate_ids_name_both_lines(tmp_path, cache):
    path = write(tmp_path / "docs.jsonl", [*DOCS[:5], DOCS[2], *DOCS[5:]])
    with pytest.raises(DataError, match=r"duplicate docid '0#2': .*docs\.jsonl:3 and .*docs\.jsonl:6; ids must be "
                                        r"unique: re-download or fix the file"):
        corpus_of([path], cache)
    # Across shard files.
    files = [write(tmp_path / "docs-0.jsonl.gz", DOCS), write(tmp_path / "docs-1.jsonl.gz", [DOCS[-1]])]
    with pytest.raises(DataError, match=r"duplicate docid '4#2': .*docs-0\.jsonl\.gz:15 and .*docs-1\.jsonl\.gz:1"):
        corpus_of(files, cache)
    assert not list(cache.glob("*/meta.json"))  # nothing cached for a refused corpus


def test_a_truncated_last_line(tmp_path, cache):
    cut = json.dumps(DOCS[0])[:20]
    with pytest.raises(DataError, match=r"docs\.jsonl:15: the last line is cut short.*re-download or fix the file"):
        corpus_of([write(tmp_path / "docs.jsonl", DOCS[1:], tail=cut)], cache)
    with pytest.raises(DataError, match=r"docs\.jsonl\.gz:15: the last line is cut short"):
        corpus_of([write(tmp_path / "docs.jsonl.gz", DOCS[1:], tail=cut)], cache)
    # A gzip stream cut short (a crash while compressing, a partial download).
    data = gzip.compress("".join(json.dumps(d) + "\n" for d in DOCS * 50).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jsonl\.gz:\d+: the compressed stream ends early.*re-download or fix"):
        corpus_of([tmp_path / "cut.jsonl.gz"], cache)
    # A complete last record without its newline is fine; a bad line elsewhere keeps its own message.
    assert corpus_of([write(tmp_path / "ok.jsonl", DOCS[:-1], tail=json.dumps(DOCS[-1]))], cache) == EXPECTED
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        corpus_of([write(tmp_path / "bad.jsonl", [DOCS[0]], tail="{oops\n" + json.dumps(DOCS[1]) + "\n")], cache)
    with pytest.raises(DataError, match=r"empty\.jsonl: no documents"):
        corpus_of([write(tmp_path / "empty.jsonl", [], tail="\n")], cache)


def test_big_beir_corpus_streams_and_gives_the_same_task(beir_fixture_dir, cache, monkeypatch):
    """Above the size threshold a BEIR corpus is a JsonlCorpus; the task and BM25's run are those of the dict."""
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    plain = load_beir_folder(beir_fixture_dir)
    assert type(plain.corpus) is dict and type(load_corpus(beir_fixture_dir)) is dict
    monkeypatch.setattr("bench.data.beir.STREAM_ABOVE_BYTES", 0)
    streamed = load_beir_folder(beir_fixture_dir)
    assert isinstance(streamed.corpus, JsonlCorpus)
    assert streamed.corpus == plain.corpus and list(streamed.corpus) == list(plain.corpus)
    assert (streamed.queries, streamed.qrels, streamed.warnings) == (plain.queries, plain.qrels, plain.warnings)

    from bench.retrieval.bm25.engine import BM25

    python = BM25(language="en", backend="python", cache=cache / "bm25")
    assert python.search(streamed.corpus, streamed.queries, 10) == python.search(plain.corpus, plain.queries, 10)
    try:
        lucene = BM25(language="en", cache=cache / "bm25")
    except Exception as e:  # noqa: BLE001 - no usable Java / pyserini here
        pytest.skip(f"Lucene BM25 not usable here: {e}")
    assert lucene.search(streamed.corpus, plain.queries, 10) == lucene.search(plain.corpus, plain.queries, 10)
    assert lucene.builds == 2  # each named by its own digest: the streamed one by its file's sha256


def test_write_collection_streams_in_shards(tmp_path):
    from bench.retrieval.bm25.corpus import write_collection

    corpus = {f"d{i}": {"title": "", "text": "" if i % 5 == 0 else f"text {i}"} for i in range(23)}
    assert write_collection(corpus, tmp_path / "c", 3, chunk=4) == 18
    shards = sorted((tmp_path / "c").iterdir())
    assert [p.name for p in shards] == ["docs00.jsonl", "docs01.jsonl", "docs02.jsonl"]
    lines = [json.loads(line) for p in shards for line in p.read_text().splitlines()]
    assert [len(p.read_text().splitlines()) for p in shards] == [6, 6, 6]
    assert [r["id"] for r in lines] == [d for d in corpus if corpus[d]["text"]]
    assert write_collection(corpus, tmp_path / "one", 1) == 18 and len(list((tmp_path / "one").iterdir())) == 1
    assert list(tmp_path.glob(".*spool")) == []


# --------------------------------------------------------------------------------------------- memory

N_SYNTHETIC = 200_000
WORDS = ("river city school music history north water king church war year team people season film island "
         "language station league party").split()


def synthetic_passages(path: Path, n: int = N_SYNTHETIC, seed: int = 0) -> Path:
    """n short Wikipedia-like passages in MIRACL's layout (docid "<article>#<passage>"), gzipped."""
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40)))
            f.write(json.dumps({"docid": f"{i // 4}#{i % 4}", "title": f"Article {i // 4}", "text": text}) + "\n")
    return path


def peak_bytes(load) -> tuple[int, object]:
    tracemalloc.start()
    try:
        value = load()
        return tracemalloc.get_traced_memory()[1], value
    finally:
        tracemalloc.stop()


def test_memory_streamed_against_dict(tmp_path, cache):
    """200k passages: the dict loader holds every text; JsonlCorpus an index and one chunk. Prints both."""
    path = synthetic_passages(tmp_path / "docs-0.jsonl.gz")
    from bench.data.task import document, json_record

    def as_dict():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return {r["docid"]: document(r) for r in (json_record(line, path, i, ("docid", "text"))
                                                      for i, line in enumerate(f, 1))}

    dict_peak, plain = peak_bytes(as_dict)
    started = time.perf_counter()
    build_peak, _ = peak_bytes(lambda: corpus_of([path], cache))
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    load_peak, corpus = peak_bytes(lambda: corpus_of([path], cache))
    load_s = time.perf_counter() - started

    def walk():
        n = 0
        for chunk in corpus.iter_chunks(1000):
            n += len(chunk)
        return n

    walk_peak, count = peak_bytes(walk)
    assert count == len(corpus) == len(plain) == N_SYNTHETIC
    some = random.Random(1).sample(list(plain), 100)
    assert all(corpus[d] == plain[d] for d in some)
    print(f"\n{N_SYNTHETIC} passages: dict peak {dict_peak / 2**20:.1f} MiB; JsonlCorpus build peak "
          f"{build_peak / 2**20:.1f} MiB ({build_s:.1f} s), cached load peak {load_peak / 2**20:.2f} MiB "
          f"({load_s:.2f} s), iter_chunks(1000) pass peak {walk_peak / 2**20:.2f} MiB; index on disk "
          f"{sum(p.stat().st_size for p in corpus.folder.iterdir()) / 2**20:.1f} MiB")
    assert not corpus.built
    assert load_peak < dict_peak / 20 and walk_peak < dict_peak / 20 and build_peak < dict_peak / 2
