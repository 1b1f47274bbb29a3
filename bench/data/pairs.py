"""Training examples from parallel QA (XQuAD-R, MLQA-R) and, optionally, Tatoeba bitext.

An example is (question in language q, answer sentence in language p), with a hard negative: another
sentence of the same p paragraph. For each question id and each ordered pair of languages (q, p) in
which the id has a version, the question text comes from the q version and the answer sentence from
the p version (each version carries its own answer sentence; MLQA-R ids have 2-4 versions, XQuAD-R
ids all 11). Language tags stay on the example, beside the texts, so that samplers can compose
batches by language without the tags ever reaching the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.data.lareqa import LareqaData, load_lareqa
from bench.data.task import DataError


@dataclass(frozen=True)
class Example:
    query: str
    positive: str
    negative: str | None  # hard negative (another sentence of the positive's paragraph), or None
    query_lang: str
    doc_lang: str
    qid: str  # shared by every example built from the same question (or the same bitext line)
    source: str = ""  # "mlqa-r", "xquad-r", "tatoeba", "parallel-questions"

    @property
    def is_mono(self) -> bool:
        return self.query_lang == self.doc_lang

    def texts(self) -> tuple[str, ...]:
        return (self.query, self.positive) if self.negative is None else (self.query, self.positive, self.negative)


def _data(dataset: str | LareqaData, root: Path | None, langs: Iterable[str] | None) -> LareqaData:
    if isinstance(dataset, LareqaData):
        if langs is None:
            return dataset
        wanted = set(langs)
        unknown = wanted - set(dataset.langs)
        if unknown:
            raise DataError(f"language(s) {', '.join(sorted(unknown))} not loaded for {dataset.dataset}; "
                            f"loaded: {', '.join(dataset.langs)}")
        return LareqaData(dataset.dataset, tuple(lang for lang in dataset.langs if lang in wanted),
                          [q for q in dataset.questions if q.lang in wanted], dataset.candidates,
                          dataset.paragraphs, dataset.warnings)
    return load_lareqa(dataset, root, langs)


def training_examples(dataset: str | LareqaData, root: Path | None = None, langs: Iterable[str] | None = None,
                      hard_negatives: bool = True, seed: int = 0) -> list[Example]:
    """Every (q, p) example of a LAReQA dataset, mono (q = p) and cross (q != p), in a fixed order.

    The hard negative is drawn, deterministically for a seed, among the other sentences of the answer's
    paragraph whose text differs from the answer's; it is None when there is none (one-sentence
    paragraph) or when hard_negatives is False.
    """
    data = _data(dataset, root, langs)
    order = {lang: i for i, lang in enumerate(data.langs)}
    examples: list[Example] = []
    for qid, versions in data.versions.items():
        present = sorted(versions, key=order.__getitem__)
        for q in present:
            for p in present:
                question, target = versions[q], versions[p]
                answer = data.candidates[target.answer]
                negative = None
                if hard_negatives:
                    others = [data.candidates[c].text for c in data.paragraphs[answer.paragraph]
                              if c != answer.id and data.candidates[c].text.strip() != answer.text.strip()]
                    if others:
                        # A string seed is hashed with sha512: the same choice in every process.
                        negative = random.Random(f"{seed}:{qid}:{q}:{p}").choice(others)
                examples.append(Example(question.text, answer.text, negative, q, p, qid, data.dataset))
    return examples


def question_pairs(dataset: str | LareqaData, root: Path | None = None,
                   langs: Iterable[str] | None = None) -> list[Example]:
    """Parallel questions: (question in x, the same question in y) for x != y, no negative. The
    translation-ranking head of the `mtl` trainer learns from these."""
    data = _data(dataset, root, langs)
    order = {lang: i for i, lang in enumerate(data.langs)}
    pairs = []
    for qid, versions in data.versions.items():
        present = sorted(versions, key=order.__getitem__)
        pairs += [Example(versions[x].text, versions[y].text, None, x, y, qid, "parallel-questions")
                  for x in present for y in present if x != y]
    return pairs


def tatoeba_examples(langs: Sequence[str], root: Path | None = None) -> list[Example]:
    """Tatoeba bitext as cross-lingual pairs: sentence in xx <-> its English translation, both
    directions, no hard negative. Languages by ISO 639-1 code (or LASER file code); empty lines skipped."""
    from bench.data.tatoeba import TATOEBA_TO_ISO1, file_code, load_pairs

    examples: list[Example] = []
    for lang in dict.fromkeys(langs):
        if lang in ("en", "eng"):
            continue  # English is the other side of every pair
        code = file_code(lang, root)
        name = TATOEBA_TO_ISO1.get(code, code)
        other, eng = load_pairs(lang, root)
        for i, (x, e) in enumerate(zip(other, eng)):
            if x and e:
                qid = f"tatoeba:{code}:{i}"
                examples += [Example(x, e, None, name, "en", qid, "tatoeba"),
                             Example(e, x, None, "en", name, qid, "tatoeba")]
    return examples


def examples_fingerprint(examples: Iterable[Example]) -> str:
    """sha256 over the examples in order (texts, tags, ids): identifies the exact training data."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps(asdict(ex), ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]
