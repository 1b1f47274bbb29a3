"""The one type every data source returns: a retrieval task with plain dicts at the seams (as beir)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Metrics of BEIR-style tasks (top-k run evaluated with pytrec_eval).
BEIR_METRICS = ("ndcg@10", "recall@100", "map@100", "mrr@10")


class DataError(ValueError):
    """Bad or missing input data; the message says what is wrong and how to fix it."""


@dataclass
class RetrievalTask:
    """Queries, a corpus and relevance judgements, plus where they sit in the benchmark.

    corpus:  doc id -> {"title": str, "text": str}
    queries: query id -> text
    qrels:   query id -> {doc id -> relevance grade}
    """

    suite: str
    dataset: str
    split: str
    corpus: dict[str, dict[str, str]]
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

    @property
    def key(self) -> str:
        """A file-name-safe identifier: dataset, split, setting and languages, e.g. scifact__test__mono__en-en."""
        return "__".join([self.dataset, self.split, self.setting, f"{self.query_lang}-{self.doc_lang}"])
