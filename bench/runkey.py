"""A run's key, the name of its results folder: `<model>[-L<tokens>][+<backend>][+<precision>][+hnsw|+ivf][+p<hash>]`.

`model` is a registry name (`me5-small`), BM25 with its parameters (`bm25-k1.2-b0.75`), or a model folder
with a fingerprint of its weights (`hybrid-a0.5-me5-small-mlqa-r-s1-300steps@1a2b3c4d`). The suffixes name
what changes the numbers without changing the model: a length cut, an encoder backend, a precision, an
approximate search, a prompt override. Their order is fixed here, so a run reached by any path (the CLI,
an experiment, a re-read record) has one key. Built by `format()`, read back by `parse()`; nothing else
builds or splits keys. Torch-free."""

from __future__ import annotations

import re
from dataclasses import dataclass

BACKENDS = ("int8", "onnx")      # non-reference encoder backends (the reference, torch fp32, has no suffix)
PRECISIONS = ("bf16",)           # non-reference precisions (fp32 has no suffix)
SEARCHES = ("hnsw", "ivf")       # approximate search (exact and faiss flat search have no suffix)
_PROMPT = re.compile(r"p([0-9a-f]{8})")
_KEY = re.compile(r"^(?P<model>[^+].*?)(?:-L(?P<length>[1-9]\d*))?(?P<variants>(?:\+[A-Za-z0-9]+)*)$")


@dataclass(frozen=True)
class RunKey:
    model: str
    length: int | None = None     # a recorded cut of the model's input length, in tokens
    backend: str | None = None
    precision: str | None = None
    search: str | None = None
    prompt: str | None = None     # 8 hex digits naming a prompt override (bench.models.registry.prompt_tag)

    def format(self) -> str:
        """The key as a string, suffixes in their one order."""
        parts = [self.model]
        if self.length is not None:
            parts.append(f"-L{int(self.length)}")
        parts += [f"+{v}" for v in (self.backend, self.precision, self.search) if v]
        if self.prompt:
            parts.append(f"+p{self.prompt}")
        return "".join(parts)

    @classmethod
    def parse(cls, text: str) -> RunKey:
        """A key string back into its parts; ValueError for a suffix this module does not define."""
        match = _KEY.match(str(text))
        if not match:
            raise ValueError(f"not a run key: {text!r}")
        fields: dict = {"model": match.group("model"),
                        "length": int(match.group("length")) if match.group("length") else None}
        for variant in filter(None, match.group("variants").split("+")):
            slot = ("backend" if variant in BACKENDS else "precision" if variant in PRECISIONS else
                    "search" if variant in SEARCHES else "prompt" if _PROMPT.fullmatch(variant) else None)
            if slot is None or fields.get(slot):
                raise ValueError(f"run key {text!r}: unknown or repeated suffix +{variant}; known: "
                                 f"{', '.join(BACKENDS + PRECISIONS + SEARCHES)}, p<8 hex>")
            fields[slot] = variant[1:] if slot == "prompt" else variant
        return cls(**fields)

    @property
    def checkpoint(self) -> str:
        """The model part without its weights fingerprint: a checkpoint's run name (its folder under models/)."""
        return self.model.split("@", 1)[0]

    @property
    def fingerprint(self) -> str | None:
        """The weights fingerprint of a folder model (`name@<hex>`), else None."""
        return self.model.split("@", 1)[1] if "@" in self.model else None

    @property
    def variants(self) -> tuple[str, ...]:
        """The suffixes after the model as a label: ('L128', 'int8', 'bf16', 'hnsw', 'p1a2b3c4d')."""
        out = [f"L{self.length}"] if self.length is not None else []
        out += [v for v in (self.backend, self.precision, self.search) if v]
        return tuple(out + ([f"p{self.prompt}"] if self.prompt else []))
