"""Length-sorted batching by a padded-token budget, and what an encode cost (texts, real and padded tokens)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A batch holds at most batch_size x TOKENS_PER_ROW padded tokens and at most MAX_ROWS_FACTOR x batch_size
# texts: at --batch-size 32, 8 passages of 512 tokens, 32 of 128, 128 queries of 32. `bench perf --section budget`
# (minilm-l6, 512 SciFact passages at 512 tokens): 64 and 128 tokens per row within 3% of each other in fp32 and
# bf16, 256 and 512 4-17% slower; 128 keeps half the batches of 64.
TOKENS_PER_ROW = 128
MAX_ROWS_FACTOR = 4


def length_batches(lengths: np.ndarray, batch_size: int, token_budget: int | None = None,
                   max_rows: int | None = None) -> list[np.ndarray]:
    """Row indices, longest first, cut into batches whose padded size (rows x longest length) stays within
    `token_budget`, with 1 to `max_rows` rows each. A stable sort keeps equal lengths in input order."""
    token_budget = token_budget or batch_size * TOKENS_PER_ROW
    max_rows = max_rows or batch_size * MAX_ROWS_FACTOR
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(1, int(lengths[order[start]]))
        rows = max(1, min(max_rows, token_budget // longest))
        batches.append(order[start:start + rows])
        start += rows
    return batches


@dataclass
class EncodeStats:
    """What the model itself encoded: texts, real (attended) and padded tokens, the sums of their squares per
    sequence (attention cost grows with length squared), batches, seconds."""

    texts: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    real_sq_tokens: int = 0
    padded_sq_tokens: int = 0
    batches: int = 0
    seconds: float = 0.0

    def add(self, other: "EncodeStats") -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))
