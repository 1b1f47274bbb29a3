"""What a retriever offers the runner (bench/eval/runner.py), as beir's BaseSearch does for its evaluator.

Besides these, the runner reads optional attributes where present: `text_counts` and `encoder` (dense: texts
encoded / cached / memoised, the encoder's similarity, prompts, revision, cache), `k1` and `b` (BM25)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from bench.data.task import RetrievalTask

Run = dict[str, dict[str, float]]  # {query id: {doc id: score}}


class Retriever(Protocol):
    fingerprint: str  # what produced the scores (model weights, BM25 parameters): the run record's `fingerprint`
    details: dict[str, object]  # written into the run record as model_<key>

    def search(self, task: RetrievalTask, k: int) -> tuple[Run, dict[str, float]]:
        """Top-k tasks: the k best documents per query, and stage timings in seconds."""

    def pool_scores(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], list[str], Iterator]:
        """Full-ranking tasks: query ids, pool ids, and (first query row, scores of a chunk of queries x the
        whole pool) computed as the caller ranks them; stage timings added to `timings`."""


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
