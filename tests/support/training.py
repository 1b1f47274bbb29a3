"""A small LAReQA-format dataset for training tests, and the training options they share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.train.run import TrainOptions
from conftest import FIXTURE_CORPUS, TOKENIZER_TEXTS

LANGS = ("de", "en", "es")


SENTENCES = TOKENIZER_TEXTS + [d["text"] for d in FIXTURE_CORPUS]


TAGS = {"en": "", "de": " (de)", "es": " (es)", "zh": " (zh)", "ar": " (ar)"}


def write_lareqa_fixture(root: Path, dataset: str, langs=LANGS, paragraphs: int = 6, sentences: int = 5,
                         questions: int = 3, offset: int = 0, missing: tuple[tuple[str, str], ...] = ()) -> Path:
    """SQuAD-style files <root>/lareqa/<dataset>/<lang>.json with `sentences` and `sentence_breaks`: each
    paragraph holds `sentences` distinct sentences and `questions` questions answered by sentences 1..questions;
    a question id links its versions across languages; `missing` lists (qid, lang) versions left out."""
    folder = root / "lareqa" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        paras = []
        for p in range(paragraphs):
            texts = [SENTENCES[(offset + p * sentences + s) % len(SENTENCES)] + TAGS[lang] for s in range(sentences)]
            context, breaks = "", []
            for text in texts:
                start = len(context) + (1 if context else 0)
                context = f"{context} {text}" if context else text
                breaks.append([start, start + len(text)])
            qas = []
            for k in range(questions):
                qid = f"{dataset}-{p}-{k}"
                if (qid, lang) in missing:
                    continue
                start, _ = breaks[k + 1]
                answer = texts[k + 1].split()[0]
                words = " ".join(texts[k + 1].split()[1:4])
                qas.append({"id": qid, "question": f"Which {words} is meant?{TAGS[lang]}",
                            "answers": [{"answer_start": start, "text": answer}]})
            paras.append({"context": context, "sentences": texts, "sentence_breaks": breaks, "qas": qas})
        doc = {"version": "1.1", "data": [{"title": f"{dataset} fixture", "paragraphs": paras}]}
        (folder / f"{lang}.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    # MLQA-R-like: some questions lack a version; XQuAD-R-like: all versions, partly the same sentences.
    write_lareqa_fixture(root, "mlqa-r", missing=(("mlqa-r-0-0", "es"), ("mlqa-r-1-2", "de")))
    write_lareqa_fixture(root, "xquad-r", paragraphs=3, offset=20)
    tatoeba = root / "tatoeba"
    tatoeba.mkdir()
    (tatoeba / "tatoeba.deu-eng.deu").write_text("\n".join(f"{s} (de)" for s in TOKENIZER_TEXTS[:10]) + "\n")
    (tatoeba / "tatoeba.deu-eng.eng").write_text("\n".join(TOKENIZER_TEXTS[:10]) + "\n")
    monkeypatch.setenv("BENCH_DATA", str(root))
    return root


def options(tiny: Path, out: Path, **kwargs) -> TrainOptions:
    # One thread: the tiny model gains nothing from more, and a busy machine makes them much slower.
    values = dict(trainer="hybrid", base=str(tiny), train_data="mlqa-r", langs=LANGS, steps=4, batch_size=4,
                  max_seq_length=32, log_every=2, out_dir=str(out), threads=1)
    values.update(kwargs)
    return TrainOptions(**values)


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def weights(path: Path) -> bytes:
    return (path / "model.safetensors").read_bytes()


def quiet(*_):
    pass
