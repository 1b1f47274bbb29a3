"""The scale section's model (a benchmark fixture): a random 2-layer, 32-wide BERT (4 heads, intermediate 64)
saved as a sentence-transformers folder (Transformer + mean Pooling + Normalize) with all-MiniLM-L6-v2's own
tokenizer (30,522 WordPiece entries, found by bench.models.provision.minilm_path, never downloaded).

Its vectors mean nothing; what it measures is the path around the model (tokenizing, batching, the pool of
encoding processes, shards, indexes, search) at a cost per token small enough to reach a million passages on a
CPU. Built deterministically (seed 0: the same bytes every time) once into $BENCH_CACHE/perf-scale/tiny-model,
published atomically, and reused."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write the model into `folder` (created if missing); deterministic for a given seed."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from bench.models.provision import minilm_path

    source = Path(minilm_path())
    folder = Path(folder)
    hf_dir = folder.parent / f"{folder.name}-hf"
    shutil.rmtree(hf_dir, ignore_errors=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(hf_dir)
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, hf_dir / name)
    try:
        transformer = Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH)
        model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"),
                                             Normalize()], device="cpu")
        model.save(str(folder))
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)
    return folder


def tiny_model_path(root: Path | None = None) -> Path:
    """The model folder under `root` (default $BENCH_CACHE/perf-scale), built on first use."""
    from bench.paths import cache_root
    from bench.safety import publish_folder

    target = Path(root or cache_root() / "perf-scale") / "tiny-model"
    if (target / "modules.json").is_file():
        return target
    return publish_folder(target, build_tiny_model,
                          keep_existing=lambda existing: (existing / "modules.json").is_file())
