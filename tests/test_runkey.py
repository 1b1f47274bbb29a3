"""bench/runkey.py: one format for a run's key, read back by one parser, whatever path built the spec."""

from __future__ import annotations

import pytest

from bench.models.registry import (resolve_model, with_backend, with_max_seq_length, with_precision, with_prompts,
                                   with_search)
from bench.runkey import RunKey

KEYS = [
    ("me5-small", RunKey("me5-small")),
    ("bm25-k1.2-b0.75", RunKey("bm25-k1.2-b0.75")),
    ("me5-small-L128", RunKey("me5-small", length=128)),
    ("me5-small+bf16", RunKey("me5-small", precision="bf16")),
    ("minilm-l6-L256+int8", RunKey("minilm-l6", length=256, backend="int8")),
    ("hybrid-a0.5-me5-small-mlqa-r-s1-300steps-bf16@1a2b3c4d-L128+bf16",
     RunKey("hybrid-a0.5-me5-small-mlqa-r-s1-300steps-bf16@1a2b3c4d", length=128, precision="bf16")),
    ("me5-small+onnx+hnsw+p0123abcd", RunKey("me5-small", backend="onnx", search="hnsw", prompt="0123abcd")),
    ("intfloat/multilingual-e5-small", RunKey("intfloat/multilingual-e5-small")),
]


@pytest.mark.parametrize("text, key", KEYS)
def test_round_trip(text, key):
    assert RunKey.parse(text) == key
    assert key.format() == text


def test_parts():
    key = RunKey.parse("xy-me5-small-mlqa-r-s2-300steps@deadbeef-L128+bf16")
    assert (key.checkpoint, key.fingerprint, key.variants) == ("xy-me5-small-mlqa-r-s2-300steps", "deadbeef",
                                                               ("L128", "bf16"))
    assert RunKey.parse("me5-small").fingerprint is None and RunKey.parse("me5-small").variants == ()


@pytest.mark.parametrize("text", ["me5-small+fp16", "me5-small+bf16+bf16", "me5-small+int8+onnx", "", "+bf16"])
def test_unknown_or_repeated_suffixes_are_refused(text):
    with pytest.raises(ValueError):
        RunKey.parse(text)


def test_one_key_whatever_the_order_of_options():
    """The CLI applies precision before the length cut, an experiment the other way round: one key."""
    base = resolve_model("me5-small")
    cli = with_max_seq_length(with_search(with_precision(with_backend(base, "torch"), "bf16"), "exact"), 128)
    experiment = with_precision(with_max_seq_length(base, 128), "bf16")
    assert cli.key == experiment.key == "me5-small-L128+bf16"
    assert RunKey.parse(cli.key) == cli.run_key


def test_every_variant_of_the_registry_round_trips():
    base = resolve_model("minilm-l6")
    spec = with_prompts(with_search(with_max_seq_length(with_backend(base, "int8"), 64), "faiss-hnsw"), "q: ", "")
    assert RunKey.parse(spec.key) == spec.run_key
    assert spec.key.startswith("minilm-l6-L64+int8+hnsw+p")
