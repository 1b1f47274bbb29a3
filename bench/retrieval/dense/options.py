"""Options of dense encoding and search at scale (issue 17), torch-free so the CLI and the runner can build and
check them without loading a model: the sharded path (shard size, encoding processes, the dtype shards are
stored in) and the parameters of approximate FAISS search (IVF: nlist, nprobe; HNSW: M, efSearch), plus an
index file the user pins.

None means "the default": the in-memory path for corpora up to SHARD_THRESHOLD documents, the sharded path
above it (or whenever a shard size or several encoding processes are asked for)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

EMBEDDING_DTYPES = ("float32", "float16")
DEFAULT_SHARD_SIZE = 65_536       # documents per shard: 96 MiB of float32 at 384 dimensions
SHARD_THRESHOLD = 500_000         # corpora larger than this are encoded and searched shard by shard


def check_embedding_dtype(name: str | None) -> str:
    value = name or "float32"
    if value not in EMBEDDING_DTYPES:
        raise ValueError(f"unknown embedding dtype {value!r}; known: {', '.join(EMBEDDING_DTYPES)}")
    return value


@dataclass(frozen=True)
class DenseOptions:
    shard_size: int | None = None        # given: the sharded path, whatever the corpus size
    encode_processes: int = 1            # > 1: sentence-transformers' multi-process pool, whole shards each
    encode_devices: tuple[str, ...] | None = None  # the pool's devices (default: the encoder's device, repeated)
    embedding_dtype: str = "float32"     # how document embeddings are stored (and so searched)
    ivf_nlist: int | None = None         # faiss-ivf build parameter (default: see index.py)
    ivf_nprobe: int | None = None        # faiss-ivf search parameter
    hnsw_m: int | None = None            # faiss-hnsw build parameter (default 32)
    hnsw_ef_search: int | None = None    # faiss-hnsw search parameter (default max(2k, 128))
    faiss_index: str | None = None       # a saved index file the user pins: used if it matches, else an error

    def __post_init__(self) -> None:
        check_embedding_dtype(self.embedding_dtype)
        for name in ("shard_size", "ivf_nlist", "ivf_nprobe", "hnsw_m", "hnsw_ef_search"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.encode_processes, int) or self.encode_processes < 1:
            raise ValueError(f"encode-processes must be a positive integer, got {self.encode_processes!r}")
        if self.encode_devices is not None and not self.encode_devices:
            raise ValueError("encode devices: an empty list")

    @property
    def processes(self) -> int:
        return len(self.encode_devices) if self.encode_devices else self.encode_processes

    def sharded(self, n_docs: int) -> bool:
        """Whether a corpus of n_docs documents takes the sharded path."""
        return self.shard_size is not None or self.processes > 1 or n_docs > SHARD_THRESHOLD

    def check_search(self, method: str) -> None:
        """ValueError for ANN parameters that do not apply to `method`, or a pinned index without FAISS."""
        wrong = [f"--{n.replace('_', '-')}" for n, m in (("ivf_nlist", "faiss-ivf"), ("ivf_nprobe", "faiss-ivf"),
                                                        ("hnsw_m", "faiss-hnsw"), ("hnsw_ef_search", "faiss-hnsw"))
                 if getattr(self, n) is not None and method != m]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} do not apply to --search {method}")
        if self.faiss_index is not None:
            if not method.startswith("faiss"):
                raise ValueError(f"--faiss-index applies to --search faiss*, not {method}")
            if not Path(self.faiss_index).is_file():
                raise ValueError(f"--faiss-index {self.faiss_index}: no such file")

    def numerics(self) -> dict | None:
        """The options that can change a score (stored precision, ANN parameters) where they are not the
        defaults; None when all are, so results recorded before these options existed still stand."""
        changed = {name: getattr(self, name) for name in ("ivf_nlist", "ivf_nprobe", "hnsw_m", "hnsw_ef_search")
                   if getattr(self, name) is not None}
        if self.embedding_dtype != "float32":
            changed["embedding_dtype"] = self.embedding_dtype
        return changed or None

    def record(self) -> dict:
        """The options as the run record keeps them, flat (devices comma-joined)."""
        out = asdict(self)
        out["encode_devices"] = ",".join(self.encode_devices) if self.encode_devices else None
        return out
