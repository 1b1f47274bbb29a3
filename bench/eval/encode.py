"""Dense encoding: sentence-transformers with length-sorted batches, cosine-normalised outputs, a memo keyed
by text so a pool shared by several settings is encoded once per model, and the on-disk embedding cache
(bench/eval/cache.py) so a second run of the model on the same data encodes nothing."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from bench.eval.cache import EmbeddingCache, cache_key
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


def resolved_prompt(model, kind: str) -> str:
    """The prompt string sentence-transformers (6.2) prepends in encode_query / encode_document: the "query"
    prompt for queries; the first of "document", "passage", "corpus" for documents; else the default prompt."""
    prompts = getattr(model, "prompts", None) or {}
    candidates = ("query",) if kind == "query" else ("document", "passage", "corpus")
    name = next((c for c in candidates if c in prompts), getattr(model, "default_prompt_name", None))
    return (prompts.get(name) or "") if name is not None else ""


def routes_by_task(model) -> bool:
    """Whether the model has a Router module: its queries and documents may go through different weights."""
    try:
        from sentence_transformers.base.modules import Router
    except ImportError:  # older sentence-transformers
        return False
    return any(isinstance(m, Router) for m in model.modules())


class DenseEncoder:
    def __init__(self, spec: ModelSpec, batch_size: int = 32, device: str = "cpu", cache: bool = True):
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
        self.dim = int(self.model.get_embedding_dimension())
        # Unique texts per source, over this encoder's life: "encoded" by the model, read from the disk
        # "cache", or found in the in-process "memo".
        self.counts: Counter[str] = Counter(encoded=0, cached=0, memo=0)
        self.cache = EmbeddingCache(None, self.fingerprint, self.max_seq_length, self.dim, meta={
            "model": spec.name, "run_id": spec.key, "location": str(self.location)}) if cache else None
        self._routed = routes_by_task(self.model)

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def prompt(self, kind: str) -> str:
        return resolved_prompt(self.model, kind)

    def cache_keys(self, texts: list[str], kind: str) -> list[bytes]:
        """The disk-cache keys of `texts` encoded as `kind`: the prompt is part of the input, and for a model
        that routes queries and documents differently, so is the route."""
        prompt = self.prompt(kind)
        if self._routed:
            prompt = f"<route:{kind}>\0{prompt}"
        return [cache_key(prompt, t) for t in texts]

    def encode(self, texts: list[str], kind: str) -> np.ndarray:
        """Unit-norm embeddings (n, dim); kind 'query' or 'document' picks the model's prompt."""
        unique = list(dict.fromkeys(texts))
        missing = [t for t in unique if (kind, t) not in self._memo]
        self.counts["memo"] += len(unique) - len(missing)
        if missing and self.cache is not None:
            keys = self.cache_keys(missing, kind)
            found = self.cache.get(keys)
            for text, key in zip(missing, keys):
                if key in found:
                    self._memo[(kind, text)] = found[key]
            self.counts["cached"] += len(found)
            missing = [t for t, key in zip(missing, keys) if key not in found]
        if missing:
            encode = self.model.encode_query if kind == "query" else self.model.encode_document
            vectors = encode(missing, batch_size=self.batch_size, show_progress_bar=len(missing) > self.batch_size,
                             convert_to_numpy=True, normalize_embeddings=True)
            vectors = np.asarray(vectors, dtype=np.float32)
            self._memo.update(((kind, t), v) for t, v in zip(missing, vectors))
            self.counts["encoded"] += len(missing)
            if self.cache is not None:
                self.cache.put(self.cache_keys(missing, kind), vectors)  # one segment per call
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[(kind, t)] for t in texts])
