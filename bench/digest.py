"""The identity of a model folder's exact bytes, torch-free so that anything may import it.

`folder_fingerprint` is the sha256 over every file of the folder (relative names and bytes, metadata such as
provenance.json and manifest.json included): it names a dense encoder (its `fingerprint` in run records, the
embedding cache folder) and a checkpoint's run id (`<folder>@<first 8 hex>`), so committed run ids and cache
keys depend on its exact value. It is not bench.fingerprint.folder_digest, which leaves that metadata out (so
rebuilding the same weights keeps a result's `inputs`) and hashes per-file digests instead of bytes.

`file_digest` is one file's sha256, which data fingerprints and streamed corpora's index caches key on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def folder_fingerprint(folder: Path) -> str:
    """sha256 over the files of a model folder (names and bytes): identifies the exact weights."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


_file_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (first 16 hex digits), memoised per (path, size, mtime) in this process."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _file_digests:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _file_digests[key] = digest.hexdigest()[:16]
    return _file_digests[key]
