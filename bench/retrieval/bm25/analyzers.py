"""Lucene analyzers run in the JVM: the analyzer of a language (languages.py says which), its tokens for one
text or for many texts in a few JVM calls, and the probe that finds an analyzer that cannot run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.retrieval.bm25.jvm import java_error_message
from bench.retrieval.bm25.languages import ANSERINI_MAP_LANGUAGES, LUCENE_ONLY_ANALYZERS, WHITESPACE_LANGUAGES


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
