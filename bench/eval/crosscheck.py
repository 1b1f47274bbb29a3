"""Independent cross-checks of the harness's dense-retrieval scores: the same model and task scored by beir's
own pipeline (SentenceBERT + DenseRetrievalExactSearch + EvaluateRetrieval) and by mteb 2.x (a custom
AbsTaskRetrieval filled with the task's data, evaluated fully offline).

Both return {"ndcg@10": ..., "recall@100": ...}. Both libraries round their means to 5 decimals, so compare
with the harness to about 1e-5 (tests use 1e-4).

Prompts: None means the model's own prompt, as the harness's encoder uses it (sentence-transformers'
`encode_query` takes the model's "query" prompt, `encode_document` the first of "document", "passage",
"corpus"); a string is used verbatim ("" for none).
"""

from __future__ import annotations

import warnings

from bench.data.task import RetrievalTask

CROSSCHECK_METRICS = ("ndcg@10", "recall@100")
_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def _load_model(model_path: str, max_seq_length: int | None):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def _resolve_prompts(model, query_prompt: str | None, doc_prompt: str | None) -> tuple[str, str]:
    """The prompts the harness would use when none is given (see the module docstring)."""
    prompts = dict(getattr(model, "prompts", None) or {})
    if query_prompt is None:
        query_prompt = prompts.get("query") or ""
    if doc_prompt is None:
        doc_prompt = next((prompts[n] for n in _DOCUMENT_PROMPT_NAMES if prompts.get(n)), "")
    return query_prompt, doc_prompt


def beir_scores(model_path: str, task: RetrievalTask, max_seq_length: int | None = None,
                query_prompt: str | None = None, doc_prompt: str | None = None, *, batch_size: int = 32,
                k: int = 1000) -> dict[str, float]:
    """nDCG@10 and Recall@100 from beir 2.2's exact dense search and evaluation (cosine similarity,
    identical query/doc ids ignored as the task says)."""
    from beir.retrieval.evaluation import EvaluateRetrieval
    from beir.retrieval.models import SentenceBERT
    from beir.retrieval.search.dense import DenseRetrievalExactSearch

    model = SentenceBERT(model_path, max_length=max_seq_length, device="cpu")
    # Exactly the resolved prompts, passed verbatim to every encode call ("" adds nothing), and no default
    # prompt name that sentence-transformers could fall back to.
    model.query_prefix, model.doc_prefix = _resolve_prompts(model.q_model, query_prompt, doc_prompt)
    model.query_prompt_name = model.doc_prompt_name = None
    model.q_model.default_prompt_name = model.doc_model.default_prompt_name = None
    search = DenseRetrievalExactSearch(model, batch_size=batch_size, show_progress_bar=False)
    # beir's exact search always drops a hit whose id equals the query id; a copy keeps the task intact.
    results = search.search(dict(task.corpus), dict(task.queries), top_k=k, score_function="cos_sim")
    ndcg, _map, recall, _precision = EvaluateRetrieval.evaluate(
        task.qrels, results, [10, 100], ignore_identical_ids=task.ignore_identical_ids)
    return {"ndcg@10": ndcg["NDCG@10"], "recall@100": recall["Recall@100"]}


def _mteb_task(task: RetrievalTask):
    """A custom mteb AbsTaskRetrieval holding the task's data (no download)."""
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.abstasks.task_metadata import TaskMetadata

    split = task.split
    corpus = Dataset.from_list([{"id": d, "title": doc.get("title", "") or "", "text": doc.get("text", "") or ""}
                                for d, doc in task.corpus.items()])
    queries = Dataset.from_list([{"id": q, "text": text} for q, text in task.queries.items()])
    qrels = {q: dict(judged) for q, judged in task.qrels.items()}

    class BenchCrossCheckTask(AbsTaskRetrieval):
        ignore_identical_ids = task.ignore_identical_ids
        metadata = TaskMetadata(
            type="Retrieval", name="BenchCrossCheck", main_score="ndcg_at_10",
            description=f"bench cross-check of {task.suite}/{task.key}", reference="https://example.org/bench",
            dataset={"path": "local/bench-crosscheck", "revision": "local"}, category="t2t",
            eval_splits=[split], eval_langs=["eng-Latn"], date=("2020-01-01", "2020-01-01"), dialect=[],
            domains=[], task_subtypes=[], license="not specified", annotations_creators="derived",
            modalities=["text"], sample_creation="found", bibtex_citation="",
        )

        def load_data(self, num_proc=None, **kwargs) -> None:
            self.dataset = {"default": {split: RetrievalSplitData(corpus=corpus, queries=queries,
                                                                  relevant_docs=qrels, top_ranked=None)}}
            self.data_loaded = True

    return BenchCrossCheckTask()


def mteb_scores(model_path: str, task: RetrievalTask, max_seq_length: int | None = None,
                query_prompt: str | None = None, doc_prompt: str | None = None, *,
                batch_size: int = 32) -> dict[str, float]:
    """nDCG@10 and Recall@100 from mteb 2.x's retrieval evaluation, fully offline (`cache=None`).

    mteb's documents are `(title + " " + text).strip()` (text alone without a title), like beir's and the
    harness's; mteb keeps queries that have at least one judgement, as the harness does."""
    import mteb
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    model = _load_model(model_path, max_seq_length)
    query_prompt, doc_prompt = _resolve_prompts(model, query_prompt, doc_prompt)
    # Exactly the resolved prompts, none of the model's others.
    model.prompts = {}
    model.default_prompt_name = None
    model_prompts = {name: p for name, p in (("query", query_prompt), ("document", doc_prompt)) if p}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        wrapped = SentenceTransformerEncoderWrapper(model, model_prompts=model_prompts or None)
        result = mteb.evaluate(wrapped, _mteb_task(task), cache=None, show_progress_bar=False,
                               encode_kwargs={"batch_size": batch_size})
    scores = result.task_results[0].scores[task.split][0]
    return {"ndcg@10": float(scores["ndcg_at_10"]), "recall@100": float(scores["recall_at_100"])}


CROSSCHECK_TOOLS = {"beir": beir_scores, "mteb": mteb_scores}


def crosscheck_report(spec, task: RetrievalTask, ours: dict[str, float], tools=tuple(CROSSCHECK_TOOLS)) -> dict:
    """Ours beside beir's and/or mteb's pipelines on the same model and task, with each tool's wall time. The
    tools always run their own fp32 path, the reference: with `spec.precision` bf16 the differences measure
    what bf16 changes."""
    import time

    location = spec.locate()
    report: dict = {"model": spec.key, "dataset": task.dataset, "split": task.split, "scores": {"bench": ours},
                    "precision": {"bench": spec.precision, **{tool: "fp32" for tool in tools}}, "seconds": {}}
    for tool in tools:
        start = time.perf_counter()
        report["scores"][tool] = CROSSCHECK_TOOLS[tool](location, task, spec.max_seq_length)
        report["seconds"][tool] = round(time.perf_counter() - start, 1)
    report["max_abs_difference"] = {
        metric: max(abs(report["scores"][tool][metric] - ours[metric]) for tool in tools)
        for metric in CROSSCHECK_METRICS}
    return report


def run_crosschecks(spec, datasets: list[str], split: str, tools, experiment: str):
    """For each BEIR dataset: our scores (stored ones reused, else computed into `experiment`), the tools'
    beside them, and the report written to <results>/<experiment>/crosscheck/<key>__<task>.json.
    Yields (report, path) as each dataset finishes."""
    import json

    from bench.data.suites import SuiteOptions, suite_tasks
    from bench.eval.runner import run_models
    from bench.results import ResultStore, atomic_write

    if spec.kind != "dense":
        raise ValueError(f"crosscheck compares dense pipelines; {spec.name} is {spec.kind}")
    store = ResultStore(experiment)
    for task in suite_tasks("beir", SuiteOptions(datasets=tuple(datasets), split=split)):
        rows = run_models([spec], [task], experiment)
        ours = {m: float(v) for m, v in zip(rows["metric"], rows["value"]) if m in CROSSCHECK_METRICS}
        report = crosscheck_report(spec, task, ours, tools=tools)
        path = store.folder / "crosscheck" / f"{spec.key}__{task.key}.json"
        atomic_write(path, lambda p: p.write_text(json.dumps(report, indent=2)))
        yield report, path
