"""The data `bench perf` times: a BEIR test task (optionally pooled with other corpora and cut to N
documents) and the fixed encode slice."""

from __future__ import annotations

from dataclasses import replace


def perf_task(datasets: tuple[str, ...] | list[str], docs: int = 0):
    """The BEIR test task of datasets[0]; with more datasets, their corpora are pooled in as distractors (ids
    prefixed `<dataset>/`). docs > 0 keeps the first `docs` documents: datasets[0]'s sorted by id, then the
    others'; queries keep only the judgements on kept documents, and queries left with none are dropped."""
    from bench.data.beir import beir_task

    first = beir_task(datasets[0], "test")
    corpus, queries, qrels = first.corpus, first.queries, first.qrels
    if len(datasets) > 1:
        corpus = {f"{datasets[0]}/{d}": doc for d, doc in corpus.items()}
        for name in datasets[1:]:
            corpus.update({f"{name}/{d}": doc for d, doc in beir_task(name, "test").corpus.items()})
        queries = {f"{datasets[0]}/{q}": text for q, text in queries.items()}
        qrels = {f"{datasets[0]}/{q}": {f"{datasets[0]}/{d}": g for d, g in judged.items()}
                 for q, judged in qrels.items()}
    if docs:
        if docs > len(corpus):
            raise ValueError(f"asked for {docs} documents; {'+'.join(datasets)} has {len(corpus)}")
        first_ids = sorted(d for d in corpus if not any(d.startswith(f"{n}/") for n in datasets[1:]))
        other_ids = sorted(d for d in corpus if d not in set(first_ids))
        keep = set((first_ids + other_ids)[:docs])
        corpus = {d: corpus[d] for d in first_ids + other_ids if d in keep}
        qrels = {q: {d: g for d, g in judged.items() if d in keep} for q, judged in qrels.items()}
        qrels = {q: judged for q, judged in qrels.items() if judged}
        queries = {q: t for q, t in queries.items() if q in qrels}
    return replace(first, dataset="+".join(datasets) if len(datasets) > 1 else first.dataset,
                   corpus=corpus, queries=queries, qrels=qrels)


def slice_texts(dataset: str, docs: int) -> list[str]:
    """The fixed encode slice: the first `docs` documents of the dataset sorted by id, as the runner joins
    title and text."""
    from bench.data.beir import beir_task
    from bench.retrieval.dense.encode import document_text

    corpus = beir_task(dataset, "test").corpus
    return [document_text(corpus[d]) for d in sorted(corpus)[:docs]]
