"""XQuAD-R and MLQA-R (LAReQA): answer-sentence retrieval from mono-, cross- and multilingual pools.

Files: `<root>/lareqa/{xquad-r,mlqa-r}/<lang>.json`, SQuAD-style JSON whose paragraphs carry
`sentences` and `sentence_breaks` ([start, end) character spans of the context).

Construction (LAReQA, section 3.1): every sentence of every paragraph is a candidate; the relevant
candidate of a question in language L is the L-sentence whose span holds its answer's
`answer_start`; a question id links the parallel versions of a question across languages.

Candidates whose texts are identical stay distinct items, as in LAReQA: that keeps the published
pool sizes. Their embeddings tie, and the full-ranking metrics rank a tied non-relevant twin ahead
of the relevant one, so the affected questions are counted in the warnings.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bench.data.task import DataError, RetrievalTask
from bench.paths import data_root
from bench.protocol import SETTINGS

LAREQA_LANGS: dict[str, tuple[str, ...]] = {
    "xquad-r": ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    "mlqa-r": ("ar", "de", "en", "es", "hi", "vi", "zh"),
}
PAIR_METRICS = ("map", "recall@1")
MULTI_METRICS = ("map", "recall@10", "rank_distance")


@dataclass(frozen=True)
class Candidate:
    id: str  # "{lang}:{article}:{paragraph}:{sentence}", unique across languages
    lang: str
    text: str
    paragraph: str  # "{lang}:{article}:{paragraph}", a key of LareqaData.paragraphs


@dataclass(frozen=True)
class Question:
    id: str  # shared by the parallel versions of the question across languages
    lang: str
    text: str
    answer: str  # candidate id of the sentence holding the answer start


@dataclass
class LareqaData:
    dataset: str
    langs: tuple[str, ...]
    questions: list[Question]
    candidates: dict[str, Candidate]
    # paragraph key -> its candidate ids in order (the hard negatives of a training pair)
    paragraphs: dict[str, list[str]]
    # language -> counted anomalies met while parsing that language's file
    warnings: dict[str, list[str]] = field(default_factory=dict)
    root: Path | None = None  # the data root the files were read from (None: bench.paths.data_root())

    @cached_property
    def versions(self) -> dict[str, dict[str, Question]]:
        """question id -> language -> that language's version."""
        out: dict[str, dict[str, Question]] = {}
        for q in self.questions:
            out.setdefault(q.id, {})[q.lang] = q
        return out

    def questions_in(self, lang: str) -> list[Question]:
        return [q for q in self.questions if q.lang == lang]

    def candidates_in(self, lang: str) -> list[Candidate]:
        return [c for c in self.candidates.values() if c.lang == lang]


def lareqa_file(dataset: str, lang: str, root: Path | None = None) -> Path:
    return (Path(root) if root else data_root()) / "lareqa" / dataset / f"{lang}.json"


def check_langs(dataset: str, langs: Iterable[str] | None) -> tuple[str, ...]:
    """The requested languages in the dataset's order; all of them when langs is None."""
    if dataset not in LAREQA_LANGS:
        raise DataError(f"unknown LAReQA dataset {dataset!r}; known: {', '.join(LAREQA_LANGS)}")
    valid = LAREQA_LANGS[dataset]
    if langs is None:
        return valid
    wanted = list(dict.fromkeys(langs))
    unknown = [lang for lang in wanted if lang not in valid]
    if unknown:
        raise DataError(f"unknown language(s) {', '.join(unknown)} for {dataset}; its languages: {', '.join(valid)}")
    return tuple(lang for lang in valid if lang in wanted)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"missing file {path}; set BENCH_DATA to a folder holding "
                        f"lareqa/{path.parent.name}/{path.name}")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None


def _field(record: object, key: str, kind: type, path: Path, where: str):
    """record[key], checked to be of the expected JSON kind; DataError naming file and record if not."""
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{path}: {where} has no {key!r} key (SQuAD format with sentences/sentence_breaks expected)")
    value = record[key]
    if not isinstance(value, kind):
        raise DataError(f"{path}: {where}.{key} should be a {kind.__name__}, got {type(value).__name__}")
    return value


def _sentence_of(starts: list[int], breaks: list[list[int]], offset: int) -> int | None:
    """Index of the [start, end) span holding offset, or None when it falls between or outside spans."""
    i = bisect.bisect_right(starts, offset) - 1
    if i >= 0 and offset < breaks[i][1]:
        return i
    return None


def parse_lareqa_file(path: Path, dataset: str, lang: str) -> LareqaData:
    """One language file."""
    doc = _read_json(path)
    questions: list[Question] = []
    candidates: dict[str, Candidate] = {}
    paragraphs: dict[str, list[str]] = {}
    anomalies: Counter[str] = Counter()
    seen_ids: set[str] = set()
    for a, article in enumerate(_field(doc, "data", list, path, "the top level")):
        for p, para in enumerate(_field(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(para, "context", str, path, where)
            sentences = _field(para, "sentences", list, path, where)
            breaks = _field(para, "sentence_breaks", list, path, where)
            if len(sentences) != len(breaks) or not all(
                    isinstance(b, list) and len(b) == 2 and all(isinstance(x, int) for x in b) for b in breaks):
                raise DataError(f"{path}: {where} needs one [start, end] pair in sentence_breaks per sentence "
                                f"({len(sentences)} sentences, {len(breaks)} breaks)")
            key = f"{lang}:{a}:{p}"
            ids = [f"{key}:{s}" for s in range(len(sentences))]
            paragraphs[key] = ids
            for cid, text, (start, end) in zip(ids, sentences, breaks):
                candidates[cid] = Candidate(cid, lang, text, key)
                if context[start:end].strip() != text.strip():
                    anomalies["sentence_vs_context"] += 1
            starts = [b[0] for b in breaks]
            for i, qa in enumerate(_field(para, "qas", list, path, where)):
                qwhere = f"{where}.qas[{i}]"
                qid = _field(qa, "id", str, path, qwhere)
                text = _field(qa, "question", str, path, qwhere)
                answers = _field(qa, "answers", list, path, qwhere)
                if qid in seen_ids:
                    anomalies["duplicate_id"] += 1
                    continue
                seen_ids.add(qid)
                if not answers:
                    anomalies["no_answer"] += 1
                    continue
                # XQuAD and MLQA give one answer per question; LAReQA uses the first.
                offset = _field(answers[0], "answer_start", int, path, f"{qwhere}.answers[0]")
                answer_text = _field(answers[0], "text", str, path, f"{qwhere}.answers[0]")
                s = _sentence_of(starts, breaks, offset)
                if s is None:
                    anomalies["start_outside_spans"] += 1
                    continue
                if context[offset:offset + len(answer_text)] != answer_text:
                    anomalies["answer_not_at_start"] += 1
                elif offset + len(answer_text) > breaks[s][1]:
                    anomalies["answer_crosses_sentence"] += 1
                questions.append(Question(qid, lang, text, ids[s]))
    if not candidates or not questions:
        raise DataError(f"{path}: no {'sentences' if not candidates else 'answerable questions'}; the file holds "
                        f"no data a task could be scored on")
    anomalies["twin_answers"] = _answers_with_twins(questions, candidates)
    return LareqaData(dataset, (lang,), questions, candidates, paragraphs, {lang: _describe(anomalies, path, lang)})


def _answers_with_twins(questions: list[Question], candidates: dict[str, Candidate]) -> int:
    """How many questions' answer sentence shares its exact text with another candidate of the pool."""
    texts = Counter(c.text for c in candidates.values())
    return sum(1 for q in questions if texts[candidates[q.answer].text] > 1)


def _describe(anomalies: Counter[str], path: Path, lang: str) -> list[str]:
    messages = {
        "duplicate_id": "questions repeat an id already seen in the file (later copies dropped)",
        "no_answer": "questions have no answer (dropped)",
        "start_outside_spans": "questions have an answer_start outside every sentence_breaks span (dropped)",
        "answer_not_at_start": "answers' text differs from the context at answer_start (kept; the span holding "
                               "answer_start decides)",
        "answer_crosses_sentence": "answers run past the end of the sentence holding their start (that "
                                   "sentence is the relevant one, as in LAReQA)",
        "sentence_vs_context": "sentences differ from their sentence_breaks span of the context (the "
                               "`sentences` text is used)",
        "twin_answers": f"questions' answer sentence has an identical-text twin in the {lang} pool (kept "
                        f"distinct as in LAReQA; a tied twin ranks ahead of it)",
    }
    return [f"{path.parent.name}/{path.name}: {anomalies[k]} {msg}" for k, msg in messages.items() if anomalies[k]]


def load_lareqa(dataset: str, root: Path | None = None, langs: Iterable[str] | None = None) -> LareqaData:
    """Parse the dataset's files for the requested languages (all by default)."""
    chosen = check_langs(dataset, langs)
    parts = [parse_lareqa_file(lareqa_file(dataset, lang, root), dataset, lang) for lang in chosen]
    return LareqaData(
        dataset, chosen, questions=[q for part in parts for q in part.questions],
        candidates={cid: c for part in parts for cid, c in part.candidates.items()},
        paragraphs={key: ids for part in parts for key, ids in part.paragraphs.items()},
        warnings={lang: w for part in parts for lang, w in part.warnings.items()}, root=root,
    )


def lareqa_tasks(dataset: str, settings: Sequence[str] = SETTINGS, langs: Iterable[str] | None = None,
                 root: Path | None = None) -> list[RetrievalTask]:
    """Full-ranking tasks: mono per language, cross per ordered pair, multi per query language.

    All tasks share one corpus dict per language pool (and the multi pool reuses the same entries),
    so a text-keyed embedding memo encodes every candidate once.
    """
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise DataError(f"unknown LAReQA setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    data = load_lareqa(dataset, root, langs)
    chosen = data.langs
    pools = {lang: {c.id: {"title": "", "text": c.text} for c in data.candidates_in(lang)} for lang in chosen}
    by_lang = {lang: data.questions_in(lang) for lang in chosen}
    tasks: list[RetrievalTask] = []
    if "mono" in settings:
        tasks += [_pair_task(data, x, x, by_lang[x], pools[x]) for x in chosen]
    if "cross" in settings:
        tasks += [_pair_task(data, x, y, by_lang[x], pools[y]) for x in chosen for y in chosen if x != y]
    if "multi" in settings:
        union = {cid: entry for lang in chosen for cid, entry in pools[lang].items()}
        tasks += [_multi_task(data, x, chosen, by_lang[x], union) for x in chosen]
    return tasks


def _pair_task(data: LareqaData, x: str, y: str, questions: list[Question], pool: dict) -> RetrievalTask:
    """Queries in x against the y pool; relevant = the y version's answer sentence."""
    queries, qrels = {}, {}
    for q in questions:
        target = data.versions[q.id].get(y)
        if target is not None:
            queries[q.id] = q.text
            qrels[q.id] = {target.answer: 1}
    warnings = list(dict.fromkeys(data.warnings.get(x, []) + data.warnings.get(y, [])))
    skipped = len(questions) - len(queries)
    if skipped:
        warnings.append(f"skipped {skipped} of {len(questions)} {x} queries with no {y} version")
    return RetrievalTask(
        suite=data.dataset, dataset=data.dataset, split="test", corpus=pool, queries=queries, qrels=qrels,
        setting="mono" if x == y else "cross", query_lang=x, doc_lang=y, ranking="full", metrics=PAIR_METRICS,
        warnings=warnings, files=tuple(dict.fromkeys(lareqa_file(data.dataset, lang, data.root) for lang in (x, y))),
    )


def _multi_task(data: LareqaData, x: str, langs: tuple[str, ...], questions: list[Question],
                pool: dict) -> RetrievalTask:
    """Queries in x against every chosen language's pool; relevant = all parallel answer sentences."""
    # data holds the chosen languages only, so the versions are those of the chosen pools.
    qrels = {q.id: {v.answer: 1 for v in data.versions[q.id].values()} for q in questions}
    warnings = list(dict.fromkeys(w for lang in langs for w in data.warnings.get(lang, [])))
    return RetrievalTask(
        suite=data.dataset, dataset=data.dataset, split="test", corpus=pool,
        queries={q.id: q.text for q in questions}, qrels=qrels, setting="multi", query_lang=x,
        doc_lang="multi", ranking="full", metrics=MULTI_METRICS, warnings=warnings,
        files=tuple(lareqa_file(data.dataset, lang, data.root) for lang in langs),
    )
