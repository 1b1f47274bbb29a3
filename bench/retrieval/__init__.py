"""Retrievers as siblings, laid out as beir's retrieval/search: `base` (what a retriever offers the runner),
`bm25/` (Lucene BM25 through pyserini, and its exact pure-Python twin) and `dense/` (encoding, the embedding
cache, encoder backends, top-k search). `load_retriever` is the one function the runner calls; retrievers are
imported only when asked for, so importing this package loads neither torch nor a JVM."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.data.task import RetrievalTask
    from bench.models.registry import ModelSpec
    from bench.retrieval.base import Retriever


def load_retriever(spec: ModelSpec, batch_size: int = 32, cache: bool = True, device: str | None = None,
                   dense_options=None) -> Retriever:
    """cache: use the on-disk embedding cache (dense models); device: where a dense model runs (default: the
    GPU when there is one, else the CPU); dense_options: bench.retrieval.dense.options.DenseOptions (sharded
    encoding, FAISS parameters), dense models only."""
    if spec.kind == "bm25":
        from bench.retrieval.bm25.retriever import BM25Retriever

        return BM25Retriever(k1=spec.bm25_k1, b=spec.bm25_b)
    from bench.retrieval.dense.retriever import DenseRetriever

    try:
        return DenseRetriever(spec, batch_size=batch_size, cache=cache, device=device, options=dense_options)
    except (ValueError, OSError):
        raise  # already say what is wrong (an unknown precision, a Hugging Face id offline)
    except Exception as error:  # noqa: BLE001 - the loaders' own errors (SafetensorError, ...) have no common type
        raise ValueError(f"could not load model {spec.key} ({error.__class__.__name__}: {error}); its folder may be "
                         f"damaged (a truncated model.safetensors, say): re-provision or re-train it") from None


def check_runnable(specs: list[ModelSpec], tasks: list[RetrievalTask], k: int) -> None:
    """Everything about the (model, task) grid that can fail, checked before the first task runs: a ranking
    depth below a metric's cut-off, a BM25 pool in a language it has no analysis for."""
    from bench.eval.metrics import deepest_cutoff

    for task in tasks:
        if task.ranking == "topk" and k < deepest_cutoff(task.metrics):
            raise ValueError(f"--k {k} is below {task.dataset}'s deepest metric cut-off "
                             f"({', '.join(task.metrics)}): give --k {deepest_cutoff(task.metrics)} or more")
    if any(spec.kind == "bm25" for spec in specs):
        from bench.retrieval.bm25.languages import normalized_language

        for lang in dict.fromkeys(task.doc_lang for task in tasks):
            normalized_language(lang)  # ValueError naming the supported languages
