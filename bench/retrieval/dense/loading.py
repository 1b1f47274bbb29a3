"""The model behind a dense encoder: loading it (offline-aware), its similarity function, its prompts, whether it
routes queries and documents through different weights, and what device runs it."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.machine import cpu_model
from bench.models.registry import (DEFAULT_SIMILARITY, ModelSpec, check_similarity, folder_similarity, hub_snapshot,
                                   offline, offline_hint)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name(device: str) -> str:
    """What ran the model, for run records: the GPU's name, else the CPU model."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


def resolved_prompt(model, kind: str) -> str:
    """The prompt string sentence-transformers (6.2) prepends in encode_query / encode_document: the "query"
    prompt for queries; the first of "document", "passage", "corpus" for documents; else the default prompt."""
    prompts = getattr(model, "prompts", None) or {}
    candidates = ("query",) if kind == "query" else ("document", "passage", "corpus")
    name = next((c for c in candidates if c in prompts), getattr(model, "default_prompt_name", None))
    return (prompts.get(name) or "") if name is not None else ""


def load_sentence_transformer(spec: ModelSpec, location: str, device: str):
    """SentenceTransformer(location); a Hugging Face id that is not in the local cache while offline is an OSError
    with the one-line hint (offline_hint), not the hub library's own error."""
    from sentence_transformers import SentenceTransformer

    remote = spec.hub_id is not None and not Path(location).is_dir()
    if remote and offline():
        raise OSError(offline_hint(spec.hub_id))
    try:
        return SentenceTransformer(location, device=device)
    except OSError as error:
        if remote and hub_snapshot(spec.hub_id) is None:
            raise OSError(f"{offline_hint(spec.hub_id)} ({error.__class__.__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''})") from None
        raise


def model_similarity(model, location: str) -> str:
    """The model's similarity function (cosine, dot, euclidean, manhattan): from its folder's
    config_sentence_transformers.json when it has one (sentence-transformers silently replaces a value it does not
    know by cosine; this is a ValueError naming the allowed values), else the loaded model's own."""
    if Path(location).is_dir():
        return folder_similarity(location)
    return check_similarity(getattr(model, "similarity_fn_name", None) or DEFAULT_SIMILARITY)


def routes_by_task(model) -> bool:
    """Whether the model has a Router module: its queries and documents may go through different weights."""
    try:
        from sentence_transformers.base.modules import Router
    except ImportError:  # older sentence-transformers
        return False
    return any(isinstance(m, Router) for m in model.modules())
