"""A tiny experiment grid over the fixture model and the training dataset."""

from __future__ import annotations

from pathlib import Path

import yaml

from support.training import LANGS

def grid(tiny: Path, **overrides) -> dict:
    raw = {
        "name": "grid",
        "base_models": [str(tiny)],
        "references": [str(tiny)],
        "training": {"steps": 2, "batch_size": 4, "max_seq_length": 32, "langs": list(LANGS), "threads": 1,
                     "log_every": 1},
        "evaluation": {"lareqa": {"langs": list(LANGS), "settings": ["mono", "multi"]}},
        "stages": [{"name": "first", "trainers": ["hybrid", "xx-mono"], "seeds": [1], "train_data": ["mlqa-r"]}],
    }
    raw.update(overrides)
    return raw


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
