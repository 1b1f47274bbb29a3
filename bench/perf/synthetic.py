"""The scale section's synthetic data (issue 17): N passages of 10-40 pseudo-words (a fixed vocabulary of
VOCABULARY words, uniform, numpy RNG with a fixed seed, in fixed blocks, so the corpus of N is a prefix of every
larger one) as JSONL, and queries, each a passage (drawn without replacement) with a quarter of its words left
out: that passage is the query's known relevant document. Written once per N under $BENCH_CACHE/perf-scale/."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

FORMAT = 1  # part of the corpus file names: bump it when the generator changes
VOCABULARY = 4000
MIN_WORDS, MAX_WORDS = 10, 40
DROP = 0.25  # share of a passage's words a query leaves out
BLOCK = 10_000  # passages drawn per RNG call: fixed, so every corpus is a prefix of the larger ones
SEED, QUERY_SEED = 0, 1


def scale_root() -> Path:
    from bench.paths import cache_root

    return cache_root() / "perf-scale"


def vocabulary(size: int = VOCABULARY, seed: int = SEED) -> list[str]:
    """`size` distinct pseudo-words of two to four consonant-vowel syllables, in a fixed order."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < size:
        length = int(rng.integers(2, 5))
        words["".join(syllables[i] for i in rng.integers(0, len(syllables), length))] = None
    return list(words)


def corpus_paths(n: int, queries: int, root: Path | None = None) -> tuple[Path, Path]:
    root = Path(root or scale_root())
    return root / f"corpus-v{FORMAT}-n{n}.jsonl", root / f"queries-v{FORMAT}-n{n}-q{queries}.jsonl"


def _passages(n: int):
    """(index, list of word indices) for the first n passages."""
    rng = np.random.default_rng(SEED + 1000)
    done = 0
    while done < n:
        lengths = rng.integers(MIN_WORDS, MAX_WORDS + 1, BLOCK)
        words = rng.integers(0, VOCABULARY, int(lengths.sum()))
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for j in range(min(BLOCK, n - done)):
            yield done + j, words[bounds[j]:bounds[j + 1]]
        done += BLOCK


def generate(n: int, queries: int, root: Path | None = None) -> dict:
    """Write the corpus and query files of size n unless they are there; {"corpus", "queries", "generated",
    "seconds"}. Query records: {"_id", "text", "doc"} (the passage it was drawn from)."""
    from bench.safety import atomic_write

    corpus_file, query_file = corpus_paths(n, queries, root)
    start = time.perf_counter()
    generated = False
    if not corpus_file.is_file() or not query_file.is_file():
        generated = True
        words = np.array(vocabulary(), dtype=object)
        drawn = np.sort(np.random.default_rng(QUERY_SEED).choice(n, min(queries, n), replace=False))
        wanted = {int(i): q for q, i in enumerate(drawn)}
        texts: dict[int, np.ndarray] = {}

        def write(path: Path) -> None:
            with open(path, "w", encoding="utf-8") as f:
                for i, row in _passages(n):
                    f.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(words[row])}) + "\n")
                    if i in wanted:
                        texts[i] = row

        atomic_write(corpus_file, write)
        rng = np.random.default_rng(QUERY_SEED + 1)
        lines = []
        for i in sorted(wanted):
            row = texts[i]
            keep = np.sort(rng.choice(len(row), len(row) - int(DROP * len(row)), replace=False))
            lines.append(json.dumps({"_id": f"q{wanted[i]}", "text": " ".join(words[row[keep]]), "doc": f"d{i}"}))
        atomic_write(query_file, lambda path: path.write_text("\n".join(lines) + "\n", encoding="utf-8"))
    return {"corpus": str(corpus_file), "queries": str(query_file), "generated": generated,
            "seconds": round(time.perf_counter() - start, 3), "corpus_mb": round(corpus_file.stat().st_size / 2**20, 1)}


def read_queries(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
