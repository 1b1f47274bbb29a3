"""FAISS indexes: flat (exact), IVF (nlist lists, nprobe probed) and HNSW (M links, efSearch), built from an
in-memory matrix or from the on-disk shards (shards.py), and for shards saved beside them and reloaded.

Build parameters (the metric, IVF's nlist, HNSW's M and efConstruction) make an index what it is; search
parameters (nprobe, efSearch) are set on it at each search. A saved index `faiss-<method>.index` has beside it
`faiss-<method>.json`: the method, metric, build parameters, the model key (fingerprint, max sequence length,
variant, prompt), the corpus digest, document count, dimension and embedding dtype it was built from. The next
run reuses it only if all of these match what it would build; otherwise it rebuilds it and says so. An index the
user pins (--faiss-index PATH) is never rebuilt: a mismatch is a ValueError naming the fields that differ.

Defaults: IVF nlist = min(4 sqrt(n), n / 39) (at least 1; FAISS wants 39 training points per list), trained on
at most 1,000,000 vectors sampled without replacement (seed 0), nprobe = min(nlist, 32); HNSW M = 32,
efConstruction = 200, efSearch = max(2k, 128) (the values `--search faiss-hnsw` always used). GPU FAISS is used
for flat and IVF indexes when the faiss build has it and the device is CUDA; faiss-cpu works without."""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 200
IVF_NPROBE = 32
IVF_MAX_TRAIN = 1_000_000
ANN_METHODS = ("faiss-ivf", "faiss-hnsw")


@dataclass(frozen=True)
class IndexParams:
    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    ef_search: int | None = None


def build_params(method: str, n_docs: int, similarity: str, params: IndexParams) -> dict:
    """What makes an index what it is (compared before a saved index is reused)."""
    out: dict = {"method": method, "metric": "l2" if similarity == "euclidean" else "ip"}
    if method == "faiss-ivf":
        out["nlist"] = params.nlist or default_nlist(n_docs)
        if out["nlist"] > n_docs:
            raise ValueError(f"--ivf-nlist {out['nlist']} is above the corpus size ({n_docs} documents)")
    elif method == "faiss-hnsw":
        out["M"], out["efConstruction"] = params.m or HNSW_NEIGHBOURS, HNSW_EF_CONSTRUCTION
    return out


def search_params(method: str, k: int, build: dict, params: IndexParams) -> dict:
    if method == "faiss-ivf":
        return {"nprobe": min(build["nlist"], params.nprobe or IVF_NPROBE)}
    if method == "faiss-hnsw":
        return {"efSearch": params.ef_search or max(2 * k, 128)}
    return {}


def default_nlist(n_docs: int) -> int:
    return max(1, min(int(4 * math.sqrt(n_docs)), n_docs // 39))


def new_index(dim: int, build: dict):
    import faiss

    metric = faiss.METRIC_L2 if build["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT
    if build["method"] == "faiss":
        return faiss.IndexFlatL2(dim) if build["metric"] == "l2" else faiss.IndexFlatIP(dim)
    if build["method"] == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(dim, build["M"], metric)
        index.hnsw.efConstruction = build["efConstruction"]
        return index
    if build["method"] == "faiss-ivf":
        quantizer = faiss.IndexFlatL2(dim) if build["metric"] == "l2" else faiss.IndexFlatIP(dim)
        return faiss.IndexIVFFlat(quantizer, dim, build["nlist"], metric)  # faiss keeps the quantizer alive
    raise ValueError(f"unknown FAISS method {build['method']!r}")


def _blocks(docs, block_rows: int = 65_536):
    if isinstance(docs, np.ndarray):
        for start in range(0, len(docs), block_rows):
            yield start, np.ascontiguousarray(docs[start:start + block_rows], dtype=np.float32)
    else:
        yield from docs.blocks(block_rows)


def _rows(docs, positions: np.ndarray) -> np.ndarray:
    if isinstance(docs, np.ndarray):
        return np.ascontiguousarray(docs[positions], dtype=np.float32)
    return docs.rows(positions)


def build_index(docs, build: dict):
    """An index over `docs` (a float matrix or ShardedEmbeddings), trained first when IVF."""
    index = new_index(docs.shape[1], build)
    if build["method"] == "faiss-ivf":
        n = len(docs)
        size = min(n, IVF_MAX_TRAIN)
        positions = np.arange(n) if size == n else np.sort(np.random.default_rng(0).choice(n, size, replace=False))
        index.train(_rows(docs, positions))
    for _, block in _blocks(docs):
        index.add(block)
    return index


def configure(index, method: str, search: dict) -> None:
    import faiss

    if method == "faiss-ivf":
        faiss.extract_index_ivf(index).nprobe = search["nprobe"]
    elif method == "faiss-hnsw":
        index.hnsw.efSearch = search["efSearch"]


def on_device(index, method: str, device: str):
    """The index on the GPU when the faiss build has GPU support and `device` is CUDA (HNSW stays on the CPU)."""
    import faiss

    if not str(device).startswith("cuda") or method == "faiss-hnsw" or not hasattr(faiss, "StandardGpuResources"):
        return index
    try:
        if faiss.get_num_gpus() < 1:
            return index
        resources = faiss.StandardGpuResources()
        number = int(str(device).split(":", 1)[1]) if ":" in str(device) else 0
        gpu = faiss.index_cpu_to_gpu(resources, number, index)
        gpu._resources = resources
        return gpu
    except (RuntimeError, AttributeError) as e:  # no usable GPU after all: the CPU index works
        logger.warning("FAISS on %s failed (%s); searching on the CPU", device, e)
        return index


def search(index, queries: np.ndarray, k: int, euclidean: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices) best first; euclidean: -sqrt of FAISS's squared distances. Missing hits: index -1."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if not len(queries) or not k:
        return np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
    scores, indices = index.search(queries, k)
    if euclidean:
        scores = -np.sqrt(np.maximum(scores, 0.0))
    return scores.astype(np.float32, copy=False), indices.astype(np.int64, copy=False)


# ------------------------------------------------------------------------------------------- saved indexes


def index_paths(folder: Path, method: str) -> tuple[Path, Path]:
    return folder / f"{method}.index", folder / f"{method}.json"


def meta_path(index_path: Path) -> Path:
    return Path(index_path).with_suffix(".json")


def differences(saved: dict, wanted: dict) -> list[str]:
    return [f"{key}: {saved.get(key)!r} (index) vs {wanted.get(key)!r} (this run)"
            for key in sorted(set(saved) | set(wanted)) if key != "faiss_version" and saved.get(key) != wanted.get(key)]


def load_or_build(docs, folder: Path, build: dict, identity: dict, pinned: str | None = None, log=None):
    """(index, info) for `docs` (ShardedEmbeddings in `folder`): the saved index when its JSON matches `build`
    and `identity`, else a new one, built and saved. info: {"path", "built" (bool), "note" (why it was rebuilt,
    or None)}. `pinned`: the user's index file, which must match (ValueError naming the differences)."""
    import faiss

    log = log or (lambda message: logger.warning(message))
    wanted = {**identity, "build": build}
    if pinned is not None:
        path, meta = Path(pinned), meta_path(Path(pinned))
        try:
            saved = json.loads(meta.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"--faiss-index {path}: cannot read its parameters file {meta} ({e})") from None
        wrong = differences(saved, wanted)
        if wrong:
            raise ValueError(f"--faiss-index {path} was built for another model, corpus or parameters: "
                             f"{'; '.join(wrong)}. Leave out --faiss-index to build a matching one") from None
        return faiss.read_index(str(path)), {"path": str(path), "built": False, "note": None}
    path, meta = index_paths(folder, build["method"])
    note = None
    if path.is_file() and meta.is_file():
        try:
            saved = json.loads(meta.read_text())
            wrong = differences(saved, wanted)
            if not wrong:
                return faiss.read_index(str(path)), {"path": str(path), "built": False, "note": None}
            note = f"the saved index {path} was built with other parameters ({'; '.join(wrong)}): rebuilt"
        except (OSError, ValueError, RuntimeError) as e:
            note = f"the saved index {path} could not be read ({e.__class__.__name__}): rebuilt"
        log(f"note: {note}")
    index = build_index(docs, build)
    folder.mkdir(parents=True, exist_ok=True)
    # The parameters file goes first and comes back last: an index without one is never reused.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    meta_tmp = meta.with_name(f".{meta.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        meta.unlink(missing_ok=True)
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
        meta_tmp.write_text(json.dumps({**wanted, "faiss_version": getattr(faiss, "__version__", "?")}, indent=2,
                                       sort_keys=True))
        os.replace(meta_tmp, meta)
    except (OSError, RuntimeError) as e:
        logger.warning("could not save the FAISS index to %s: %s", path, e)
    finally:
        for leftover in (tmp, meta_tmp):
            if leftover.exists():
                leftover.unlink()
    return index, {"path": str(path), "built": True, "note": note}
