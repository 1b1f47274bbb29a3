"""The word-bigram tokenizer, for languages without a working Lucene analyzer (th, vi) and for pools mixing
languages (languages.py says why): NFKC, casefold, runs of letters/marks/digits; Greek words lose their
accents (stress moves with inflection); runs of Thai, Lao, Khmer, Myanmar, Chinese, Japanese kana and Hangul
become overlapping bigrams of grapheme clusters (a base character with its combining marks).

(Named tokenizer, not tokenize, so that it never stands in for the standard library's tokenize module.)"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache


TOKENIZER = "word-bigram"

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
