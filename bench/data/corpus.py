"""A corpus too big for a dict: `JsonlCorpus`, a read-only Mapping doc id -> {"title", "text"} over JSONL files
(plain or gzipped) that keeps an index of ids and byte offsets instead of the texts.

One pass over the files checks every record (as the dict loaders do: JSON, required fields, title/text types),
refuses duplicate ids (naming both files and lines) and a last line cut short by a crash mid-write, and
builds the index:

- ids, in file order: one utf-8 blob and the start of each id in it (no Python string per document);
- a sorted array of 64-bit blake2b hashes of the ids with, for each, its position in file order: a lookup is a
  binary search plus one comparison of the id bytes (collisions are checked, not assumed away);
- per document the file it is in and the byte offset of its line in the uncompressed stream.

The index is cached under $BENCH_CACHE/corpus/ (beside the BM25 indexes and the embedding cache), keyed by the
sha256 of each file's bytes (bench.digest.file_digest, the same digest the results' fingerprint records),
and loaded memory-mapped: a second load costs hashing the files, not parsing them.

Gzipped files (MIRACL ships docs-*.jsonl.gz): random access needs a seekable uncompressed stream. With the
`indexed_gzip` package installed, it is used directly (its seek points are exported beside the index, so no
copy of the data is made); without it, which is the default (it is not a dependency of bench), each .gz
file is decompressed once, during the indexing pass, into $BENCH_CACHE/corpus/plain/<file digest>.jsonl and
read from there. That costs disk (about 3x the .gz) but makes every lookup one seek and one line read, and
iteration a plain sequential read, with nothing to install.

`__getitem__` seeks and parses one line; `items()`, `values()` and `iter_chunks(n)` stream the files in order
(one record at a time; a chunk at most); `__iter__` / `keys()` read ids from the index only; `len` is the
count. Memory: the index (about 30 bytes per document plus the ids, mapped from disk) plus what the caller
holds of a chunk.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mmap
import os
import shutil
import threading
import time
import zlib
from array import array
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.data.task import DataError, document, json_record
from bench.paths import cache_root
from bench.safety import atomic_write, publish_folder, remove_stale_temps, temp_prefix

# Part of every index key: bump it when what the index holds changes.
INDEX_FORMAT = 1
CHUNK = 10_000  # documents per chunk of iter_chunks() when no size is given
_FIX = "re-download or fix the file"


def default_cache() -> Path:
    return cache_root() / "corpus"


def _indexed_gzip() -> Any:
    """The indexed_gzip module when installed, else None (then .gz files are decompressed once)."""
    try:
        import indexed_gzip
    except ImportError:
        return None
    return indexed_gzip


def _id_hash(key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _id_bytes(doc_id: str) -> bytes:
    return doc_id.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogates; keep them round-trippable


def _file_digest(path: Path) -> str:
    from bench.digest import file_digest

    return file_digest(path)


class JsonlCorpus(Mapping):
    """doc id -> {"title", "text"} over JSONL / .jsonl.gz files without holding the texts (module docstring).

    files: the files in order (several shards make one corpus; ids must be unique across them).
    id_field: the record field holding the id ("_id" for BEIR, "docid" for MIRACL); records also need "text".
    layout: what a record should hold, named in errors. cache: the index cache (default $BENCH_CACHE/corpus).
    """

    def __init__(self, files: Iterable[Path], id_field: str = "_id", layout: str = "", cache: Path | None = None,
                 gz: str | None = None):
        self.files = tuple(Path(f) for f in files)
        if not self.files:
            raise DataError("no corpus files given")
        for path in self.files:
            if not path.is_file():
                raise DataError(f"missing file {path}")
        self.id_field, self.layout = id_field, layout
        self.cache = Path(cache) if cache is not None else default_cache()
        # How .gz files are read at random: "indexed_gzip" when installed, else "decompressed" (see above).
        self.gz = gz or ("indexed_gzip" if _indexed_gzip() is not None else "decompressed")
        if self.gz not in ("indexed_gzip", "decompressed"):
            raise ValueError(f"unknown gz mode {self.gz!r}; known: indexed_gzip, decompressed")
        self.file_digests = tuple(_file_digest(p) for p in self.files)
        key = hashlib.sha256(f"{INDEX_FORMAT}|{self.id_field}|{self.gz}|{'|'.join(self.file_digests)}".encode())
        self.digest = key.hexdigest()[:24]
        self.folder = self.cache / self.digest
        # What the documents are, whatever the gz mode: the files' sha256 in order (they fix every id and text).
        self.content_digest = hashlib.sha256(f"{self.id_field}|{'|'.join(self.file_digests)}".encode()).hexdigest()
        self.built = False  # True when this object built the index (False: read from the cache)
        if not (self.folder / "meta.json").is_file():
            self._build_index()
            self.built = True
        self._load_index()
        if not self._n:
            raise DataError(f"{', '.join(map(str, self.files))}: no documents (empty files); {_FIX}")
        self._handles: dict[int, IO[bytes]] = {}
        self._lock = threading.Lock()

    def __reduce__(self):  # open file handles do not pickle; the cached index makes rebuilding cheap
        return (type(self), (self.files, self.id_field, self.layout, self.cache, self.gz))

    def __repr__(self) -> str:
        return f"JsonlCorpus({len(self)} docs from {', '.join(p.name for p in self.files)})"

    # ------------------------------------------------------------------------------------------ the Mapping

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[str]:
        """Ids in file order, from the index (no file is read)."""
        starts, blob = self._starts, self._blob
        for j in range(self._n):
            yield blob[starts[j]:starts[j + 1]].decode("utf-8", "surrogatepass")

    def __contains__(self, key: object) -> bool:
        return self._position(key) is not None

    def __getitem__(self, key: str) -> dict[str, str]:
        j = self._position(key)
        if j is None:
            raise KeyError(key)
        return self._read(j)

    def get(self, key, default=None):
        j = self._position(key)
        return default if j is None else self._read(j)

    def items(self) -> ItemsView:
        return _StreamedItems(self)

    def values(self) -> ValuesView:
        return _StreamedValues(self)

    def iter_chunks(self, n: int = CHUNK) -> Iterator[list[tuple[str, dict[str, str]]]]:
        """Lists of at most n (id, document) in file order: one chunk in memory at a time."""
        if n < 1:
            raise ValueError(f"chunk size must be positive, got {n}")
        yield from batched(self._stream(), n)

    def close(self) -> None:
        with self._lock:
            for handle in self._handles.values():
                handle.close()
            self._handles.clear()

    # ------------------------------------------------------------------------------------------- reading

    def _position(self, key: object) -> int | None:
        """The file-order position of an id, or None."""
        if not isinstance(key, str):
            return None
        kb = _id_bytes(key)
        h = np.uint64(_id_hash(kb))
        hashes, n = self._hashes, self._n
        i = int(np.searchsorted(hashes, h))
        while i < n and hashes[i] == h:
            j = int(self._sorter[i])
            if self._blob[self._starts[j]:self._starts[j + 1]] == kb:
                return j
            i += 1
        return None

    def _read(self, j: int) -> dict[str, str]:
        k = int(self._file_no[j])
        with self._lock:
            handle = self._handles.get(k)
            if handle is None:
                handle = self._handles[k] = self._random_access(k)
            handle.seek(int(self._offsets[j]))
            raw = handle.readline()
        return document(json.loads(raw))

    def _random_access(self, k: int) -> IO[bytes]:
        path = self.files[k]
        if not _is_gz(path):
            return open(path, "rb")
        if self.gz == "indexed_gzip":
            return _indexed_gzip().IndexedGzipFile(str(path), index_file=str(self.folder / f"gzindex-{k}"))
        return open(self._plain_copy(k), "rb")

    def _sequential(self, k: int) -> IO[bytes]:
        path = self.files[k]
        if not _is_gz(path):
            return open(path, "rb")
        if self.gz == "indexed_gzip":
            return gzip.open(path, "rb")
        return open(self._plain_copy(k), "rb")

    def _plain_copy(self, k: int) -> Path:
        """The decompressed copy of the k-th (gzipped) file; made again if it was deleted from the cache."""
        plain = self.cache / "plain" / f"{self.file_digests[k]}.jsonl"
        if not plain.is_file():
            def write(tmp: Path) -> None:
                with gzip.open(self.files[k], "rb") as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 22)
            atomic_write(plain, write)
        return plain

    def _stream(self) -> Iterator[tuple[str, dict[str, str]]]:
        """(id, document) of every record, in file order, one line in memory at a time."""
        for k in range(len(self.files)):
            with self._sequential(k) as f:
                for raw in f:
                    line = raw.decode("utf-8")
                    if line.strip():  # the rule of the indexing pass (and of the dict loaders)
                        record = json.loads(line)
                        yield str(record[self.id_field]), document(record)

    # ------------------------------------------------------------------------------------------ the index

    def _load_index(self) -> None:
        folder = self.folder
        load = lambda name: np.load(folder / f"{name}.npy", mmap_mode="r")  # noqa: E731
        self._offsets, self._file_no = load("offsets"), load("file_no")
        self._starts, self._hashes, self._sorter = load("starts"), load("hashes"), load("sorter")
        # ids.bin mapped, not read: slices of an mmap are bytes, as fast to compare as slices of bytes
        with open(folder / "ids.bin", "rb") as f:
            self._blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
        self._n = len(self._offsets)
        self.meta = json.loads((folder / "meta.json").read_text())

    def _build_index(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.cache)
        remove_stale_temps(self.cache / "plain")
        publish_folder(self.folder, self._write_index, keep_existing=lambda t: (t / "meta.json").is_file())

    def _write_index(self, work: Path) -> None:
        started = time.perf_counter()
        offsets, lines, starts, hashes = array("q"), array("q"), array("q", [0]), array("Q")
        file_no = array("H")
        blob = bytearray()
        plains: list[tuple[Path, Path]] = []  # (temp copy, its place) of decompressed .gz files
        try:
            for k, path in enumerate(self.files):
                sink = None
                if _is_gz(path) and self.gz == "decompressed":
                    plain = self.cache / "plain" / f"{self.file_digests[k]}.jsonl"
                    plain.parent.mkdir(parents=True, exist_ok=True)
                    tmp = plain.with_name(f"{temp_prefix(plain.name)}tmp")
                    plains.append((tmp, plain))
                    sink = open(tmp, "wb")
                try:
                    for lineno, offset, record in self._scan(path, sink):
                        doc_id = str(record[self.id_field])
                        if not doc_id.strip():
                            raise DataError(f"{path}:{lineno}: empty {self.id_field}; every document needs an id")
                        kb = _id_bytes(doc_id)
                        blob += kb
                        starts.append(len(blob))
                        hashes.append(_id_hash(kb))
                        offsets.append(offset)
                        lines.append(lineno)
                        file_no.append(k)
                finally:
                    if sink is not None:
                        sink.close()
                if _is_gz(path) and self.gz == "indexed_gzip":
                    with _indexed_gzip().IndexedGzipFile(str(path)) as f:
                        f.build_full_index()
                        f.export_index(str(work / f"gzindex-{k}"))
            h = np.frombuffer(hashes, dtype=np.uint64)
            sorter = np.argsort(h, kind="stable")  # equal hashes keep file order
            sorted_hashes = h[sorter]
            self._check_unique(sorted_hashes, sorter, blob, starts, file_no, lines)
            np.save(work / "offsets.npy", np.frombuffer(offsets, dtype=np.int64))
            np.save(work / "file_no.npy", np.frombuffer(file_no, dtype=np.uint16))
            np.save(work / "starts.npy", np.frombuffer(starts, dtype=np.int64))
            np.save(work / "hashes.npy", sorted_hashes)
            np.save(work / "sorter.npy", sorter.astype(np.int64))
            (work / "ids.bin").write_bytes(bytes(blob))
            for tmp, plain in plains:
                os.replace(tmp, plain)
            meta = {"format": INDEX_FORMAT, "documents": len(offsets), "id_field": self.id_field, "gz": self.gz,
                    "files": [str(p) for p in self.files], "file_digests": list(self.file_digests),
                    "seconds": round(time.perf_counter() - started, 2)}
            (work / "meta.json").write_text(json.dumps(meta, indent=1))
        finally:
            for tmp, _ in plains:
                if tmp.exists():
                    tmp.unlink()

    def _scan(self, path: Path, sink: IO[bytes] | None) -> Iterator[tuple[int, int, dict]]:
        """(line number, uncompressed byte offset, checked record) of every non-blank line; the raw bytes go to
        sink (the decompressed copy) when given."""
        lineno, offset = 0, 0
        opener = gzip.open if _is_gz(path) else open
        try:
            with opener(path, "rb") as f:
                for lineno, raw in enumerate(f, 1):
                    if sink is not None:
                        sink.write(raw)
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise DataError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start}); {_FIX}") from None
                    if line.strip():
                        try:
                            record = json_record(line, path, lineno, (self.id_field, "text"), self.layout)
                        except DataError:
                            if not raw.endswith(b"\n"):
                                raise DataError(f"{path}:{lineno}: the last line is cut short (no newline at the "
                                                f"end and not a complete record: the file was truncated, e.g. by "
                                                f"a crash mid-write); {_FIX}") from None
                            raise
                        yield lineno, offset, record
                    offset += len(raw)
        except EOFError:
            raise DataError(f"{path}:{lineno + 1}: the compressed stream ends early (a truncated download or a "
                            f"crash mid-write); {_FIX}") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise DataError(f"{path}: unreadable gzip ({e}); {_FIX}") from None

    def _check_unique(self, sorted_hashes: np.ndarray, sorter: np.ndarray, blob: bytearray, starts: array,
                      file_no: array, lines: array) -> None:
        """DataError naming the id, files and lines of the first duplicate (by its second occurrence)."""
        first: tuple[int, int] | None = None
        for i in np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1]):
            a, b = int(sorter[i]), int(sorter[i + 1])  # a < b: the sort is stable
            if blob[starts[a]:starts[a + 1]] == blob[starts[b]:starts[b + 1]] and (first is None or b < first[1]):
                first = (a, b)
        if first is None:
            return
        a, b = first
        doc_id = bytes(blob[starts[a]:starts[a + 1]]).decode("utf-8", "surrogatepass")
        raise DataError(f"duplicate {self.id_field} {doc_id!r}: {self.files[file_no[a]]}:{lines[a]} and "
                        f"{self.files[file_no[b]]}:{lines[b]}; ids must be unique: {_FIX}")


def _is_gz(path: Path) -> bool:
    return path.name.endswith(".gz")


class _StreamedItems(ItemsView):
    def __iter__(self):
        return self._mapping._stream()


class _StreamedValues(ValuesView):
    def __iter__(self):
        return (doc for _, doc in self._mapping._stream())


def iter_chunks(corpus: Mapping, n: int = CHUNK) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """Chunks of at most n (id, document) of any corpus: JsonlCorpus streams its files, a dict is sliced."""
    if hasattr(corpus, "iter_chunks"):
        yield from corpus.iter_chunks(n)
        return
    yield from batched(corpus.items(), n)


def batched(items, n: int) -> Iterator[list]:
    """Lists of at most n consecutive items (itertools.batched gives tuples, and only from Python 3.12)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
