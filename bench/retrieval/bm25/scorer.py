"""The pure-Python engine (`backend` "fallback:word-bigram"), Lucene's BM25 exactly: idf = log(1 + (N - df
+ 0.5) / (df + 0.5)), tf / (tf + k1 (1 - b + b dl / avgdl)), query-term frequency as a weight, and document
lengths rounded as Lucene stores them (lucene.py). It agrees with Lucene on the same tokens
(tests/test_bm25.py) up to Anserini rounding its scores to 4 decimals, which Python does not. It holds a
terms x documents sparse matrix in memory: fine to about a million documents; beyond that, pass
`backend="pyserini"`, which indexes the same tokens with Lucene (`-pretokenized`, WhitespaceAnalyzer).

It also gives the full-pool scores of BM25.pool_score_chunks (engine.py), for LAReQA's mAP over the whole
candidate pool, whatever the backend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from tqdm.auto import tqdm

from bench.retrieval.bm25.corpus import QUERY_CHUNK, Corpus, Run, document_contents, is_indexable, query_chunks
from bench.retrieval.bm25.lucene import FieldStats, lucene_idf, lucene_length
from bench.retrieval.bm25.tokenizer import word_bigram_tokens


# Scores of one query chunk against every document are held at once by the Python engine.
PYTHON_CHUNK_CELLS = 20_000_000


def top_hits(doc_ids: list[str], doc_rank: np.ndarray, columns: np.ndarray, scores: np.ndarray,
             k: int) -> dict[str, float]:
    """The k best (doc id, score), score descending then doc id ascending, as Anserini breaks ties."""
    if len(scores) > k:
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= threshold
        columns, scores = columns[keep], scores[keep]
    order = np.lexsort((doc_rank[columns], -scores))[:k]
    return {doc_ids[c]: float(s) for c, s in zip(columns[order], scores[order])}


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
