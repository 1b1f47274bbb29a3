"""Dense encoding: sentence-transformers modules driven by our own batching, outputs as the model's similarity
function needs them (L2-normalised for cosine, the default; as the model gives them for dot, euclidean and
manhattan, see bench/retrieval/dense/search.py), a memo
keyed by text so a pool shared by several settings is encoded once per model, and the on-disk embedding cache
(bench/retrieval/dense/cache.py) so a second run of the model on the same data encodes nothing.

Batching: texts are sorted by their *token* count (sentence-transformers sorts by characters, a loose proxy)
and cut into batches by a padded-token budget, so a batch of long passages holds few rows and a batch of short
queries many; padding waste stays small and the attention matrices of long batches stay bounded. Each batch
goes through exactly the modules and preprocessing `model.encode` uses, under torch.inference_mode, so fp32
vectors match `model.encode`'s to float rounding (tests check 1e-6).

Precision "bf16" runs the Transformer module under bf16 autocast (its matmuls in oneDNN's / cuBLAS's bf16
kernels, weights still fp32); the token embeddings are cast back to fp32 before pooling and normalisation, and
vectors are stored and searched in fp32. The cache keeps bf16 vectors apart from fp32 ones (its variant), and the
unnormalised vectors of a non-cosine model apart from normalised ones (variant `sim-<name>`; cosine models keep
the cache folders they always had).

Prompts: the model's own (resolved_prompt) unless the spec overrides them (--query-prompt / --doc-prompt); the
prompt is part of every cache key, so an override never reads vectors made with another prompt. A model given
as a Hugging Face id is fingerprinted as `hf:<id>@<commit>`, the revision resolved from the local cache."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bench import interrupts
from bench.digest import folder_fingerprint
from bench.machine import usable_cores
from bench.models.registry import ModelSpec, folder_similarity, hub_revision, hub_snapshot
from bench.paths import environment
from bench.precision import autocast, cast_linear_weights, check_precision, sentence_embeddings
from bench.retrieval.dense.backends import OnnxTransformer, check_backend, quantize_int8
from bench.retrieval.dense.batching import TOKENS_PER_ROW, EncodeStats, length_batches
from bench.retrieval.dense.cache import EmbeddingCache, cache_key
from bench.retrieval.dense.loading import (default_device, load_sentence_transformer, model_similarity,
                                           resolved_prompt, routes_by_task)


def document_text(doc: dict[str, str]) -> str:
    """Title and text joined as beir's SentenceBERT does, so scores match beir's pipeline."""
    return (doc.get("title", "") + " " + doc.get("text", "")).strip()


# A long encode hands what it has done to the embedding cache this often: a kill (a session's end) loses at most
# this much encoding. Each save is one cache segment. Ctrl-C / SIGTERM lose nothing: the batch under way finishes
# and what is done is saved (the watchdog allows STOP_GRACE for it; me5-small, 32 rows at 512 tokens on 2 cores:
# about 2 s).
SAVE_SECONDS = 120
STOP_GRACE = 60.0


class DenseEncoder:
    """backend: "torch" (the reference), "int8" or "onnx" (see bench/retrieval/dense/backends.py; default: the spec's);
    precision: "fp32" or "bf16" for the torch backend (default: the spec's). The embedding cache keeps vectors of
    a non-fp32 backend or precision apart (its variant tag), and so the unnormalised ones of a non-cosine model.
    similarity: the model's similarity function; revision: the Hugging Face commit of a model given as an id."""

    def __init__(self, spec: ModelSpec, batch_size: int = 32, device: str | None = None, cache: bool = True,
                 backend: str | None = None, threads: int | None = None):
        self.threads = threads or usable_cores()
        torch.set_num_threads(self.threads)
        self.spec = spec
        self.backend = check_backend(backend or spec.backend)
        # int8 and ONNX are CPU backends; fp32 runs where asked, else on the GPU when there is one.
        self.device = "cpu" if self.backend != "torch" else (device or default_device())
        self.precision = check_precision(spec.precision, self.device)
        if self.precision != "fp32" and self.backend != "torch":
            raise ValueError(f"precision {self.precision} applies to the torch backend, not {self.backend}")
        self.location = spec.locate()
        if Path(self.location).is_dir():
            folder_similarity(self.location)  # an unknown similarity_fn_name fails before the weights load
        self.model = load_sentence_transformer(spec, self.location, self.device)
        self.similarity = model_similarity(self.model, self.location)
        # Only cosine normalises: dot, euclidean and manhattan score the vectors as the model outputs them.
        self.normalize = self.similarity == "cosine"
        self.revision: str | None = None
        if spec.hub_id is not None:
            snapshot = None if Path(self.location).is_dir() else hub_snapshot(spec.hub_id)  # downloaded just now
            self.revision = hub_revision(self.location) or (snapshot[1] if snapshot else None)
            if snapshot is not None:
                self.similarity = folder_similarity(snapshot[0])
                self.normalize = self.similarity == "cosine"
        if spec.max_seq_length:
            self.model.max_seq_length = spec.max_seq_length
        self.model.eval()
        if self.backend == "torch" and not routes_by_task(self.model):
            cast_linear_weights(self.model[0], self.precision)  # numerically a no-op under autocast; saves copies
        self.batch_size = batch_size
        self.tokens_per_row = TOKENS_PER_ROW  # `bench perf --section budget` times other values
        if spec.hub_id is not None:  # the revision, not the bytes: hashing a hub model's files costs seconds
            self.fingerprint = f"hf:{spec.hub_id}" + (f"@{self.revision}" if self.revision else "")
        else:
            self.fingerprint = (folder_fingerprint(Path(self.location)) if Path(self.location).is_dir()
                                else f"hf:{self.location}")
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        self.dim = int(self.model.get_embedding_dimension())
        # Unique texts per source, over this encoder's life: "encoded" by the model, read from the disk
        # "cache", or found in the in-process "memo".
        self.counts: Counter[str] = Counter(encoded=0, cached=0, memo=0)
        self.stats = EncodeStats()
        # Cosine adds no tag, so the folders of every cosine model (all results so far) stay where they were.
        variant = "+".join(v for v in (self.backend if self.backend != "torch" else "",
                                        self.precision if self.precision != "fp32" else "",
                                        f"sim-{self.similarity}" if self.similarity != "cosine" else "") if v)
        self.variant = variant  # the cache folder's tag, shared by on-disk shards (shards.py)
        self.cache = EmbeddingCache(None, self.fingerprint, self.max_seq_length, self.dim, variant=variant, meta={
            "model": spec.name, "run_id": spec.key, "location": str(self.location),
            **({"similarity_fn_name": self.similarity} if self.similarity != "cosine" else {}),
            **({"revision": self.revision} if self.revision else {})}) if cache else None
        self._routed = routes_by_task(self.model)
        self._forward = self._backend_forward()

    def _backend_forward(self):
        if self.backend == "int8":
            quantize_int8(self.model)
        if self.backend == "onnx":
            safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in self.fingerprint)
            return OnnxTransformer(self.model, safe, self.threads)
        return self.model

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def prompt(self, kind: str) -> str:
        """The prompt prepended to `kind` texts: the spec's override when given ("" for none), else the model's."""
        override = self.spec.query_prompt if kind == "query" else self.spec.doc_prompt
        return resolved_prompt(self.model, kind) if override is None else override

    def finish(self, vectors: torch.Tensor) -> np.ndarray:
        """float32 rows as the similarity function scores them: unit-norm for cosine, as they are otherwise."""
        vectors = vectors.float()
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors.cpu().numpy()

    def prompt_key(self, kind: str) -> str:
        """What keys `kind` texts besides the text: the prompt, and for a model that routes queries and documents
        differently, the route."""
        prompt = self.prompt(kind)
        return f"<route:{kind}>\0{prompt}" if self._routed else prompt

    def cache_keys(self, texts: list[str], kind: str) -> list[bytes]:
        """The disk-cache keys of `texts` encoded as `kind`: the prompt is part of the input, and for a model
        that routes queries and documents differently, so is the route."""
        prompt = self.prompt_key(kind)
        return [cache_key(prompt, t) for t in texts]

    def encode(self, texts: list[str], kind: str) -> np.ndarray:
        """Embeddings (n, dim), unit-norm for cosine models; kind 'query' or 'document' picks the prompt."""
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
            saved = np.zeros(len(missing), dtype=bool)

            def save(rows: np.ndarray, vectors: np.ndarray) -> None:
                self.cache.put(self.cache_keys([missing[i] for i in rows], kind), vectors)
                saved[rows] = True

            vectors = self.embed(missing, kind, save if self.cache is not None else None)
            self._memo.update(((kind, t), v) for t, v in zip(missing, vectors))
            self.counts["encoded"] += len(missing)
            if self.cache is not None and not saved.all():
                save(np.flatnonzero(~saved), vectors[~saved])  # one segment for the rest
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[(kind, t)] for t in texts])

    def embed(self, texts: list[str], kind: str,
              save: Callable[[np.ndarray, np.ndarray], None] | None = None) -> np.ndarray:
        """Run the model on `texts` (no memo, no cache): float32 (n, dim), unit-norm for cosine models.
        save(rows, vectors), when given, receives the rows encoded so far every SAVE_SECONDS, so that a run cut
        off in a long encode keeps them (the embedding cache). Batches run longest first, so the rows left after a
        cut form the same batches again, and their vectors are bitwise those of an uncut run. (A model that routes by
        task encodes through sentence-transformers in one piece: nothing is saved before it ends.)"""
        if self._routed and self.backend == "torch":
            # A Router picks its route from encode_query / encode_document's task argument: leave it to them.
            encode = self.model.encode_query if kind == "query" else self.model.encode_document
            override = self.spec.query_prompt if kind == "query" else self.spec.doc_prompt
            with autocast(self.precision, self.device):
                vectors = encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                 show_progress_bar=len(texts) > self.batch_size,
                                 **({"prompt": override} if override is not None else {}))
            return self.finish(vectors)
        prompt = self.prompt(kind)
        start = time.perf_counter()
        stats = EncodeStats(texts=len(texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches = length_batches(self.token_lengths(texts, prompt), self.batch_size,
                                 token_budget=self.batch_size * self.tokens_per_row)
        pending, last_save = [], time.perf_counter()
        # Ctrl-C / SIGTERM finish the batch under way and hand what is done to the cache before stopping.
        stopping = interrupts.deferred(STOP_GRACE, "finishing this batch and caching the vectors so far",
                                       when=save is not None)
        with torch.inference_mode(), stopping as stop:
            for rows in tqdm(batches, desc=f"encode {kind}", unit="batch", leave=False,
                             disable=len(texts) <= self.batch_size):
                features = self.model.preprocess([texts[i] for i in rows], prompt=prompt or None)
                mask = features["attention_mask"]
                lengths = mask.sum(dim=1)
                stats.real_tokens += int(lengths.sum())
                stats.real_sq_tokens += int((lengths * lengths).sum())
                stats.padded_tokens += mask.numel()
                stats.padded_sq_tokens += mask.shape[0] * mask.shape[1] ** 2
                features = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
                embeddings = self.forward(features)
                out[rows] = self.finish(embeddings)
                if save is not None:
                    pending.append(rows)
                    if stop.requested or time.perf_counter() - last_save >= SAVE_SECONDS:
                        done = np.concatenate(pending)
                        save(done, out[done])
                        pending, last_save = [], time.perf_counter()
                if stop.requested:
                    raise stop.stop()
        stats.batches, stats.seconds = len(batches), time.perf_counter() - start
        self.stats.add(stats)
        return out

    # ------------------------------------------------------------------------------ multi-process encoding

    def start_pool(self, devices: list[str]):
        """sentence-transformers' multi-process pool on `devices` (one process each; for CPU processes each gets
        an equal share of this encoder's threads). The fp32 torch backend only: the workers run the model's own
        encode, which knows neither bf16 autocast nor the int8 / ONNX backends."""
        if self.backend != "torch" or self.precision != "fp32":
            raise ValueError(f"--encode-processes above 1 runs the fp32 torch backend only, not backend "
                             f"{self.backend} precision {self.precision}: give one process")
        share = str(max(1, self.threads // max(1, sum(1 for d in devices if str(d).startswith("cpu")))))
        # Read by the spawned workers when torch loads.
        with environment(OMP_NUM_THREADS=share, MKL_NUM_THREADS=share):
            return self.model.start_multi_process_pool(target_devices=list(devices))

    def stop_pool(self, pool) -> None:
        self.model.stop_multi_process_pool(pool)
        self.model.to(self.device)  # starting a pool moved the model to the CPU

    def embed_many(self, groups: list[list[str]], kind: str, pool=None) -> list[np.ndarray]:
        """float32 embeddings of each list of texts, as embed gives them; with a pool, the lists are encoded side
        by side, each list as one chunk in one worker process (a shard is never split between processes)."""
        if pool is None:
            return [self.embed(texts, kind) for texts in groups]
        texts = [t for group in groups for t in group]
        if not texts:
            return [np.empty((0, self.dim), dtype=np.float32) for _ in groups]
        sizes = [len(group) for group in groups]
        if any(size != sizes[0] for size in sizes[:-1]) or sizes[-1] > sizes[0]:
            raise ValueError(f"multi-process encoding needs equal groups (the last may be shorter), got {sizes}")
        options = {"batch_size": self.batch_size, "convert_to_numpy": True, "normalize_embeddings": False,
                   "show_progress_bar": False, "pool": pool, "chunk_size": sizes[0]}
        start = time.perf_counter()
        if self._routed:
            encode = self.model.encode_query if kind == "query" else self.model.encode_document
            override = self.spec.query_prompt if kind == "query" else self.spec.doc_prompt
            vectors = encode(texts, **options, **({"prompt": override} if override is not None else {}))
        else:
            vectors = self.model.encode(texts, prompt=self.prompt(kind), **options)
        out = self.finish(torch.from_numpy(np.asarray(vectors, dtype=np.float32)))
        self.stats.add(EncodeStats(texts=len(texts), seconds=time.perf_counter() - start))
        bounds = np.cumsum([0, *sizes])
        return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def forward(self, features: dict) -> torch.Tensor:
        """Sentence embeddings of one batch. Under bf16 only the first module (the Transformer) runs in autocast:
        pooling and any later modules see fp32 token embeddings, so averaging many tokens adds no bf16 rounding."""
        if self.precision == "fp32":
            return self._forward(features)["sentence_embedding"]
        return sentence_embeddings(self.model, features, self.precision, self.device)

    def token_lengths(self, texts: list[str], prompt: str, chunk: int = 1024) -> np.ndarray:
        """Token count of each prompted text as the model will see it (special tokens in, truncated). In chunks:
        the tokenizer's output for a whole corpus at once (ids, offsets, strings) costs hundreds of MB."""
        tokenizer = self.model.tokenizer
        lengths = np.empty(len(texts), dtype=np.int64)
        for start in range(0, len(texts), chunk):
            ids = tokenizer([prompt + t for t in texts[start:start + chunk]], truncation=True,
                            max_length=self.max_seq_length, add_special_tokens=True, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
            lengths[start:start + len(ids)] = [len(x) for x in ids]
        return lengths
