"""Shared fixtures: a tiny random sentence-transformers model, a small BEIR-layout folder (and malformed
variants of it), isolated cache/results folders, and the data-mirror skip."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# huggingface_hub reads HF_HUB_OFFLINE when it is first imported: set it before any test module imports
# transformers or sentence-transformers (the autouse fixture below keeps it set for every test).
os.environ["HF_HUB_OFFLINE"] = "1"

from bench.paths import data_root  # noqa: E402

# ----------------------------------------------------------------------------------------------- mirror

MIRROR_HINT = "needs the data mirror ../shared/data or BENCH_DATA"


def mirror_root() -> Path:
    """The offline data mirror as the harness sees it (BENCH_DATA, else ../shared/data, else the cache)."""
    return data_root()


def has_mirror() -> bool:
    return (mirror_root() / "beir" / "scifact").is_dir()


# Evaluated once, at collection, before any test changes BENCH_DATA.
MIRROR = mirror_root()
needs_mirror = pytest.mark.skipif(not (MIRROR / "beir" / "scifact").is_dir(), reason=MIRROR_HINT)


def needs_data(subdir: str, what: str):
    """A decorator: mark a test as needing <mirror>/<subdir>, and skip it with a reason when absent."""
    skip = pytest.mark.skipif(not (MIRROR / subdir).is_dir(),
                              reason=f"no {what} under {MIRROR}/{subdir} (set BENCH_DATA to the data mirror)")
    return lambda test: pytest.mark.mirror(skip(test))


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The mirror root; skips the test when <root>/beir/scifact is absent."""
    if not (MIRROR / "beir" / "scifact").is_dir():
        pytest.skip(MIRROR_HINT)
    return MIRROR


# ------------------------------------------------------------------------------------------- isolation


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory):
    """BENCH_CACHE in a per-session temp folder and the Hugging Face hub offline."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("bench-cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(autouse=True)
def _results_env(tmp_path, monkeypatch):
    """BENCH_RESULTS in a per-test temp folder: no test writes into the repository's results/."""
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# ------------------------------------------------------------------------------------------ tiny model

# English sentences the tiny WordPiece vocabulary is trained on (with the fixture's own texts).
TOKENIZER_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A retrieval model maps queries and documents into one vector space.",
    "Dense retrievers are trained with contrastive losses and in-batch negatives.",
    "The library opens at nine in the morning and closes at six in the evening.",
    "Children played football in the park until the sun went down.",
    "She wrote a long letter to her grandmother about the summer holidays.",
    "Scientists measured the temperature of the lake every week for ten years.",
    "The committee approved the new budget after a short discussion.",
    "Fresh bread, cheese and apples were sold at the market on Saturday.",
    "The train to the city was delayed because of heavy snow on the tracks.",
    "He learned to play the piano when he was seven years old.",
    "Doctors recommend regular exercise, good sleep and a balanced diet.",
    "The museum shows paintings, sculptures and old maps of the region.",
    "Engineers tested the bridge with heavy trucks before it opened.",
    "Birds migrate south in autumn and return north in spring.",
    "The students read the chapter and answered questions about the story.",
]


def wordpiece_vocab(texts: list[str], size: int = 420) -> dict[str, int]:
    """A WordPiece vocabulary learnt from `texts`, deterministically: the specials, every character (alone and
    as a "##" continuation), then whole words by frequency (ties alphabetical), up to `size` entries.

    Words are cut by the tokenizers library's own BERT normalizer and pre-tokenizer. (Its WordPieceTrainer is
    not used: it breaks equal pair counts in hash-map order, so its vocabulary changes from run to run.)"""
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(word for text in texts
                     for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({ch for word in counts for ch in word} | set("0123456789"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{ch}" for ch in chars)]
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(tokens) >= size:
            break
        if word not in tokens:
            tokens.append(word)
    return {token: i for i, token in enumerate(tokens)}


def build_tiny_model(folder: Path, texts: list[str], seed: int = 0) -> Path:
    """A 2-layer, 32-wide BertModel (4 heads, intermediate 64, 128 positions) with a WordPiece vocabulary learnt
    from `texts`, saved as a sentence-transformers folder (Transformer + mean Pooling + Normalize).
    Deterministic: the same texts and seed give byte-identical files."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = wordpiece_vocab(texts)
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece()
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    hf_dir = folder.parent / f"{folder.name}-hf"
    BertModel(config).save_pretrained(hf_dir)
    fast.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"),
                                         Normalize()], device="cpu")
    model.save(str(folder))
    shutil.rmtree(hf_dir)
    return folder


def tiny_model_texts() -> list[str]:
    """What the tiny model's vocabulary is learnt from: general sentences plus the BEIR fixture's texts."""
    return TOKENIZER_TEXTS + [f"{d['title']} {d['text']}" for d in FIXTURE_CORPUS] + list(FIXTURE_QUERIES.values())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random sentence-transformers model folder named "tiny-bert" (builds in well under a second)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bert", tiny_model_texts())


# --------------------------------------------------------------------------------------- BEIR fixture

# 30 documents: 8 topics x 3, 5 distractors, and one document whose id is a query id (q8).
# Queries share words with their relevant docs.
_TOPICS = {
    "coffee": [
        ("Coffee and sleep", "Caffeine in coffee delays sleep onset and reduces deep sleep when drunk late in the evening."),
        ("Caffeine metabolism", "The liver breaks down caffeine; half of the caffeine from coffee is gone after five hours."),
        ("Tea and coffee", "Tea contains less caffeine than coffee but still affects sleep in sensitive people."),
    ],
    "vitamin": [
        ("Vitamin D and bones", "Vitamin D deficiency weakens bones and raises the risk of fractures in older adults."),
        ("Sunlight and vitamin D", "Skin makes vitamin D from sunlight; winter months lower vitamin D levels."),
        ("Calcium intake", "Calcium and vitamin D together support bone health and bone density."),
    ],
    "solar": [
        ("Solar panels", "Solar panels convert sunlight into electricity with silicon cells on the roof."),
        ("Solar energy storage", "Batteries store solar energy so that electricity is available at night."),
        ("Wind and solar", "Wind turbines and solar panels are the main sources of renewable electricity."),
    ],
    "bees": [
        ("Honey bees", "Honey bees pollinate crops and flowers while collecting nectar for honey."),
        ("Bee colony collapse", "Pesticides and parasites cause bee colony collapse and fewer honey bees."),
        ("Wild pollinators", "Wild bees and butterflies pollinate flowers in meadows and gardens."),
    ],
    "volcano": [
        ("Volcano eruptions", "A volcano erupts when magma rises and lava flows down the mountain."),
        ("Lava and ash", "Volcanic ash clouds from an eruption can stop flights for days."),
        ("Volcano monitoring", "Scientists monitor volcano earthquakes to predict the next eruption."),
    ],
    "python": [
        ("Python testing", "Python programmers write tests with pytest to check their software."),
        ("Software bugs", "Unit tests find software bugs before the program is released."),
        ("Python packages", "Python packages are installed with pip from the package index."),
    ],
    "marathon": [
        ("Marathon training", "Marathon runners train for months and run long distances every week."),
        ("Running shoes", "Good running shoes protect the knees of marathon runners."),
        ("Race nutrition", "Runners eat pasta before a marathon race to store energy."),
    ],
    "tides": [
        ("Ocean tides", "The moon pulls the ocean and causes high tides and low tides."),
        ("Spring tides", "When the sun and moon align, spring tides are higher than usual tides."),
        ("Tidal power", "Tidal power stations use ocean tides to make electricity."),
    ],
}
_DISTRACTORS = [
    ("Medieval castles", "Stone castles were built on hills with thick walls and towers."),
    ("Chess openings", "A chess player opens with the king pawn or the queen pawn."),
    ("Bread baking", "Bakers knead dough and let the bread rise before baking it in the oven."),
    ("Mountain hiking", "Hikers carry maps, water and warm clothes in the mountains."),
    ("Jazz music", "Jazz musicians improvise melodies over swing rhythms."),
]

FIXTURE_CORPUS: list[dict[str, str]] = [
    {"_id": f"{topic}{i}", "title": title, "text": text}
    for topic, docs in _TOPICS.items() for i, (title, text) in enumerate(docs, 1)
] + [{"_id": f"other{i}", "title": title, "text": text} for i, (title, text) in enumerate(_DISTRACTORS, 1)] + [
    # A document whose id equals a query id (as in ArguAna): BEIR drops it from that query's ranking.
    {"_id": "q8", "title": "Ocean tides moon", "text": "What causes ocean tides? The moon."},
]

FIXTURE_QUERIES: dict[str, str] = {
    "q1": "does coffee caffeine harm sleep",
    "q2": "vitamin d deficiency and bone fractures",
    "q3": "how do solar panels make electricity",
    "q4": "why are honey bees disappearing",
    "q5": "predict volcano eruption lava",
    "q6": "testing python software with pytest",
    "q7": "marathon runners training distances",
    "q8": "what causes ocean tides moon",
    # Judged only in the train split: the test task must leave them out.
    "q9": "tidal electricity from the ocean",
    "q10": "chess pawn openings",
}

# Graded judgements (2 = highly relevant, 1 = partly relevant, 0 = judged not relevant).
FIXTURE_QRELS: dict[str, dict[str, dict[str, int]]] = {
    "test": {
        "q1": {"coffee1": 2, "coffee2": 1, "coffee3": 1},
        "q2": {"vitamin1": 2, "vitamin3": 1},
        "q3": {"solar1": 2, "solar3": 1, "solar2": 0},
        "q4": {"bees2": 2, "bees1": 1},
        "q5": {"volcano1": 2, "volcano3": 2, "volcano2": 1},
        "q6": {"python1": 2, "python2": 1},
        "q7": {"marathon1": 2, "marathon2": 1, "marathon3": 1},
        "q8": {"tides1": 2, "tides2": 1},
    },
    "train": {
        "q9": {"tides3": 1},
        "q10": {"other2": 1},
    },
}


def write_jsonl(path: Path, records: list) -> None:
    """One JSON value a line; a str record is written as-is (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write((record if isinstance(record, str) else json.dumps(record)) + "\n")


def write_qrels(path: Path, qrels: dict[str, dict[str, int]], header: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] if header else []
    lines += [f"{q}\t{d}\t{s}" for q, judged in qrels.items() for d, s in judged.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_beir_folder(folder: Path, corpus=None, queries=None, qrels=None) -> Path:
    """A BEIR-layout folder; defaults to the fixture data. `corpus`/`queries`: lists of records (dicts or raw
    lines); `qrels`: split -> judgements dict or raw file text."""
    corpus = FIXTURE_CORPUS if corpus is None else corpus
    queries = [{"_id": q, "text": t} for q, t in FIXTURE_QUERIES.items()] if queries is None else queries
    qrels = FIXTURE_QRELS if qrels is None else qrels
    write_jsonl(folder / "corpus.jsonl", corpus)
    write_jsonl(folder / "queries.jsonl", queries)
    for split, judged in qrels.items():
        path = folder / "qrels" / f"{split}.tsv"
        if isinstance(judged, str):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(judged, encoding="utf-8")
        else:
            write_qrels(path, judged)
    return folder


@pytest.fixture
def beir_fixture_dir(tmp_path) -> Path:
    """A small BEIR folder laid out as <tmp>/beir/scifact/ (so BENCH_DATA=<tmp> makes the beir suite's
    "scifact" read it): 30 docs with titles, 10 queries, qrels/test.tsv (8 queries, graded) and train.tsv."""
    return write_beir_folder(tmp_path / "data" / "beir" / "scifact")


@pytest.fixture
def beir_variant(tmp_path) -> Callable[..., Path]:
    """Factory for malformed variants: `beir_variant(corpus=..., queries=..., qrels=..., remove=(...))`
    writes the fixture with the given parts replaced (see write_beir_folder) and the named files deleted."""
    counter = iter(range(1000))

    def make(corpus=None, queries=None, qrels=None, remove: tuple[str, ...] = ()) -> Path:
        folder = write_beir_folder(tmp_path / f"variant{next(counter)}", corpus, queries, qrels)
        for name in remove:
            (folder / name).unlink()
        return folder

    return make


@pytest.fixture
def fixture_data() -> dict:
    """The fixture's records, for tests that compute expectations from them."""
    return {"corpus": FIXTURE_CORPUS, "queries": FIXTURE_QUERIES, "qrels": FIXTURE_QRELS}


# Fixtures of the shared helpers, registered here so that every test module may ask for them.
from support.runner import data_env  # noqa: E402,F401
from support.training import data_dir  # noqa: E402,F401
