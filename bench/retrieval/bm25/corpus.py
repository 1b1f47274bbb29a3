"""Documents and queries as BM25 sees them: the one indexed field (title + " " + text, as pyserini's BEIR
"flat" indexes build it), which documents Anserini indexes at all, the digest that names a cached index, the
JsonCollection Anserini indexes (written streaming: a big corpus is a bench.data.corpus.JsonlCorpus, read
in chunks, never held), and queries in chunks."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.data.corpus import iter_chunks

Corpus = Mapping[str, dict[str, str]]  # a dict, or a streamed JsonlCorpus
Run = dict[str, dict[str, float]]

# batch_search over all 1,406 ArguAna queries at once did not finish in 25 minutes; 40 at a time took 2.4 s.
QUERY_CHUNK = 64


def document_contents(doc: dict[str, str]) -> str:
    """The one indexed field, as pyserini's BEIR flat indexes build it: title then text."""
    return " ".join(part for part in (doc.get("title") or "", doc.get("text") or "") if part)


_JAVA_TRIM = "".join(chr(c) for c in range(33))


def is_indexable(contents: str) -> bool:
    """Anserini skips documents whose contents are empty after Java's String.trim()."""
    return bool(contents.strip(_JAVA_TRIM))


def corpus_digest(corpus: Corpus, scheme: str) -> str:
    """sha256 over the scheme and every (id, title, text), in id order: names the cached index. A streamed
    corpus (JsonlCorpus) is named by its files' sha256 instead, which fix every (id, title, text): sorting and
    reading 32.9M passages at random just to name the index would cost more than indexing them."""
    content = getattr(corpus, "content_digest", None)
    if isinstance(content, str):
        return hashlib.sha256(f"{scheme}|jsonl-corpus:{content}".encode()).hexdigest()
    digest = hashlib.sha256(scheme.encode())
    for doc_id in sorted(corpus):
        doc = corpus[doc_id]
        for part in (doc_id, doc.get("title") or "", doc.get("text") or ""):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()


def write_collection(corpus: Corpus, folder: Path, shards: int,
                     tokens: Callable[[str], list[str]] | None = None, chunk: int = 10_000) -> int:
    """JsonCollection files ({"id", "contents"} per line), one per indexing thread; returns how many
    documents Anserini will index (it skips empty ones).

    With `tokens`, contents are written as space-joined tokens, for an index built with -pretokenized.
    Streamed: documents are read a chunk at a time (iter_chunks) and their lines spooled to one file beside
    `folder`, then cut into `shards` files of consecutive lines, as many as before, in corpus order."""
    folder.mkdir(parents=True)
    spool = folder.with_name(f".{folder.name}.pid{os.getpid()}.spool")
    count = 0
    try:
        with open(spool, "w", encoding="utf-8") as out:
            for block in iter_chunks(corpus, chunk):
                for doc_id, doc in block:
                    contents = document_contents(doc)
                    if tokens is not None:
                        contents = " ".join(tokens(contents))
                    if is_indexable(contents):
                        # ensure_ascii=False escapes newlines in strings: one record is one b"\n"-ended line
                        out.write(json.dumps({"id": doc_id, "contents": contents}, ensure_ascii=False) + "\n")
                        count += 1
        per_shard = max(1, math.ceil(count / max(1, shards)))
        if count <= per_shard:
            if count:
                os.replace(spool, folder / "docs00.jsonl")
            return count
        with open(spool, "rb") as lines:
            for shard in range(math.ceil(count / per_shard)):
                with open(folder / f"docs{shard:02d}.jsonl", "wb") as out:
                    for _ in range(per_shard):
                        line = lines.readline()
                        if not line:
                            break
                        out.write(line)
        return count
    finally:
        if spool.exists():
            spool.unlink()


def query_chunks(query_ids: list[str], size: int) -> list[list[str]]:
    return [query_ids[i:i + size] for i in range(0, len(query_ids), size)]
