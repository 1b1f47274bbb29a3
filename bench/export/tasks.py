"""Which MTEB task each bench result is, as an mteb task object, so that mteb validates our files against it.

BEIR sets and MIRACL are MTEB's own registered tasks (SciFact, NFCorpus, ..., MIRACLRetrieval). XQuAD-R and
MLQA-R follow LAReQA's protocol, which no MTEB task implements (MTEB's XQuADRetrieval / MLQARetrieval use other
corpora), and bench's Tatoeba scores retrieval in both directions, unlike MTEB's Tatoeba (bitext mining): these
are defined here with mteb's own TaskMetadata, one task per LAReQA setting (XQuADR-LAReQA-mono, -cross, -multi,
MLQAR-LAReQA-...), so a task's get_score() is one setting's mean over its language pairs. Their hf_subsets are
"<query lang>-<doc lang>" ("de-multi" for the multilingual pool)."""

from __future__ import annotations

import pandas as pd
from mteb.abstasks import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata

from bench.data.lareqa import LAREQA_LANGS, SETTINGS
from bench.data.tatoeba import ISO1_TO_TATOEBA

BEIR_TASKS = {"scifact": "SciFact", "nfcorpus": "NFCorpus", "arguana": "ArguAna", "fiqa": "FiQA2018",
              "trec-covid": "TRECCOVID", "scidocs": "SCIDOCS", "quora": "QuoraRetrieval",
              "webis-touche2020": "Touche2020", "nq": "NQ", "hotpotqa": "HotpotQA", "dbpedia-entity": "DBPedia",
              "fever": "FEVER", "climate-fever": "ClimateFEVER", "msmarco": "MSMARCO"}
LAREQA_PREFIX = {"xquad-r": "XQuADR-LAReQA", "mlqa-r": "MLQAR-LAReQA"}
SCRIPTS = {"ar": "arb-Arab", "de": "deu-Latn", "el": "ell-Grek", "en": "eng-Latn", "es": "spa-Latn",
           "hi": "hin-Deva", "ru": "rus-Cyrl", "th": "tha-Thai", "tr": "tur-Latn", "vi": "vie-Latn",
           "zh": "zho-Hans"}
SUITES = ("beir", "miracl", *LAREQA_PREFIX, "tatoeba")
LAREQA_CITATION = """@inproceedings{roy-etal-2020-lareqa,
  title = {{LAReQA}: Language-Agnostic Answer Retrieval from a Multilingual Pool},
  author = {Roy, Uma and Constant, Noah and Al-Rfou, Rami and Barua, Aditya and Phillips, Aaron and Yang, Yinfei},
  booktitle = {Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  year = {2020},
}"""
# The tasks below are not Hugging Face datasets: their files are read from bench's data mirror, and each result
# file's dataset_revision names the content hash of the files it was computed from.
MIRROR_REVISION = "per result: see each result's dataset_revision (content hash of the files read)"


class BenchRetrievalTask(AbsTaskRetrieval):
    """A retrieval task bench scores itself: metadata only (mteb validates results against it), no loader."""

    def load_data(self, **kwargs) -> None:
        raise NotImplementedError(f"{self.metadata.name} is scored by bench (python -m bench run), not by mteb")


def _task(metadata: TaskMetadata) -> BenchRetrievalTask:
    return type(metadata.name.replace("-", "_"), (BenchRetrievalTask,), {"metadata": metadata})()


def _lareqa_subsets(dataset: str, setting: str) -> dict[str, list[str]]:
    langs = LAREQA_LANGS[dataset]
    if setting == "mono":
        return {f"{x}-{x}": [SCRIPTS[x]] for x in langs}
    if setting == "cross":
        return {f"{x}-{y}": [SCRIPTS[x], SCRIPTS[y]] for x in langs for y in langs if x != y}
    return {f"{x}-multi": [SCRIPTS[x]] + [SCRIPTS[y] for y in langs if y != x] for x in langs}


def lareqa_task(dataset: str, setting: str) -> BenchRetrievalTask:
    pools = {"mono": "the question's own language", "cross": "one other language",
             "multi": "all languages together (the multilingual pool)"}
    main = "map"
    return _task(TaskMetadata(
        name=f"{LAREQA_PREFIX[dataset]}-{setting}",
        description=f"{dataset.upper()} (LAReQA), {setting} setting: answer-sentence retrieval, questions ranked "
                    f"against every candidate sentence of {pools[setting]} (full ranking, no top-k cut); "
                    f"main score mean average precision (LAReQA's metric).",
        reference="https://arxiv.org/abs/2004.05484",
        dataset={"path": f"lareqa/{dataset}", "revision": MIRROR_REVISION},
        type="Retrieval", category="t2t", modalities=["text"], eval_splits=["test"],
        eval_langs=_lareqa_subsets(dataset, setting), main_score=main, domains=["Encyclopaedic", "Written"],
        license="cc-by-sa-4.0" if dataset == "xquad-r" else "cc-by-nc-4.0", annotations_creators="human-annotated",
        sample_creation="found", bibtex_citation=LAREQA_CITATION, contributed_by="bench"))


def _tatoeba_subsets() -> dict[str, list[str]]:
    from mteb import get_task

    mteb_langs = get_task("Tatoeba").metadata.eval_langs  # "<xxx>-eng" -> [<xxx script>, "eng-Latn"]
    to_bench = {code: iso for iso, code in ISO1_TO_TATOEBA.items()}
    subsets = {}
    for pair, (lang, english) in sorted(mteb_langs.items()):
        x = to_bench.get(pair.split("-")[0], pair.split("-")[0])
        subsets[f"{x}-en"] = [lang, english]
        subsets[f"en-{x}"] = [english, lang]
    return subsets


def tatoeba_task() -> BenchRetrievalTask:
    return _task(TaskMetadata(
        name="Tatoeba-bench",
        description="Tatoeba test pairs (LASER release) as retrieval in both directions: each sentence retrieves "
                    "its translation among all sentences of the other side; accuracy@1. Subsets "
                    "'<query lang>-<doc lang>' in ISO 639-1 where one exists, else LASER's file code.",
        reference="https://github.com/facebookresearch/LASER/tree/main/data/tatoeba/v1",
        dataset={"path": "tatoeba", "revision": MIRROR_REVISION},
        type="Retrieval", category="t2t", modalities=["text"], eval_splits=["test"], eval_langs=_tatoeba_subsets(),
        main_score="accuracy_at_1", domains=["Written"], license="cc-by-2.0", annotations_creators="human-annotated",
        sample_creation="found", contributed_by="bench"))


def mteb_task(name: str):
    """The mteb task object of an exported task name, a new one each call (callers may filter its subsets)."""
    for dataset, prefix in LAREQA_PREFIX.items():
        for setting in SETTINGS:
            if name == f"{prefix}-{setting}":
                return lareqa_task(dataset, setting)
    if name == "Tatoeba-bench":
        return tatoeba_task()
    from mteb import get_task

    return get_task(name)


def bench_tasks() -> list[BenchRetrievalTask]:
    """The tasks this module defines (the ones mteb has no registry entry for)."""
    return [mteb_task(f"{p}-{s}") for p in LAREQA_PREFIX.values() for s in SETTINGS] + [mteb_task("Tatoeba-bench")]


def task_name(suite: str, dataset: str, setting: str) -> str:
    """The MTEB task a tidy row belongs to; ValueError for a suite or dataset MTEB has no task for here."""
    if suite == "beir" and dataset in BEIR_TASKS:
        return BEIR_TASKS[dataset]
    if suite == "miracl":
        return "MIRACLRetrieval"
    if suite in LAREQA_PREFIX and setting in SETTINGS:
        return f"{LAREQA_PREFIX[suite]}-{setting}"
    if suite == "tatoeba":
        return "Tatoeba-bench"
    raise ValueError(f"no MTEB task for suite {suite!r}, dataset {dataset!r}, setting {setting!r}: the export knows "
                     f"the suites {', '.join(SUITES)} (BEIR sets {', '.join(BEIR_TASKS)}); add the mapping in "
                     f"bench/export/tasks.py, or export an experiment without these rows")


def subset(row: pd.Series) -> str:
    if row.suite == "beir":
        return "default"
    if row.suite == "miracl":
        return row.query_lang
    return f"{row.query_lang}-{row.doc_lang}"
