"""Dense encoding: sentence-transformers with length-sorted batches, cosine-normalised outputs, and a
memo keyed by text so a pool shared by several settings is encoded once per model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from bench.models.registry import ModelSpec


def document_text(doc: dict[str, str]) -> str:
    """Title and text joined as beir's SentenceBERT does, so scores match beir's pipeline."""
    return (doc.get("title", "") + " " + doc.get("text", "")).strip()


def folder_fingerprint(folder: Path) -> str:
    """sha256 over the files of a model folder (names and bytes): identifies the exact weights."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


class DenseEncoder:
    def __init__(self, spec: ModelSpec, batch_size: int = 32, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(os.cpu_count() or 1)
        self.spec = spec
        self.location = spec.locate()
        self.model = SentenceTransformer(self.location, device=device)
        if spec.max_seq_length:
            self.model.max_seq_length = spec.max_seq_length
        self.batch_size = batch_size
        self.fingerprint = (folder_fingerprint(Path(self.location)) if Path(self.location).is_dir()
                            else f"hf:{self.location}")
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], kind: str) -> np.ndarray:
        """Unit-norm embeddings (n, dim); kind 'query' or 'document' picks the model's prompt."""
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self._memo))
        if missing:
            encode = self.model.encode_query if kind == "query" else self.model.encode_document
            vectors = encode(missing, batch_size=self.batch_size, show_progress_bar=len(missing) > self.batch_size,
                             convert_to_numpy=True, normalize_embeddings=True)
            self._memo.update(((kind, t), v.astype(np.float32)) for t, v in zip(missing, vectors))
        dim = self.model.get_embedding_dimension()
        if not texts:
            return np.empty((0, dim), dtype=np.float32)
        return np.stack([self._memo[(kind, t)] for t in texts])
