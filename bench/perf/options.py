"""What `bench perf` measures and against which targets: the options, the targets, two small helpers."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Log = Callable[[str], None]
NDCG_TOLERANCE = 1e-4
# Targets (issues 5 and 10): fp32 cold run vs beir and mteb; bf16 cold run vs beir and mteb in fp32 and vs
# sentence-transformers' own bf16 path; encoder share of the matmul peak in its own precision; bf16 training.
TARGETS = {"cold_speedup": 1.3, "cold_speedup_bf16": 1.5, "cold_speedup_bf16_vs_st_bf16": 1.0,
           "warm_speedup": 10.0, "matmul_peak_fraction": 0.6, "trainer_overhead": 0.10, "train_speedup_bf16": 2.0}
SECTIONS = ("encode", "e2e", "warm", "beir", "mteb", "st-bf16", "scaling", "train")


@dataclass
class PerfOptions:
    models: tuple[str, ...] = ("minilm-l6", "me5-small")  # encode throughput
    dataset: str = "scifact"
    docs: int = 512  # encode slice: the first N documents sorted by id
    encode_seq_length: int = 256
    e2e_model: str = "minilm-l6"
    e2e_docs: int = 0  # 0: the whole dataset
    max_seq_length: int | None = None  # e2e and scaling; None: the model's own limit
    batch_size: int = 32
    reps: int = 3
    sizes: tuple[int, ...] = (1000, 2000, 4000, 8000)
    scaling_datasets: tuple[str, ...] = ("scifact", "nfcorpus")  # pooled: scifact alone has 5,183 documents
    train_model: str = "me5-small"
    train_data: str = "mlqa-r"
    train_steps: int = 8
    train_batch_size: int = 32
    train_seq_length: int = 64
    trainers: tuple[str, ...] | None = None  # None: every registered trainer
    # Measured side by side; a precision this machine cannot run natively is refused up front.
    precisions: tuple[str, ...] = ("fp32", "bf16")
    skip: tuple[str, ...] = ()  # sections, see SECTIONS
    out: Path | None = None


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None
