"""The one type every data source returns: a retrieval task with plain dicts at the seams (as beir), the corpus
of big sets being a streamed Mapping (bench.data.corpus)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.protocol import BEIR_METRICS

# Metrics of BEIR-style tasks (top-k run evaluated with pytrec_eval).


class DataError(ValueError):
    """Bad or missing input data; the message says what is wrong and how to fix it."""


def json_record(line: str, path: Path, lineno: int, required: tuple[str, ...], layout: str = "") -> dict:
    """One line of a JSONL corpus or query file (BEIR, MIRACL) as a dict; DataError naming the file and line
    when it is not JSON, not an object, lacks a `required` field (`layout`: what a record should hold), or has a
    title or text that is neither a string nor null."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{lineno}: malformed JSON ({e.msg}); fix or remove that line") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in required if k not in record]
    if missing:
        note = f" ({layout})" if layout else ""
        raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}{note}")
    for key in ("title", "text"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise DataError(f"{path}:{lineno}: {key} is a {type(record[key]).__name__}; it must be a string (or "
                            f"null for none)")
    return record


def document(record: dict) -> dict[str, str]:
    """A corpus entry from a record checked by json_record: {"title", "text"}, null or absent as ""."""
    return {"title": record.get("title") or "", "text": record["text"] or ""}


@dataclass
class RetrievalTask:
    """Queries, a corpus and relevance judgements, plus where they sit in the benchmark.

    corpus:  doc id -> {"title": str, "text": str}: a dict, or for big corpora (MIRACL, large BEIR sets) a
             bench.data.corpus.JsonlCorpus, a read-only Mapping that streams its file. Consumers use the
             Mapping interface only: items() / iter_chunks() to go over all documents (streamed, in file
             order), [] or `in` for a few, len(); never dict(corpus) or corpus[d] for every d.
    queries: query id -> text
    qrels:   query id -> {doc id -> relevance grade}
    """

    suite: str
    dataset: str
    split: str
    corpus: Mapping[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    setting: str = "mono"
    query_lang: str = "en"
    doc_lang: str = "en"
    # BEIR's convention (beir's exact search and EvaluateRetrieval both do it): a hit whose id
    # equals the query id is dropped. It matters for ArguAna, whose queries are corpus documents.
    ignore_identical_ids: bool = True
    # "topk": rank the top 1000 and score with pytrec_eval (BEIR, MIRACL).
    # "full": score the full ranking over the pool (LAReQA mAP, rank distance).
    ranking: str = "topk"
    metrics: tuple[str, ...] = BEIR_METRICS
    # Counted warnings met while loading (e.g. qrels pointing at missing documents).
    warnings: list[str] = field(default_factory=list)
    # The data files the task was read from: named in errors, hashed into the results' fingerprint.
    files: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        # A task without documents or judged queries would score 0.0 over nothing, and that 0.0 would be
        # stored and shown as a result: refuse it here, where every loader passes.
        where = ", ".join(map(str, self.files)) or f"{self.dataset} {self.key}"
        if not self.corpus:
            raise DataError(f"{where}: no documents for {self.key}; the corpus file is empty or every line was "
                            f"left out")
        judged = [q for q in self.qrels if q in self.queries]
        if not judged:
            raise DataError(f"{where}: no judged queries for {self.key}; the qrels are empty (or header only) or "
                            f"name no query of the queries file")

    @property
    def key(self) -> str:
        """A file-name-safe identifier: dataset, split, setting and languages, e.g. scifact__test__mono__en-en."""
        return "__".join([self.dataset, self.split, self.setting, f"{self.query_lang}-{self.doc_lang}"])
