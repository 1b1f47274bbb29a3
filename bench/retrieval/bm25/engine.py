"""The BM25 engine: Lucene BM25 through pyserini 1.6.0 (Anserini 1.7.1) where a working Lucene analyzer
exists, the exact pure-Python BM25 (scorer.py) where not (Thai here) and for Vietnamese and mixed pools.

Lucene path (`backend` "pyserini:<AnalyzerClass>"): each corpus is indexed as index.py says and searched with
LuceneSearcher, bag-of-words queries, BM25(k1, b). On SciFact this reproduces Anserini's published regression
(index of 838,128 terms; nDCG@10 0.6789 is the published figure).

Full-pool scores (`BM25.pool_score_chunks`, for LAReQA's mAP over the whole candidate pool): the pure-Python
engine scores every query against every document, whatever the backend, on the tokens search() would use:
word-bigram tokens, or the language's Lucene analyzer run in the JVM (many texts per call: java_token_lists).
For the analyzers Anserini runs while indexing, document lengths, N and avgdl are read from an in-memory
Lucene index of the pool (lucene_field_stats): Lucene counts empty tokens that AnalyzerUtils drops. The
scores agree with a pyserini search as deep as the pool (tests/test_bm25.py), which would instead return
every hit through JNI: 170M of them for the 11 XQuAD-R multilingual tasks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bench.machine import usable_cores
from bench.retrieval.bm25.analyzers import analyzer_failure, java_token_lists, java_tokens, lucene_analyzer
from bench.retrieval.bm25.corpus import (QUERY_CHUNK, Corpus, Run, corpus_digest, document_contents, is_indexable,
                                         query_chunks)
from bench.retrieval.bm25.index import INDEX_FORMAT, build_index, default_cache, index_folder
from bench.retrieval.bm25.jvm import java_class_name, pyserini_version, start_jvm
from bench.retrieval.bm25.languages import LUCENE_LANGUAGES, LUCENE_ONLY_ANALYZERS, normalized_language
from bench.retrieval.bm25.lucene import FieldStats, lucene_field_stats
from bench.retrieval.bm25.scorer import TermIndex, python_run, term_index
from bench.retrieval.bm25.tokenizer import TOKENIZER, word_bigram_tokens

log = logging.getLogger(__name__)

BACKENDS = ("auto", "pyserini", "python")


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
        folder = index_folder(self.cache, corpus, self.language, self.analyzer)
        if not (folder / "meta.json").is_file():
            start_jvm()
            self.timings["index"] = build_index(corpus, folder, self.language, self.analyzer, self.threads,
                                                self._index_tokens(), self.backend)
            self.builds += 1
        self.last_index = folder
        return folder / "index"

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
