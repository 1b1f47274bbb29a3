"""The vocabulary-pruned me5-small (bench/models/prune.py) against the shipped files: same tokens, same rows,
same embeddings on the texts it was cut for; a text outside them is caught by the verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.models import provision, prune

TEXTS = [
    "query: how much protein should a female eat",
    "passage: As a general guideline, the CDC's average requirement of protein for women is 46 grams per day.",
    "query: Die Katze schläft auf dem Sofa im Wohnzimmer.",
    "passage: 猫正在客厅的沙发上睡觉。",
    "query: Кошка спит на диване в гостиной.",
    "passage: แมวกำลังนอนหลับอยู่บนโซฟา",
]


@pytest.fixture(scope="module")
def sources():
    try:
        return provision.me5_weights_file(), provision.me5_tokenizer_file()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def pruned(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("pruned")
    weights, tokenizer = out / "e5-small-q4.bin", out / "tokenizer.json"
    counts = prune.prune(*sources, TEXTS, weights, tokenizer)
    return weights, tokenizer, counts


def test_pruned_pair_keeps_only_the_pieces_used(sources, pruned):
    weights, tokenizer, counts = pruned
    original = json.loads(sources[1].read_text(encoding="utf-8"))
    small = json.loads(tokenizer.read_text(encoding="utf-8"))
    used = prune.used_piece_ids(original, TEXTS)
    keep = prune.kept_ids(original, used)
    assert counts == {"pieces_kept": len(keep), "pieces_total": 250002, "texts_verified": len(TEXTS)}
    assert len(keep) < 200 and used <= set(keep)
    assert [p for p, _ in small["model"]["vocab"]] == [original["model"]["vocab"][i][0] for i in keep]
    # <s> <pad> </s> <unk> keep ids 0-3; <mask> (250001) becomes the last piece.
    assert keep[:4] == [0, 1, 2, 3] and small["added_tokens"][-1] == {**original["added_tokens"][-1], "id": len(keep) - 1}


def test_pruned_file_has_the_same_rows_and_tensors(sources, pruned):
    weights, tokenizer, _ = pruned
    big_buf, small_buf = sources[0].read_bytes(), weights.read_bytes()
    big, small = provision.parse_e5_file(big_buf), provision.parse_e5_file(small_buf)
    original = json.loads(sources[1].read_text(encoding="utf-8"))
    keep = prune.kept_ids(original, prune.used_piece_ids(original, TEXTS))
    provision.check_vocabulary(small, json.loads(tokenizer.read_text(encoding="utf-8")))
    assert small.header == {**big.header, "vocab_rows": len(keep)}
    assert set(small.tensors) == set(big.tensors)
    for name in big.tensors:
        a, b = provision.tensor_values(big_buf, big.tensors[name]), provision.tensor_values(small_buf, small.tensors[name])
        if name == "emb.word":
            a = a.reshape(big.header["vocab_rows"], -1)[keep].reshape(-1)
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_verification_catches_a_text_outside_the_set(sources, pruned):
    original = json.loads(sources[1].read_text(encoding="utf-8"))
    keep = prune.kept_ids(original, prune.used_piece_ids(original, TEXTS))
    small = json.loads(pruned[1].read_text(encoding="utf-8"))
    assert prune.verify_same_tokens(original, small, keep, TEXTS) == len(TEXTS)
    with pytest.raises(ValueError, match="segments"):
        prune.verify_same_tokens(original, small, keep, ["query: photosynthesis in chloroplasts"])


@pytest.mark.slow
def test_pruned_model_embeds_its_texts_exactly_as_the_full_one(pruned, tmp_path):
    from sentence_transformers import SentenceTransformer

    weights, tokenizer, _ = pruned
    folder = tmp_path / "me5-pruned"
    folder.mkdir()
    provision.write_me5_folder(folder, weights, tokenizer)
    full = SentenceTransformer(str(provision.me5_small_path()), device="cpu")
    small = SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_array_equal(full.encode(TEXTS), small.encode(TEXTS))
