"""A dev split held out from the training set's own questions, to tune training choices (the mtl sweep) without
ever looking at an evaluation set.

Rule (deterministic, the same for every seed and trainer, so configurations are compared on the same
questions): question ids are grouped by the paragraphs their versions are answered in (two ids answered in a
shared paragraph, in any language, are one group), and a group is held out when sha256("dev:" + its first
id) falls in the lowest `fraction` of the hash range. Holding out whole paragraphs keeps every dev candidate
out of training: no training pair has a dev sentence as its positive or as its hard negative.

Scoring is LAReQA's (DESIGN.md, "Evaluation protocols") on the held-out questions: mono, cross and multi mAP
over the full ranking of a pool made of every sentence of the held-out paragraphs, macro-averaged over
languages (mono, multi) and ordered language pairs (cross); cross skips queries with no version in the
pool's language, as MLQA-R does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from bench.data.lareqa import LareqaData, Question
from bench.protocol import SETTINGS



@dataclass(frozen=True)
class DevSplit:
    dataset: str
    fraction: float
    questions: tuple[Question, ...]  # every version of every held-out question id
    candidates: dict  # candidate id -> Candidate: the sentences of the held-out paragraphs
    train_ids: int  # question ids left for training

    @property
    def ids(self) -> list[str]:
        return sorted({q.id for q in self.questions})

    def describe(self) -> str:
        return (f"{len(self.ids)} of {len(self.ids) + self.train_ids} {self.dataset} question ids "
                f"({len(self.questions)} versions, {len(self.candidates)} candidate sentences)")

    def record(self) -> dict:
        return {"dataset": self.dataset, "fraction": self.fraction, "question_ids": len(self.ids),
                "question_versions": len(self.questions), "candidates": len(self.candidates),
                "train_question_ids": self.train_ids,
                "ids_fingerprint": hashlib.sha256("\n".join(self.ids).encode()).hexdigest()[:16],
                "rule": "question ids grouped by shared answer paragraphs; a group is held out when "
                        "sha256('dev:' + its first id) is in the lowest fraction of the range"}


def _groups(data: LareqaData) -> dict[str, str]:
    """question id -> its group's first id (ids answered in a shared paragraph are one group)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for q in data.questions:
        a, b = find(f"q:{q.id}"), find(f"p:{data.candidates[q.answer].paragraph}")
        if a != b:
            parent[max(a, b)] = min(a, b)  # the root of a group is its smallest key, a "p:" key if any
    members: dict[str, list[str]] = {}
    for qid in {q.id for q in data.questions}:
        members.setdefault(find(f"q:{qid}"), []).append(qid)
    return {qid: min(ids) for ids in members.values() for qid in ids}


def _held_out(key: str, fraction: float) -> bool:
    value = int.from_bytes(hashlib.sha256(f"dev:{key}".encode()).digest()[:8], "big")
    return value < fraction * 2 ** 64


def split_dev(data: LareqaData, fraction: float) -> tuple[LareqaData, DevSplit]:
    """(the training data without the held-out questions, the dev split)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the dev fraction must be in (0, 1), got {fraction}")
    group = _groups(data)
    dev_ids = {qid for qid, first in group.items() if _held_out(first, fraction)}
    if not dev_ids or len(dev_ids) == len(group):
        raise ValueError(f"a dev fraction of {fraction} holds out {len(dev_ids)} of {len(group)} question ids of "
                         f"{data.dataset}: choose a fraction that leaves some on each side")
    dev_questions = tuple(q for q in data.questions if q.id in dev_ids)
    paragraphs = {data.candidates[q.answer].paragraph for q in dev_questions}
    candidates = {cid: data.candidates[cid] for key in sorted(paragraphs) for cid in data.paragraphs[key]}
    train = LareqaData(data.dataset, data.langs, [q for q in data.questions if q.id not in dev_ids],
                       data.candidates, data.paragraphs, data.warnings)
    return train, DevSplit(data.dataset, fraction, dev_questions, candidates, len(group) - len(dev_ids))


def score_dev(model, split: DevSplit, batch_size: int = 64) -> dict[str, float]:
    """{setting: macro mAP} of a SentenceTransformer on the dev split (fp32 encoding, the model's prompts)."""
    from bench.eval.ranking import full_ranking_per_query, macro_average
    from bench.train.objectives import model_prompts

    query_prompt, doc_prompt = model_prompts(model)
    langs = sorted({q.lang for q in split.questions})
    pool = {lang: [c for c in split.candidates.values() if c.lang == lang] for lang in langs}

    def encode(texts: list[str], prompt: str) -> np.ndarray:
        return model.encode(texts, prompt=prompt or None, batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    queries = {lang: [q for q in split.questions if q.lang == lang] for lang in langs}
    query_vectors = {lang: encode([q.text for q in queries[lang]], query_prompt) for lang in langs}
    doc_vectors = {lang: encode([c.text for c in pool[lang]], doc_prompt) for lang in langs}
    answers: dict[str, dict[str, str]] = {}  # question id -> language -> answer candidate id
    for q in split.questions:
        answers.setdefault(q.id, {})[q.lang] = q.answer

    def task_map(x: str, doc_langs: list[str], multi: bool) -> float | None:
        docs = [c.id for lang in doc_langs for c in pool[lang]]
        matrix = np.concatenate([doc_vectors[lang] for lang in doc_langs])
        if multi:
            qrels = {q.id: dict.fromkeys(answers[q.id].values(), 1) for q in queries[x]}
        else:
            y = doc_langs[0]
            qrels = {q.id: {answers[q.id][y]: 1} for q in queries[x] if y in answers[q.id]}
        keep = [i for i, q in enumerate(queries[x]) if q.id in qrels]
        if not keep:
            return None
        ids = [queries[x][i].id for i in keep]
        scores = query_vectors[x][keep] @ matrix.T
        per_query = full_ranking_per_query(ids, docs, qrels, [(0, scores)], ["map"])
        return macro_average(per_query)["map"]

    results: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
    for x in langs:
        results["mono"].append(task_map(x, [x], multi=False))
        results["cross"] += [task_map(x, [y], multi=False) for y in langs if y != x]
        results["multi"].append(task_map(x, langs, multi=True))
    return {setting: float(np.mean([v for v in values if v is not None])) for setting, values in results.items()}
