"""Lucene's BM25 arithmetic, for the pure-Python engine to score exactly as Lucene does: document lengths
rounded as Lucene stores them (SmallFloat.intToByte4, exact below 24 tokens), Lucene's idf, and the lengths
and totals read back from an in-memory Lucene index where Anserini's analyzer counts tokens the Python side
does not see (lucene_field_stats)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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
