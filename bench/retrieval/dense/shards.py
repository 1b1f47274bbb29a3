"""Sharded document embeddings on disk, for corpora too large to hold as one matrix (MIRACL-scale).

The corpus is cut into fixed-size shards by position in corpus order (shard i holds documents
i*shard_size ... (i+1)*shard_size - 1). Each shard is encoded and written as soon as it is done:
`shard-<i>.ids.json` (its document ids, in order) then `shard-<i>.npy` (an (n_i, dim) matrix in the chosen
dtype, float32 by default, float16 on request), each under a temp name renamed into place, the matrix last. A
shard whose matrix has the expected header, shape, dtype and byte size, and whose ids file the expected count,
is finished and never encoded again: a run killed half way resumes at the first missing shard. A damaged shard
(a truncated file, say, copied off a crashed node) is found by that check and encoded again, with a note.
Search reads the matrices through memory maps (`np.load(mmap_mode="r")`), so memory stays at one shard being
encoded, or one block being scored, plus the maps.

Where: <cache>/embeddings/<the embedding cache's model folder>/shards/<corpus digest>-p<prompt>-s<shard size>
[-float16]/, so the embedding cache's keys (model fingerprint, max sequence length, variant: backend,
precision, similarity) and the prompt key shards as they key cached vectors, plus the corpus digest (sha256 of
every document id and text, in order) and the shard size; float16 adds a tag, float32 none. `manifest.json`
records the key. `bench cache clear` removes a model's shards with its folder. FAISS indexes built from the
shards are saved in the same folder (index.py).

The corpus is read only through len(), .items() (or iter_chunks(n) when it has one) and [id]: it may be a
streaming mapping rather than a dict."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from bench.retrieval.dense.cache import embeddings_root, model_folder_name
from bench.retrieval.dense.options import check_embedding_dtype

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BLOCK_ROWS = 65_536  # rows of a shard scored (or added to an index) at once
MAX_OPEN_MAPS = 32  # memory-mapped shards kept open at once


# ------------------------------------------------------------------------------------------------ corpus


def corpus_chunks(corpus, n: int) -> Iterator[list[tuple[str, dict]]]:
    """The corpus as lists of n (id, document) pairs (the last may be shorter), in corpus order: through
    `iter_chunks(n)` when the corpus has it (chunks of pairs or mappings, re-cut to exactly n), else `.items()`."""
    chunks = getattr(corpus, "iter_chunks", None)
    if callable(chunks):
        pairs = (pair for chunk in chunks(n) for pair in (chunk.items() if isinstance(chunk, Mapping) else chunk))
    else:
        pairs = iter(corpus.items())
    while True:
        block = list(itertools.islice(pairs, n))
        if not block:
            return
        yield block


def corpus_digest(corpus, text: Callable[[dict], str], chunk: int = 8192) -> tuple[str, int]:
    """(sha256 of every document id and text in corpus order, document count): one streaming pass. A corpus
    that carries its own `content_digest` (bench.data.corpus.JsonlCorpus: the sha256 of its files, which fix
    every id and text) is not read: that digest and len() key it."""
    own = getattr(corpus, "content_digest", None)
    if isinstance(own, str) and own:
        return hashlib.sha256(f"files|{own}|n={len(corpus)}".encode()).hexdigest(), len(corpus)
    digest, count = hashlib.sha256(), 0
    for block in corpus_chunks(corpus, chunk):
        for doc_id, doc in block:
            digest.update(str(doc_id).encode("utf-8", "surrogatepass") + b"\0")
            digest.update(text(doc).encode("utf-8", "surrogatepass") + b"\0")
        count += len(block)
    digest.update(f"n={count}".encode())
    return digest.hexdigest(), count


# ------------------------------------------------------------------------------------------------- store


def shard_folder(fingerprint: str, max_seq_length: int, variant: str, prompt_key: str, digest: str,
                 shard_size: int, dtype: str, root: Path | None = None) -> Path:
    """The folder of one (model, prompt, corpus, shard size, dtype) combination; `root`: the embeddings root."""
    prompt = hashlib.sha256(prompt_key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    name = f"{digest[:16]}-p{prompt}-s{int(shard_size)}" + ("" if dtype == "float32" else f"-{dtype}")
    return embeddings_root(root) / model_folder_name(fingerprint, max_seq_length, variant) / "shards" / name


class ShardStore:
    """The shards of one corpus under one encoder: which are finished, writing one, opening them for search."""

    def __init__(self, folder: Path, n_docs: int, shard_size: int, dim: int, dtype: str = "float32",
                 meta: dict | None = None):
        if shard_size < 1:
            raise ValueError(f"shard size must be at least 1, got {shard_size}")
        self.folder = Path(folder)
        self.n_docs, self.shard_size, self.dim = int(n_docs), int(shard_size), int(dim)
        self.dtype = np.dtype(check_embedding_dtype(dtype))
        self.meta = {"n_docs": self.n_docs, "shard_size": self.shard_size, "dim": self.dim,
                     "embedding_dtype": self.dtype.name, **(meta or {})}

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_docs / self.shard_size)

    def rows(self, i: int) -> int:
        return min(self.shard_size, self.n_docs - i * self.shard_size)

    def matrix_path(self, i: int) -> Path:
        return self.folder / f"shard-{i:05d}.npy"

    def ids_path(self, i: int) -> Path:
        return self.folder / f"shard-{i:05d}.ids.json"

    def check(self, i: int) -> str | None:
        """None when shard i is complete; else why not ("missing", or what is wrong with its files)."""
        path, rows = self.matrix_path(i), self.rows(i)
        if not path.exists():
            return "missing"
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                offset = f.tell()
        except (OSError, ValueError) as e:
            return f"unreadable header ({e})"
        if tuple(shape) != (rows, self.dim) or dtype != self.dtype or fortran:
            return f"holds {dtype} {tuple(shape)}, expected {self.dtype} {(rows, self.dim)}"
        size, expected = path.stat().st_size, offset + rows * self.dim * self.dtype.itemsize
        if size != expected:
            return f"{size} bytes, expected {expected} (truncated)" if size < expected else \
                f"{size} bytes, expected {expected}"
        try:
            ids = json.loads(self.ids_path(i).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"ids file unreadable ({e.__class__.__name__})"
        if not isinstance(ids, list) or len(ids) != rows:
            return f"ids file holds {len(ids) if isinstance(ids, list) else '?'} ids, expected {rows}"
        return None

    def write_manifest(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / MANIFEST
        if path.is_file():
            return
        _atomic_write(path, lambda f: f.write(json.dumps(self.meta, indent=2, sort_keys=True).encode()))

    def write(self, i: int, ids: list[str], vectors: np.ndarray) -> None:
        """Shard i: ids first, then the matrix (its arrival marks the shard finished)."""
        rows = self.rows(i)
        if len(ids) != rows or vectors.shape != (rows, self.dim):
            raise ValueError(f"shard {i}: {len(ids)} ids and vectors {vectors.shape}, expected {rows} x {self.dim}")
        self.write_manifest()
        matrix = np.ascontiguousarray(vectors, dtype=self.dtype)
        _atomic_write(self.ids_path(i), lambda f: f.write(json.dumps(ids, ensure_ascii=False).encode("utf-8",
                                                                                                   "surrogatepass")))
        _atomic_write(self.matrix_path(i), lambda f: np.save(f, matrix, allow_pickle=False))

    def open(self) -> ShardedEmbeddings:
        return ShardedEmbeddings(self)


def _atomic_write(path: Path, write: Callable) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class ShardedEmbeddings:
    """The finished shards as one (n_docs, dim) matrix seen block by block through memory maps."""

    def __init__(self, store: ShardStore):
        self.store = store
        self.shape = (store.n_docs, store.dim)
        self.dtype = store.dtype
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()  # at most MAX_OPEN_MAPS (each holds a descriptor)
        self._ids: tuple[int, list[str]] | None = None  # the last shard whose ids were read

    def __len__(self) -> int:
        return self.store.n_docs

    def matrix(self, i: int) -> np.ndarray:
        if i in self._maps:
            self._maps.move_to_end(i)
            return self._maps[i]
        matrix = np.load(self.store.matrix_path(i), mmap_mode="r", allow_pickle=False)
        self._maps[i] = matrix
        while len(self._maps) > MAX_OPEN_MAPS:
            self._maps.popitem(last=False)
        return matrix

    def blocks(self, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 copy of the block) over every shard, in order."""
        for i in range(self.store.n_shards):
            matrix, base = self.matrix(i), i * self.store.shard_size
            for start in range(0, len(matrix), block_rows):
                yield base + start, np.array(matrix[start:start + block_rows], dtype=np.float32)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """float32 rows at the given global positions (any order)."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), self.shape[1]), dtype=np.float32)
        shard = positions // self.store.shard_size
        for i in np.unique(shard):
            where = np.nonzero(shard == i)[0]
            out[where] = self.matrix(int(i))[positions[where] - i * self.store.shard_size]
        return out

    def shard_ids(self, i: int) -> list[str]:
        if self._ids is None or self._ids[0] != i:
            self._ids = (i, json.loads(self.store.ids_path(i).read_text(encoding="utf-8")))
        return self._ids[1]

    def doc_ids(self, positions: np.ndarray) -> np.ndarray:
        """Document ids (an object array shaped as `positions`) at global positions; -1 gives None. Reads one
        shard's ids at a time."""
        positions = np.asarray(positions, dtype=np.int64)
        flat = positions.ravel()
        out = np.full(flat.shape, None, dtype=object)
        shard = np.where(flat >= 0, flat // self.store.shard_size, -1)
        for i in np.unique(shard[shard >= 0]):
            where = np.nonzero(shard == i)[0]
            ids = self.shard_ids(int(i))
            out[where] = [ids[p] for p in (flat[where] - i * self.store.shard_size)]
        return out.reshape(positions.shape)

    def all_ids(self) -> list[str]:
        return [d for i in range(self.store.n_shards) for d in self.shard_ids(i)]


# ---------------------------------------------------------------------------------------------- encoding


def encode_shards(store: ShardStore, corpus, text: Callable[[dict], str],
                  embed: Callable[[list[list[str]]], list[np.ndarray]], group: int = 1,
                  log: Callable[[str], None] | None = None) -> Counter:
    """Encode every unfinished shard of `corpus` into `store`. `embed` takes the texts of up to `group` shards
    (a multi-process pool encodes them side by side) and returns their float32 matrices. Returns counts:
    shards, reused (finished before), encoded (this call), repaired (encoded again because their files were
    damaged), and the documents of the reused and encoded shards."""
    log = log or (lambda message: logger.warning(message))
    counts = Counter(shards=store.n_shards, reused=0, encoded=0, repaired=0, reused_docs=0, encoded_docs=0)
    pending: list[tuple[int, list[str], list[str]]] = []

    def flush() -> None:
        if not pending:
            return
        matrices = embed([texts for _, _, texts in pending])
        for (i, ids, _), matrix in zip(pending, matrices):
            store.write(i, ids, matrix)
            counts["encoded"] += 1
            counts["encoded_docs"] += len(ids)
        pending.clear()

    seen = 0
    for i, block in enumerate(corpus_chunks(corpus, store.shard_size)):
        seen += len(block)
        if i >= store.n_shards or len(block) != store.rows(i):
            raise ValueError(f"the corpus changed while it was encoded: shard {i} has {len(block)} documents, "
                             f"expected {store.rows(i) if i < store.n_shards else 0}")
        reason = store.check(i)
        if reason is None:
            counts["reused"] += 1
            counts["reused_docs"] += len(block)
            continue
        if reason != "missing":
            log(f"note: shard {i} in {store.folder} is damaged ({reason}); encoding it again")
            counts["repaired"] += 1
        pending.append((i, [str(d) for d, _ in block], [text(doc) for _, doc in block]))
        if len(pending) >= group:
            flush()
    flush()
    if seen != store.n_docs:
        raise ValueError(f"the corpus yielded {seen} documents, but its len() is {store.n_docs}")
    return counts
