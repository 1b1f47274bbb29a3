"""The Lucene index cache: one index per corpus content, language and analyzer under $BENCH_CACHE/bm25 (or
~/.cache/bench/bm25), built the way pyserini's BEIR "flat" indexes are (one field `contents` = title + " " +
text, JsonCollection, DefaultLuceneDocumentGenerator, the language's Anserini analyzer, or tokens given here
and indexed -pretokenized). Positions, document vectors and raw documents are not stored: BM25 scores never
read them, and a stored raw document travels with every hit, which is what made large batch searches crawl."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.retrieval.bm25.corpus import Corpus, corpus_digest, write_collection
from bench.paths import cache_root
from bench.retrieval.bm25.jvm import pyserini_version, start_jvm
from bench.safety import remove_stale_temps, temp_prefix

# Part of every cache key: bump it when what goes into an index changes, so stale indexes are not reused.
INDEX_FORMAT = 1


def default_cache() -> Path:
    return cache_root() / "bm25"


def index_folder(cache: Path, corpus: Corpus, language: str, analyzer: str) -> Path:
    """Where the Lucene index of this corpus in this analysis is cached (complete once it holds meta.json)."""
    scheme = f"{INDEX_FORMAT}|{language}|{analyzer}|pyserini-{pyserini_version()}"
    return cache / f"{language}-{analyzer}-{corpus_digest(corpus, scheme)[:24]}"


def build_index(corpus: Corpus, folder: Path, language: str, analyzer: str, threads: int,
                tokens: Callable[[str], list[str]] | None, backend: str) -> float:
    """Build the Lucene index of `corpus` into `folder` (index_folder's): in a temporary folder beside it,
    renamed into place when complete, so a killed build leaves only a temp folder that a later build sweeps
    (bench.safety's one stale-temp rule). `tokens`: how documents are tokenized before Lucene sees them
    (indexed -pretokenized), None when Anserini's analyzer for `language` does it. Returns the seconds spent."""
    start_jvm()
    cache = folder.parent
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(cache)  # builds of killed processes
    started = time.perf_counter()
    building = Path(tempfile.mkdtemp(prefix=temp_prefix(folder.name), dir=cache))
    try:
        expected = write_collection(corpus, building / "collection", threads, tokens)
        index_collection(building / "collection", building / "index", language, threads,
                         pretokenized=tokens is not None)
        indexed = lucene_doc_count(building / "index") if (building / "index").is_dir() else 0
        if indexed != expected:
            raise RuntimeError(f"Anserini indexed {indexed} of {expected} documents into {building / 'index'} "
                               f"({backend}); see its log above")
        shutil.rmtree(building / "collection")
        meta = {"documents": indexed, "language": language, "analyzer": analyzer,
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
    return time.perf_counter() - started


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
