"""A dense model as the runner sees it (bench/retrieval/base.py): encode queries and documents (encode.py,
through the embedding cache, cache.py), then exact or FAISS top-k search or full-pool scores (search.py).

Two paths for the documents. In memory (the default up to SHARD_THRESHOLD documents): every vector through the
embedding cache, one matrix, search.py's exact or FAISS search as always. Sharded (above the threshold, or with a
shard size, several encoding processes or a pinned FAISS index, see options.py): shards encoded and written one
by one, resumable (shards.py), searched through memory maps by blocked exact search (on the GPU when the model
runs on one) or a FAISS index built once and saved beside the shards (index.py). Both give the same rankings on
the same vectors. Queries always go through the embedding cache."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator

import numpy as np

from bench.data.task import RetrievalTask
from bench.models.registry import ModelSpec
from bench.retrieval.base import timed
from bench.retrieval.dense.encode import DenseEncoder, document_text
from bench.retrieval.dense.loading import device_name
from bench.retrieval.dense.index import ANN_METHODS, IndexParams, build_params, configure, load_or_build, on_device
from bench.retrieval.dense.index import search as index_search
from bench.retrieval.dense.index import search_params
from bench.retrieval.dense.options import DEFAULT_SHARD_SIZE, DenseOptions
from bench.retrieval.dense.search import (ann_recall, blocked_score_chunks, blocked_top_k, check_search, dense_run,
                                          run_from_hits, score_chunks)
from bench.retrieval.dense.shards import ShardedEmbeddings, ShardStore, corpus_digest, encode_shards, shard_folder


class DenseRetriever:
    def __init__(self, spec: ModelSpec, batch_size: int = 32, cache: bool = True, device: str | None = None,
                 options: DenseOptions | None = None):
        self.options = options or DenseOptions()
        self.encoder = DenseEncoder(spec, batch_size=batch_size, cache=cache, device=device)
        self.fingerprint = self.encoder.fingerprint
        self.search_method = spec.search
        self.similarity = self.encoder.similarity
        check_search(self.similarity, self.search_method)  # manhattan with FAISS: refused before any task
        self.options.check_search(self.search_method)
        self.index_params = IndexParams(nlist=self.options.ivf_nlist, nprobe=self.options.ivf_nprobe,
                                        m=self.options.hnsw_m, ef_search=self.options.hnsw_ef_search)
        self.use_cache = cache
        # The backend and search method are part of the run record: a variant is never silent.
        self.details = {"location": self.encoder.location, "max_seq_length": self.encoder.max_seq_length,
                        "backend": self.encoder.backend, "precision": self.encoder.precision, "search": spec.search,
                        "threads": self.encoder.threads, "device": self.encoder.device, "device_name": device_name(self.encoder.device),
                        **({"embedding_dtype": self.options.embedding_dtype}
                           if self.options.embedding_dtype != "float32" else {})}
        # Unique texts of the last task by source (encoded / cached / memo), for the run record.
        self.text_counts: dict[str, int] = {}
        # What the last task's search did beyond the defaults (sharded encoding, FAISS index, ANN recall), for the
        # run record; empty for in-memory exact and flat search.
        self.search_info: dict = {}
        self.index_counts: Counter[str] = Counter(built=0, loaded=0)
        self._temporary: list[str] = []

    # ------------------------------------------------------------------------------------------- in memory

    def _embed(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        query_ids = list(task.queries)
        before = dict(self.encoder.counts)
        with timed(timings, "encode_queries"):
            queries = self.encoder.encode([task.queries[q] for q in query_ids], "query")
        with timed(timings, "encode_corpus"):
            doc_ids, texts = [], []
            for doc_id, doc in task.corpus.items():
                doc_ids.append(doc_id)
                texts.append(document_text(doc))
            docs = self.encoder.encode(texts, "document")
            del texts
            if self.options.embedding_dtype != "float32":  # as stored on disk by the sharded path
                docs = docs.astype(self.options.embedding_dtype).astype(np.float32)
        self.text_counts = {source: n - before.get(source, 0) for source, n in self.encoder.counts.items()}
        return query_ids, doc_ids, queries, docs

    # ------------------------------------------------------------------------------------------- sharded

    def sharded(self, task: RetrievalTask) -> bool:
        return self.options.sharded(len(task.corpus)) or self.options.faiss_index is not None

    def _note(self, message: str) -> None:
        self.search_info.setdefault("notes", []).append(message)
        print(message, file=sys.stderr)

    def _devices(self) -> list[str]:
        if self.options.encode_devices:
            return list(self.options.encode_devices)
        device = str(self.encoder.device)
        if device == "cuda":
            import torch

            count = max(1, torch.cuda.device_count())
            return [f"cuda:{i % count}" for i in range(self.options.processes)]
        return [device] * self.options.processes

    def _shards(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], np.ndarray, ShardedEmbeddings]:
        """Query ids, query embeddings and the corpus's shards on disk (encoded where missing or damaged)."""
        encoder = self.encoder
        query_ids = list(task.queries)
        before = dict(encoder.counts)
        with timed(timings, "encode_queries"):
            queries = encoder.encode([task.queries[q] for q in query_ids], "query")
        n_docs = len(task.corpus)
        with timed(timings, "digest_corpus"):
            digest, counted = corpus_digest(task.corpus, document_text)
        if counted != n_docs:
            raise ValueError(f"{task.dataset}: the corpus yielded {counted} documents, but its len() is {n_docs}")
        size = self.options.shard_size or DEFAULT_SHARD_SIZE
        dtype = self.options.embedding_dtype
        prompt_key = encoder.prompt_key("document")
        if self.use_cache:
            folder = shard_folder(encoder.fingerprint, encoder.max_seq_length, encoder.variant, prompt_key, digest,
                                  size, dtype)
        else:  # --no-cache / --force: shards of this task only, removed after it
            from bench.paths import cache_root

            cache_root().mkdir(parents=True, exist_ok=True)
            folder = tempfile.mkdtemp(prefix=".shards-", dir=cache_root())
            self._temporary.append(folder)
        store = ShardStore(folder, n_docs, size, encoder.dim, dtype, meta={
            "fingerprint": encoder.fingerprint, "max_seq_length": encoder.max_seq_length, "variant": encoder.variant,
            "prompt": prompt_key, "corpus_digest": digest, "model": encoder.spec.name, "run_id": encoder.spec.key})
        self._identity = {"model": {"fingerprint": encoder.fingerprint, "max_seq_length": encoder.max_seq_length,
                                    "variant": encoder.variant, "prompt": prompt_key},
                          "corpus_digest": digest, "n_docs": n_docs, "dim": encoder.dim, "embedding_dtype": dtype}
        pool: list = []

        def embed(groups: list[list[str]]) -> list[np.ndarray]:
            if self.options.processes > 1 and not pool:
                pool.append(encoder.start_pool(self._devices()))
            return encoder.embed_many(groups, "document", pool[0] if pool else None)

        with timed(timings, "encode_corpus"):
            try:
                counts = encode_shards(store, task.corpus, document_text, embed, group=self.options.processes,
                                       log=self._note)
            finally:
                if pool:
                    encoder.stop_pool(pool[0])
        self.text_counts = {source: n - before.get(source, 0) for source, n in encoder.counts.items()}
        self.text_counts["encoded"] = self.text_counts.get("encoded", 0) + counts["encoded_docs"]
        self.text_counts["cached"] = self.text_counts.get("cached", 0) + counts["reused_docs"]
        self.search_info["encode_shards"] = {k: int(counts[k]) for k in ("shards", "reused", "encoded", "repaired")}
        self.search_info["embedding_store"] = {"folder": str(store.folder) if self.use_cache else None,
                                               "shard_size": size, "embedding_dtype": dtype,
                                               "corpus_digest": digest,
                                               "encode_processes": self.options.processes}
        self._store = store
        return query_ids, queries, store.open()

    def _search_shards(self, task: RetrievalTask, k: int, timings: dict[str, float]) -> dict[str, dict[str, float]]:
        query_ids, queries, docs = self._shards(task, timings)
        device = str(self.encoder.device) if str(self.encoder.device).startswith("cuda") else "cpu"
        depth = k + 1 if task.ignore_identical_ids else k
        method = self.search_method
        exact = lambda q, d: blocked_top_k(q, docs, d, self.similarity, device)  # noqa: E731
        if method == "exact":
            with timed(timings, "search"):
                scores, indices = exact(queries, depth)
        else:
            import faiss
            import torch

            faiss.omp_set_num_threads(torch.get_num_threads())
            build = build_params(method, len(docs), self.similarity, self.index_params)
            with timed(timings, "index"):
                index, info = load_or_build(docs, self._store.folder, build, self._identity,
                                            pinned=self.options.faiss_index, log=self._note)
            self.index_counts["built" if info["built"] else "loaded"] += 1
            searched = search_params(method, min(depth, len(docs)), build, self.index_params)
            configure(index, method, searched)
            index = on_device(index, method, device)
            with timed(timings, "search"):
                scores, indices = index_search(index, queries, min(depth, len(docs)), self.similarity == "euclidean")
            if not self.use_cache:
                info["path"] = None
            self.search_info["search_index"] = {**info, "build": build, "search": searched}
            if method in ANN_METHODS:
                with timed(timings, "search_recall"):
                    self.search_info.update(ann_recall(queries, indices, lambda q, d: exact(q, d)[1]))
        return run_from_hits(query_ids, scores, docs.doc_ids(indices), k, task.ignore_identical_ids)

    def _cleanup(self) -> None:
        while self._temporary:
            shutil.rmtree(self._temporary.pop(), ignore_errors=True)

    # ------------------------------------------------------------------------------------------- the runner

    def search(self, task: RetrievalTask, k: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        timings: dict[str, float] = {}
        self.search_info = {}
        if self.sharded(task):
            try:
                return self._search_shards(task, k, timings), timings
            finally:
                self._cleanup()
        query_ids, doc_ids, queries, docs = self._embed(task, timings)
        info: dict = {}
        with timed(timings, "search"):
            run = dense_run(query_ids, doc_ids, queries, docs, k, drop_identical_ids=task.ignore_identical_ids,
                            method=self.search_method, similarity=self.similarity, params=self.index_params,
                            info=info)
        if self.search_method in ANN_METHODS:  # in memory: built for this task, not saved
            self.search_info = {"search_index": {"path": None, "built": True, "note": None,
                                                 "build": info.get("build"), "search": info.get("search")},
                                **{k: info[k] for k in ("search_recall", "search_recall_sample") if k in info}}
        return run, timings

    def pool_scores(self, task: RetrievalTask, timings: dict[str, float]) -> tuple[list[str], list[str], Iterator]:
        """Query ids, pool ids, and (first query row, scores of a chunk of queries x the whole pool)."""
        self.search_info = {}
        if self.sharded(task):
            query_ids, queries, docs = self._shards(task, timings)
            doc_ids = docs.all_ids()

            def chunks():
                try:
                    yield from blocked_score_chunks(queries, docs, similarity=self.similarity)
                finally:
                    self._cleanup()

            return query_ids, doc_ids, chunks()
        query_ids, doc_ids, queries, docs = self._embed(task, timings)
        return query_ids, doc_ids, score_chunks(queries, docs, similarity=self.similarity)
