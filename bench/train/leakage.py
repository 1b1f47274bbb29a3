"""Leakage audit: how many training texts also occur in the evaluation sets a run will be scored on.

Run before every training. For each evaluation set, two sides (its questions / queries, its candidates /
corpus documents) and two matches:

- exact: the same string;
- normalised: equal after NFKC, case folding, removing punctuation (Unicode category P) and collapsing
  whitespace (SQuAD's answer normalisation without its English article rule).

A count is the number of distinct training texts (queries, positives and hard negatives together) that
match some text of that side; ``examples`` counts the training examples with at least one text that
matches either side after normalisation. Whole-text equality only: a training sentence quoted inside a
longer BEIR abstract is not counted.

Training on a LAReQA set and evaluating on the same set is refused unless allow_leak is given (the
cross-dataset protocol of DESIGN.md: train on MLQA-R, evaluate on XQuAD-R + BEIR, or the reverse).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.data.lareqa import LAREQA_LANGS
from bench.data.pairs import Example
from bench.data.task import DataError
from bench.protocol import DEFAULT_BEIR, HELD_OUT, LAREQA_SETS

# Evaluation sets scored by default beside the other LAReQA set (those of the offline mirror).


@dataclass(frozen=True)
class EvalSet:
    name: str
    questions: frozenset[str]
    candidates: frozenset[str]  # every form a candidate is encoded in (BEIR: text, and title + text)
    n_questions: int | None = None  # items (the text sets hold distinct strings); None: len of the set
    n_candidates: int | None = None


@lru_cache(maxsize=1)
def _punctuation_table() -> dict[int, None]:
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_punctuation_table())
    return " ".join(text.split())


def default_eval_data(train_data: str) -> tuple[str, ...]:
    """The cross-dataset protocol: the other LAReQA set plus the BEIR sets of the mirror."""
    others = (HELD_OUT[train_data],) if train_data in HELD_OUT else LAREQA_SETS
    return others + DEFAULT_BEIR


def check_leak(train_data: str, eval_data: Sequence[str], allow_leak: bool) -> None:
    if train_data in eval_data and not allow_leak:
        raise ValueError(f"training on {train_data} and evaluating on {train_data} leaks its questions and "
                         f"answers into the scores; evaluate on another set (--eval-data) or pass --allow-leak "
                         f"to do it knowingly")


def lareqa_eval_set(dataset: str, root: Path | None = None) -> EvalSet:
    """Questions and candidates of every language whose file is present."""
    from bench.data.lareqa import lareqa_file, load_lareqa

    langs = [lang for lang in LAREQA_LANGS[dataset] if lareqa_file(dataset, lang, root).is_file()]
    if not langs:
        raise DataError(f"no {dataset} files under {lareqa_file(dataset, 'xx', root).parent}")
    data = load_lareqa(dataset, root, langs)
    return EvalSet(dataset, frozenset(q.text for q in data.questions),
                   frozenset(c.text for c in data.candidates.values()), len(data.questions), len(data.candidates))


def beir_eval_set(name: str, root: Path | None = None, split: str = "test") -> EvalSet:
    """Queries of the split and corpus documents (their text, and title + text as encoded)."""
    from bench.data.beir import beir_folder, load_beir_folder
    from bench.retrieval.dense.encode import document_text

    task = load_beir_folder(beir_folder(name, root, download=False), split, name=name)
    docs = {doc.get("text", "") for doc in task.corpus.values()} | {document_text(d) for d in task.corpus.values()}
    return EvalSet(name, frozenset(task.queries.values()), frozenset(docs), len(task.queries), len(task.corpus))


def load_eval_sets(names: Iterable[str], root: Path | None = None) -> tuple[list[EvalSet], dict[str, str]]:
    """The evaluation sets that can be read offline, and why the others cannot."""
    sets, unavailable = [], {}
    for name in dict.fromkeys(names):
        try:
            sets.append(lareqa_eval_set(name, root) if name in LAREQA_LANGS else beir_eval_set(name, root))
        except (DataError, FileNotFoundError) as e:
            unavailable[name] = str(e)
    return sets, unavailable


def audit(examples: Sequence[Example], eval_sets: Iterable[EvalSet],
          unavailable: dict[str, str] | None = None) -> dict:
    """Overlap counts per evaluation set and side (see the module docstring)."""
    train_texts = {t for ex in examples for t in ex.texts()}
    train_norm = {t: normalise(t) for t in train_texts}
    report: dict = {"train_texts": len(train_texts), "sets": {}, "unavailable": dict(unavailable or {})}
    for ev in eval_sets:
        entry = {}
        leaked_norm: set[str] = set()
        for side, texts, n in (("questions", ev.questions, ev.n_questions),
                               ("candidates", ev.candidates, ev.n_candidates)):
            normalised = {normalise(t) for t in texts}
            exact = train_texts & texts
            norm_hits = {t for t, norm in train_norm.items() if norm in normalised}
            leaked_norm |= norm_hits
            entry[side] = {"n": len(texts) if n is None else n, "exact": len(exact), "normalised": len(norm_hits)}
        entry["examples"] = sum(1 for ex in examples if any(t in leaked_norm for t in ex.texts()))
        report["sets"][ev.name] = entry
    return report


def summary(report: dict) -> str:
    parts = [f"{name}: q {e['questions']['exact']}/{e['questions']['normalised']}, "
             f"c {e['candidates']['exact']}/{e['candidates']['normalised']}" for name, e in report["sets"].items()]
    skipped = f"; not available: {', '.join(report['unavailable'])}" if report["unavailable"] else ""
    return "leakage (exact/normalised training texts found in): " + ("; ".join(parts) or "no set") + skipped
