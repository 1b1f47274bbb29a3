"""Writing a checkpoint: the sentence-transformers folder, the heads, the manifest; atomically."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

from bench.paths import PROJECT_ROOT
from bench.safety import publish_folder
from bench.train.options import MANIFEST, MtlWeights


def code_fingerprint() -> str:
    """sha256 over the bench package's Python sources (paths and bytes)."""
    digest = hashlib.sha256()
    package = PROJECT_ROOT / "bench"
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def save_checkpoint(folder: Path, model, own_max_seq_length: int | None, classifier, uses_heads: bool,
                    weights: MtlWeights, manifest: dict, wall_start: float) -> None:
    """The model with the base model's own length limit, its heads (mtl) and the manifest, into `folder`.

    Training truncates at --max-seq-length (128 by default), but that cut is a training option, kept in the
    manifest: a checkpoint saved with it would be scored at 128 tokens everywhere (BEIR documents cut), unlike
    its base model. So the saved sentence_bert_config.json carries the base model's own limit."""
    cut = model.max_seq_length
    model.max_seq_length = own_max_seq_length
    try:
        model.save(str(folder), create_model_card=False)
    finally:
        model.max_seq_length = cut
    if uses_heads:
        save_extra = {"weights": asdict(weights), "translation_ranking": {"type": "in-batch InfoNCE, both "
                      "directions, cosine", "scale": manifest["options"]["scale"], "parameters": 0}}
        from bench.train.heads import save_heads

        save_heads(folder, classifier, save_extra)
    manifest["wall_seconds"] = round(time.perf_counter() - wall_start, 3)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))


def write_checkpoint(target: Path, force: bool, write) -> None:
    """write(folder) and publish it at target (bench.safety.publish_folder): a failure leaves nothing behind,
    and a reader never sees a half-written checkpoint. An existing target is replaced only with force."""
    def refuse_unless_forced(existing: Path) -> bool:
        if not force:
            raise ValueError(f"{existing} appeared while training; pass --force to overwrite it")
        return False

    publish_folder(target, write, keep_existing=refuse_unless_forced)
