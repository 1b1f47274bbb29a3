"""Documents and queries as BM25 sees them: the one indexed field (title + " " + text, as pyserini's BEIR
"flat" indexes build it), which documents Anserini indexes at all, the digest that names a cached index, and
queries in chunks."""

from __future__ import annotations

import hashlib

Corpus = dict[str, dict[str, str]]
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
    """sha256 over the scheme and every (id, title, text), in id order: names the cached index."""
    digest = hashlib.sha256(scheme.encode())
    for doc_id in sorted(corpus):
        doc = corpus[doc_id]
        for part in (doc_id, doc.get("title") or "", doc.get("text") or ""):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()


def query_chunks(query_ids: list[str], size: int) -> list[list[str]]:
    return [query_ids[i:i + size] for i in range(0, len(query_ids), size)]
