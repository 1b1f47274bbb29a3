"""The embedding cache: vectors on disk keyed by (model fingerprint, max sequence length, prompt, text), so a
second run of the same model on the same data encodes nothing.

Layout: <cache_root>/embeddings/<fingerprint>-L<max_seq_length>/ holds append-only *segments*. A segment is a
pair of files named by a unique id: `<id>.npy`, a float32 (n, dim) matrix, and `<id>.keys`, n raw 32-byte
sha256 digests of `prompt + "\\0" + text` in the same row order. Both are written under temp names and renamed,
the keys file last, so a reader that lists `*.keys` only ever sees complete segments. An interrupted write
leaves temp files (or a `.npy` without its keys), which readers ignore and later writers remove once they are
an hour old. Two processes writing at once create two segments; a key present in both is served from the one
loaded first (both hold the same model's vector for the same input). Vectors are read through
`np.load(mmap_mode="r")`: only the rows asked for leave the disk.

Each segment also has `<id>.sha256`, the digest of its matrix and keys, written before the keys file. A segment
whose digest no longer matches (a zeroed payload, reordered keys) is deleted with a warning and its texts are
encoded again; segments written before digests existed have none and are read as they are.

The cache is best effort: a segment that cannot be read is skipped (and its texts encoded again), a write
that fails is reported as a warning and the run goes on."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.digest import folder_fingerprint
from bench.paths import cache_root
from bench.safety import is_stale_temp

logger = logging.getLogger(__name__)

KEY_BYTES = 32  # sha256
STALE_SECONDS = 3600  # temp files and keyless matrices older than this are debris of interrupted writes
MAX_OPEN_SEGMENTS = 64  # each memory map holds a file descriptor
META_NAME = "meta.json"


def embeddings_root(root: Path | None = None) -> Path:
    return Path(root) if root is not None else cache_root() / "embeddings"


def cache_key(prompt: str, text: str) -> bytes:
    """sha256 of `prompt + "\\0" + text` (UTF-8; lone surrogates kept): the prompt is part of the input."""
    return hashlib.sha256((prompt + "\0" + text).encode("utf-8", "surrogatepass")).digest()


def model_folder_name(model_fingerprint: str, max_seq_length: int, variant: str = "") -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_fingerprint).strip("._") or "model"
    return f"{safe}-L{int(max_seq_length)}" + (f"-{re.sub(r'[^A-Za-z0-9._-]+', '_', variant)}" if variant else "")


class EmbeddingCache:
    """One model's cached vectors at one maximum sequence length (and `variant`, for encoders whose numerics
    differ from the fp32 model: a backend or precision tag)."""

    def __init__(self, root: Path | None, model_fingerprint: str, max_seq_length: int, dim: int,
                 variant: str = "", meta: dict | None = None):
        self.folder = embeddings_root(root) / model_folder_name(model_fingerprint, max_seq_length, variant)
        self.dim = int(dim)
        self.meta = {"fingerprint": model_fingerprint, "max_seq_length": int(max_seq_length), "dim": self.dim,
                     **({"variant": variant} if variant else {}), **(meta or {})}
        self._index: dict[bytes, tuple[str, int]] = {}
        self._loaded: set[str] = set()  # segment ids whose keys are in the index (or were found unreadable)
        self._open: OrderedDict[str, np.ndarray] = OrderedDict()

    # ---------------------------------------------------------------------------------------------- read

    def refresh(self) -> None:
        """Index the keys of segments written since the last call (by this or any other process)."""
        try:
            names = sorted(p.name for p in os.scandir(self.folder) if p.name.endswith(".keys"))
        except FileNotFoundError:
            names = []
        current = {name[:-len(".keys")] for name in names}
        if self._loaded - current:  # segments removed under us (`bench cache clear`): start over
            self._index.clear()
            self._loaded.clear()
            self._open.clear()
        for name in names:
            segment = name[:-len(".keys")]
            if segment in self._loaded:
                continue
            self._loaded.add(segment)
            keys = self._read_keys(segment)
            if keys is None:
                continue
            for row, key in enumerate(keys):
                self._index.setdefault(key, (segment, row))  # first wins

    def _read_keys(self, segment: str) -> list[bytes] | None:
        try:
            data = (self.folder / f"{segment}.keys").read_bytes()
            matrix = self._matrix(segment)
        except (OSError, ValueError) as e:
            logger.warning("embedding cache: skipping segment %s in %s: %s", segment, self.folder, e)
            return None
        if len(data) % KEY_BYTES or len(data) // KEY_BYTES != matrix.shape[0]:
            logger.warning("embedding cache: skipping segment %s in %s: %d key bytes for %d rows", segment,
                           self.folder, len(data), matrix.shape[0])
            return None
        sums = self.folder / f"{segment}.sha256"
        if sums.is_file() and sums.read_text().strip() != segment_digest(np.asarray(matrix), data):
            logger.warning("embedding cache: deleted damaged segment %s in %s (its vectors or keys changed since "
                           "written); its texts are encoded again", segment, self.folder)
            for suffix in (".keys", ".npy", ".sha256"):
                (self.folder / f"{segment}{suffix}").unlink(missing_ok=True)
            self._open.pop(segment, None)
            return None
        return [data[i:i + KEY_BYTES] for i in range(0, len(data), KEY_BYTES)]

    def _matrix(self, segment: str) -> np.ndarray:
        matrix = self._open.get(segment)
        if matrix is not None:
            self._open.move_to_end(segment)
            return matrix
        matrix = np.load(self.folder / f"{segment}.npy", mmap_mode="r", allow_pickle=False)
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ValueError(f"expected float32 (n, {self.dim}), found {matrix.dtype} {matrix.shape}")
        self._open[segment] = matrix
        while len(self._open) > MAX_OPEN_SEGMENTS:
            self._open.popitem(last=False)
        return matrix

    def get(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors among `keys` (copied out of the memory maps)."""
        self.refresh()
        by_segment: dict[str, list[tuple[bytes, int]]] = {}
        for key in dict.fromkeys(keys):
            hit = self._index.get(key)
            if hit is not None:
                by_segment.setdefault(hit[0], []).append((key, hit[1]))
        found: dict[bytes, np.ndarray] = {}
        for segment, hits in by_segment.items():
            try:
                rows = np.asarray(self._matrix(segment)[[row for _, row in hits]], dtype=np.float32)
            except (OSError, ValueError) as e:  # removed or damaged since it was indexed: encode again
                logger.warning("embedding cache: cannot read segment %s in %s: %s", segment, self.folder, e)
                continue
            found.update((key, rows[i]) for i, (key, _) in enumerate(hits))
        return found

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    # --------------------------------------------------------------------------------------------- write

    def put(self, keys: list[bytes], vectors: np.ndarray) -> str | None:
        """Append one segment holding `vectors` (n, dim) under `keys`; returns its id (None when nothing was
        written: no rows, or the write failed, which is logged and otherwise ignored)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors) or (len(keys) and vectors.shape[1:] != (self.dim,)):
            raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape} (dim {self.dim})")
        if not keys:
            return None
        segment = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_meta()
            self._remove_stale()
            matrix_tmp = self.folder / f".{segment}.npy.tmp"
            keys_tmp = self.folder / f".{segment}.keys.tmp"
            try:
                with open(matrix_tmp, "wb") as f:
                    np.save(f, vectors, allow_pickle=False)
                    f.flush()
                    os.fsync(f.fileno())
                with open(keys_tmp, "wb") as f:
                    f.write(b"".join(keys))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(matrix_tmp, self.folder / f"{segment}.npy")
                (self.folder / f"{segment}.sha256").write_text(segment_digest(vectors, b"".join(keys)))
                self._rename_keys(keys_tmp, self.folder / f"{segment}.keys")  # last: the segment now exists
            finally:
                for tmp in (matrix_tmp, keys_tmp):
                    if tmp.exists():
                        tmp.unlink()
        except OSError as e:
            logger.warning("embedding cache: could not write to %s: %s", self.folder, e)
            return None
        return segment

    @staticmethod
    def _rename_keys(tmp: Path, final: Path) -> None:  # a seam for tests that interrupt a write here
        os.replace(tmp, final)

    def _write_meta(self) -> None:
        path = self.folder / META_NAME
        if path.is_file():
            return
        tmp = self.folder / f".{META_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def _remove_stale(self) -> None:
        remove_stale(self.folder)


def segment_digest(matrix: np.ndarray, keys: bytes) -> str:
    """sha256 of a segment's float32 rows and its keys, in order."""
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype=np.float32).tobytes() + keys).hexdigest()


def remove_stale(folder: Path, older_than: float = STALE_SECONDS) -> int:
    """Delete the debris of interrupted writes older than `older_than` seconds: temp files, and matrices whose
    keys file never arrived. Returns the bytes freed."""
    freed, now = 0, time.time()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    names = {e.name for e in entries}
    for entry in entries:
        stem, _, suffix = entry.name.rpartition(".")
        # Temp files follow the project's one rule (bench.safety.is_stale_temp); a matrix or digest whose keys
        # file never arrived is this cache's own debris, swept at the same age.
        temp = entry.name.endswith(".tmp")
        if not temp and not (suffix in ("npy", "sha256") and f"{stem}.keys" not in names):
            continue
        try:
            stat = entry.stat()
            if is_stale_temp(Path(entry.path), now) if temp else now - stat.st_mtime >= older_than:
                os.unlink(entry.path)
                freed += stat.st_size
        except FileNotFoundError:
            pass
    return freed


# ------------------------------------------------------------------------------------------ inventory


@dataclass
class CacheEntry:
    """One model directory of the cache, as `bench cache info` shows it."""

    folder: Path
    meta: dict
    segments: int
    vectors: int
    bytes: int

    @property
    def label(self) -> str:
        return self.meta.get("run_id") or self.meta.get("model") or "?"


def inventory(root: Path | None = None) -> list[CacheEntry]:
    entries = []
    base = embeddings_root(root)
    if not base.is_dir():
        return entries
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            meta = json.loads((folder / META_NAME).read_text())
        except (OSError, ValueError):
            meta = {}
        files = [p for p in folder.iterdir() if p.is_file()]
        keys = [p for p in files if p.suffix == ".keys"]
        entries.append(CacheEntry(folder=folder, meta=meta, segments=len(keys),
                                  vectors=sum(p.stat().st_size // KEY_BYTES for p in keys),
                                  bytes=sum(p.stat().st_size for p in files)))
    return entries


def matching(entries: list[CacheEntry], name: str) -> list[CacheEntry]:
    """The entries of a model given as a registry name, a run id, a model folder, a fingerprint or a
    directory name of the cache."""
    wanted = {name}
    folder = Path(name).expanduser()
    if folder.is_dir():
        wanted |= {str(folder.resolve()), folder_fingerprint(folder)}
    return [e for e in entries
            if e.folder.name in wanted or e.folder.name.startswith(name + "-L") or
            wanted & {str(e.meta.get(k)) for k in ("model", "run_id", "location", "fingerprint")}]


def clear(entries: list[CacheEntry]) -> int:
    """Remove the given model directories; returns the bytes freed."""
    freed = 0
    for entry in entries:
        freed += sum(p.stat().st_size for p in entry.folder.rglob("*") if p.is_file())
        shutil.rmtree(entry.folder, ignore_errors=True)
    return freed
